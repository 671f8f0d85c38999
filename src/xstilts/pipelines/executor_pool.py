"""The local executor with ``--workers N``: independent stages in parallel worker processes.

On a CPU machine one stage per core, each with its own thread count (``train.threads``, 1 by
default), beats one stage spread over every core: small matmuls do not scale across threads,
and the stages of a grid are independent once their parents exist. Workers are spawned
processes (not forked: torch and its thread pools do not survive a fork cleanly); each runs
:func:`~xstilts.pipelines.executor.execute_stage` exactly as the serial and Ray executors do, so
a stage gives the same result whichever executor ran it. The driver alone writes the results
store, from what the workers return.

Failures are handled as on Ray: a failed stage is recorded, its descendants are ``blocked``,
every other branch goes on, and :class:`~xstilts.pipelines.executor_ray.StageFailedError` names
each failed stage at the end. A re-run trains exactly what did not complete.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xstilts.errors import ConfigError
from xstilts.fileio import ensure_writable_dir
from xstilts.pipelines import results_json
from xstilts.pipelines.executor_ray import (
    RunSummary,
    StageFailedError,
    StageOutcome,
    _failed_stages,
    _failure_message,
    _record,
    _stage_task,
)
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.pipelines.plan import Plan, PlannedStage
from xstilts.pipelines.schedule import priority_keys
from xstilts.results.store import ResultsStore


def run_experiment_parallel(
    exp: ExperimentSpec,
    plan: Plan,
    *,
    workers: int,
    progress: bool = True,
    console: Console | None = None,
) -> RunSummary:
    """Run ``plan`` with up to ``workers`` stages at a time, parents before children.

    Args:
        exp: The validated experiment.
        plan: Its plan (topological order).
        workers: Worker processes (>= 1); each runs one stage at a time.
        progress: Show a progress bar over stages on stderr.
        console: Console for the bar (default: stderr).

    Returns:
        The output directory and which stages were trained or found cached.

    Raises:
        ConfigError: ``workers`` < 1.
        StageFailedError: after every other branch has finished, naming each failed stage.
    """
    if workers < 1:
        raise ConfigError(f"--workers {workers}: needs an integer >= 1", key="--workers")
    settings = exp.eval_settings()
    ensure_writable_dir(exp.stages_dir)  # a read-only output folder: now, not after training
    results_json.discard(exp)  # the store changes now: no stale results.json beside it
    summary = RunSummary(exp.output_dir)
    logs = exp.output_dir / "logs"
    fail = _failed_stages()
    done: dict[str, StageOutcome] = {}
    waiting: list[PlannedStage] = list(plan.stages)
    ready: list[PlannedStage] = []  # parents done, not started
    keys = priority_keys(plan)
    running: dict[Future[StageOutcome], PlannedStage] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    bar = Progress(*columns, console=console or Console(stderr=True), disable=not progress)
    context = multiprocessing.get_context("spawn")
    with (
        ResultsStore(exp.store_path) as store,
        bar,
        ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
    ):
        store.record_experiment(exp.name, exp.source)
        store.replace_runs(exp.name, plan.chains)
        task = bar.add_task(f"stages ({workers} workers)", total=len(waiting))

        def finish(planned: PlannedStage, out: StageOutcome) -> None:
            done[planned.stage_id] = out
            _record(store, planned, out, summary, logs)
            label = f"{planned.spec.label} [{planned.stage_id[:8]}] {out.status}"
            bar.update(task, advance=1, description=escape(label))

        while waiting or ready or running:
            still: list[PlannedStage] = []
            for planned in waiting:
                parent = planned.spec.parent
                if parent is not None and parent not in done:
                    still.append(planned)
                else:
                    ready.append(planned)
            waiting = still
            # Only as many stages as free workers are handed out, each time the best ready one
            # (pipelines/schedule.py): submitting every ready stage at once would queue them in
            # plan order, breadth-first over seeds.
            ready.sort(key=lambda p: keys[p.stage_id])
            while ready and len(running) < workers:
                planned = ready.pop(0)
                # _stage_task itself reports "blocked" when the parent left no stage
                doomed = any(planned.stage_id.startswith(p) for p in fail)
                parent_out = done.get(planned.spec.parent or "")
                future = pool.submit(_stage_task, planned, exp, settings, parent_out, doomed)
                running[future] = planned
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                planned = running.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    why = f"worker process failed: {type(exc).__name__}: {exc}"
                    out = StageOutcome(planned.stage_id, "failed", error=why)
                finish(planned, out)
    if summary.failed:
        raise StageFailedError(
            _failure_message(plan, summary), summary, hint=f"tracebacks in {logs}; run again"
        )
    results_json.write(exp)
    return summary
