"""Multi-process runs: rank 0 announces each stage, the other ranks follow it through the plan.

The data-parallel mechanics (process group, gradient all-reduce, broadcasts) live in
:mod:`xstilts.training.distributed`; this module is the plan-level half, which needs the stage
runner and therefore sits in ``pipelines`` (training must not import pipelines).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts.pipelines import integrity, stage
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.pipelines.locking import partial_dir
from xstilts.pipelines.plan import Plan
from xstilts.training.distributed import context
from xstilts.training.threads import resolve_threads, torch_threads


def announce(stage_id: str, trained: bool) -> None:
    """Rank 0: tell the other ranks whether stage ``stage_id`` is trained now."""
    par = context()
    if par.active:
        par.broadcast_object((stage_id, trained))


def follow_plan(exp: ExperimentSpec, plan: Plan) -> int:
    """Ranks > 0: train the same stages as rank 0, in the same order, writing nothing shared.

    Rank 0 runs the ordinary executor and :func:`announce` s each stage. A follower trains a
    stage that rank 0 trains (every collective in the loop pairs up with rank 0's) into a
    private scratch directory that is deleted afterwards; it reads parents from the shared
    stage cache, where rank 0 has published them by the time it announces the next stage.

    Returns:
        The number of stages trained.
    """
    par = context()
    trained = 0
    for planned in plan.stages:
        stage_id, train_it = par.broadcast_object(None)
        if stage_id != planned.stage_id:
            raise XstiltsError(
                f"rank {par.rank} expected stage {planned.stage_id[:8]}, rank 0 runs "
                f"{stage_id[:8]}: the ranks built different plans",
                hint="launch every rank with the same experiment and overrides",
            )
        # Rank 0 trains nothing for a base stage, nor for one whose files it finds assembled
        # (killed before publishing) or published meanwhile: check those in that order, as
        # rank 0 may be renaming the one into the other right now.
        final = partial_dir(planned.dir) / "final"
        if not train_it or planned.spec.kind == "base":
            continue
        # Rank 0 rebuilds an assembled stage whose hashes fail (stage.run_stage): so must we.
        assembled = stage.is_complete(final) and integrity.is_intact(final)
        if assembled or stage.is_complete(planned.dir):
            continue
        scratch = tempfile.mkdtemp(prefix=f"xstilts-rank{par.rank}-")
        try:
            parent = exp.stages_dir / planned.spec.parent if planned.spec.parent else None
            # The same thread count as rank 0 (executor.execute_stage), for the same sums.
            with torch_threads(resolve_threads(planned.spec.train, exp.train)):
                stage.run_stage(
                    planned.spec, Path(scratch) / planned.stage_id, exp.data_dir, parent
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        trained += 1
    return trained
