"""The local executor: run a plan's stages in topological order, skipping cached ones.

For each stage: train it unless its directory is complete (``stage.run_stage``), evaluate it on
its ``evaluate`` tasks (``stage.evaluate_stage``, cached inside the stage dir), and record both
in the results store. Only this driver writes the store. ``stage.run_stage`` is looked up on the
module at call time so tests can count or replace it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xstilts.fileio import ensure_writable_dir
from xstilts.pipelines import results_json, stage, tracking
from xstilts.pipelines.executor_ranks import announce
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.pipelines.locking import StageBusyError, partial_dir
from xstilts.pipelines.plan import Plan, PlannedStage
from xstilts.results.store import ResultsStore
from xstilts.training.threads import resolve_threads, torch_threads

StepCallback = Callable[[Any], None]
_log = logging.getLogger(__name__)


def stage_dir_of(exp: ExperimentSpec, stage_id: str | None) -> Path | None:
    """The directory of stage ``stage_id`` in the experiment's stage cache."""
    return None if stage_id is None else exp.stages_dir / stage_id


def execute_stage(
    planned: PlannedStage,
    exp: ExperimentSpec,
    settings: Any,
    on_step: StepCallback | None = None,
    on_saved: StepCallback | None = None,
) -> tuple[dict[str, Any], list[Any], bool]:
    """Train (unless complete) and evaluate one stage.

    ``on_saved(metrics)`` runs after the stage's files are written, before it is published.

    Returns:
        ``(training metrics, evaluation records, trained now)``.
    """
    spec, out = planned.spec, planned.dir
    trained = not stage.is_complete(out)
    announce(spec.stage_id, trained)  # a multi-process run: the others train too
    with torch_threads(resolve_threads(spec.train, exp.train)):
        if trained:
            parent = stage_dir_of(exp, spec.parent)
            with tracking.StageLogs(spec, out, exp.name, planned.chains) as logs:  # TensorBoard
                metrics = stage.run_stage(
                    spec,
                    out,
                    exp.data_dir,
                    parent,
                    progress=logs.on_step(on_step),
                    on_saved=logs.on_saved(on_saved),
                )
        else:
            path = out / "metrics.json"
            metrics = json.loads(path.read_text()) if path.is_file() else {}
        records: list[Any] = []
        if spec.evaluate:  # kept as returned: it carries the per-task summaries (record_stage)
            records = stage.evaluate_stage(spec, out, exp.data_dir, spec.evaluate, settings)
    return dict(metrics), records, trained


def failure_info(exc: BaseException) -> dict[str, Any]:
    """What the store keeps about a failed stage: the error and, for a diverged run, its step."""
    info: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}"}
    if getattr(exc, "step", None) is not None:
        info["failed_step"] = exc.step  # type: ignore[attr-defined]
    return info


def record_failure(store: ResultsStore, planned: PlannedStage, exc: BaseException) -> None:
    """Mark the stage ``failed`` in the store; never raises, so ``exc`` is what the user sees.

    A lost race for the stage's lock (:class:`StageBusyError`) records nothing: the stage is
    the other run's, which may well complete it.
    """
    if isinstance(exc, StageBusyError):
        return
    try:
        store.record_stage(planned.spec, "failed", failure_info(exc))
    except Exception as record_exc:  # a full disk or a damaged store must not mask the cause
        note = f"the failure could not be recorded in {store.path}: {record_exc}"
        exc.add_note(note)
        _log.warning(note)


def record_stage(
    store: ResultsStore, planned: PlannedStage, metrics: dict[str, Any], records: Sequence[Any]
) -> None:
    """Write one finished stage and its evaluation records to the store.

    ``records`` from :func:`stage.evaluate_stage` carry one summary per evaluated task: those
    tasks' earlier scores on the stage are replaced as a whole (never mixed with new ones).
    """
    summaries = list(getattr(records, "summaries", ()))
    store.record_stage(planned.spec, "complete", metrics)
    store.record_metrics(
        planned.stage_id, planned.spec.seed, records, replace=[s.task for s in summaries]
    )
    store.record_evaluations(planned.stage_id, summaries)


class _Bars:
    """Rich progress: one bar over stages, one over the current stage's optimizer steps."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.stages = progress.add_task("stages", total=total) if progress else None
        self.steps: Any = None

    def start(self, planned: PlannedStage) -> None:
        if self.progress is None or self.stages is None:  # both set, or neither
            return
        what = "resuming" if partial_dir(planned.dir).is_dir() else "training"
        what = "cached" if stage.is_complete(planned.dir) else what
        desc = f"{planned.spec.label} [{planned.stage_id[:8]}] {what}"
        self.progress.update(self.stages, description=desc)
        self.steps = self.progress.add_task("  steps", total=None)

    def on_step(self, info: Any) -> None:
        if self.progress is not None and self.steps is not None:
            rate = f"  steps ({info.examples_per_second:,.0f} ex/s, loss {info.loss:.3f})"
            self.progress.update(
                self.steps, completed=info.step, total=info.total_steps, description=rate
            )

    def done(self) -> None:
        if self.progress is None or self.stages is None:
            return
        if self.steps is not None:
            self.progress.remove_task(self.steps)
            self.steps = None
        self.progress.advance(self.stages)


@contextmanager
def _bars(enabled: bool, total: int, console: Console | None) -> Iterator[_Bars]:
    if not enabled:
        yield _Bars(None, total)
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as prog:
        yield _Bars(prog, total)


def run_experiment(
    exp: ExperimentSpec,
    plan: Plan,
    *,
    progress: bool = True,
    console: Console | None = None,
) -> Path:
    """Run every stage of ``plan`` (parents first) and record results.

    Args:
        exp: The validated experiment.
        plan: Its plan (:func:`xstilts.pipelines.plan.build_plan`).
        progress: Show rich progress bars on stderr.
        console: Console for the bars (default: stderr).

    Returns:
        The experiment's output directory (holding ``results.sqlite``).

    Raises:
        XstiltsError: from a stage; the failing stage is recorded with status ``failed``.
    """
    settings = exp.eval_settings()
    ensure_writable_dir(exp.stages_dir)  # a read-only output folder: now, not after training
    results_json.discard(exp)  # the store changes now: no stale results.json beside it
    with ResultsStore(exp.store_path) as store:
        store.record_experiment(exp.name, exp.source)
        store.replace_runs(exp.name, plan.chains)
        with _bars(progress, len(plan.stages), console) as bars:
            for planned in plan.stages:
                bars.start(planned)
                # The store records the trained stage before its directory is published.
                saved = partial(store.record_stage, planned.spec, "trained")
                try:
                    metrics, records, _ = execute_stage(planned, exp, settings, bars.on_step, saved)
                except BaseException as exc:
                    record_failure(store, planned, exc)
                    raise
                record_stage(store, planned, metrics, records)
                bars.done()
    results_json.write(exp)
    return exp.output_dir
