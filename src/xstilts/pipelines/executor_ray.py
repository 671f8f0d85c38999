"""The Ray executor: one remote task per stage, parents passed as object references.

Ray resolves a task's ``ObjectRef`` arguments before it starts it, so handing each stage its
parent's ref is all the scheduling needed: independent branches of the DAG run in parallel, on
any node. Workers only train and evaluate (into stage directories under the experiment's
``cache_dir``, which must be visible to every node, e.g. a shared file system); the driver alone
writes the SQLite results store, from what the tasks return.

A task never raises: it returns a :class:`StageOutcome`. A failed stage is recorded as
``failed`` and its descendants are ``blocked`` (they need its directory), while every other
branch goes on. After the whole DAG has settled, :class:`StageFailedError` names each failed
stage; a re-run trains exactly the stages that did not complete (complete directories are never
re-run, whichever node made them).
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xstilts.errors import ConfigError, XstiltsError
from xstilts.fileio import ensure_writable_dir
from xstilts.pipelines import results_json, stage
from xstilts.pipelines.executor import execute_stage, record_stage
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.pipelines.locking import StageBusyError
from xstilts.pipelines.plan import Plan, PlannedStage
from xstilts.pipelines.schedule import submission_order
from xstilts.results.store import ResultsStore

# Test hook: comma-separated stage-id prefixes whose tasks raise inside their Ray worker, to
# exercise failure handling on a real cluster without corrupting data.
FAIL_STAGES_ENV = "XSTILTS_FAIL_STAGES"
# ray.init retries an unreachable cluster for ever; a TCP connect answers in well under 30 s.
PROBE_TIMEOUT_S = 5.0


@dataclass
class StageOutcome:
    """What a stage task returns to the driver (picklable, small)."""

    stage_id: str
    status: str  # "complete", "failed", "blocked" or "busy" (another run holds its lock)
    trained: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


@dataclass
class RunSummary:
    """Outcome of :func:`run_experiment_ray` (stage ids per outcome)."""

    output_dir: Path
    trained: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)


class StageFailedError(XstiltsError):
    """One or more stages failed on the cluster (the other branches were still run)."""

    def __init__(self, message: str, summary: RunSummary, *, hint: str | None = None) -> None:
        self.summary = summary
        super().__init__(message, hint=hint)


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: when Ray is not installed (it is an optional dependency).
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ConfigError(
            "the ray executor needs Ray", hint="pip install 'xstilts[ray]' (or ray>=2.9)"
        ) from exc


def _describe(exc: BaseException) -> str:
    """One line: an XstiltsError's own message, else ``Type: message``."""
    text = str(exc) if isinstance(exc, XstiltsError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _stage_task(
    planned: PlannedStage,
    exp: ExperimentSpec,
    settings: Any,
    parent: StageOutcome | None,
    fail: bool,
) -> StageOutcome:
    """Remote body: train (unless complete) and evaluate one stage; never raises.

    ``parent`` is the parent task's outcome: Ray hands it over resolved, so this task starts
    only after its parent has finished.
    """
    start = time.perf_counter()
    spec = planned.spec
    parent_dir = exp.stages_dir / spec.parent if spec.parent else None
    # A parent that failed after its directory was completed (e.g. while evaluating) blocks
    # nothing: only the directory is needed here.
    if (
        parent is not None
        and parent.status != "complete"
        and (parent_dir is None or not stage.is_complete(parent_dir))
    ):
        return StageOutcome(spec.stage_id, "blocked", error=f"parent stage {parent.status}")
    try:
        if fail:
            raise RuntimeError(f"failure injected by ${FAIL_STAGES_ENV}")
        metrics, records, trained = execute_stage(planned, exp, settings)
    except Exception as exc:
        status = "busy" if isinstance(exc, StageBusyError) else "failed"
        return StageOutcome(
            spec.stage_id, status, error=_describe(exc), traceback=traceback.format_exc(),
            seconds=time.perf_counter() - start,
        )  # fmt: skip
    return StageOutcome(
        spec.stage_id, "complete", trained, metrics, records, seconds=time.perf_counter() - start
    )


def _bootstrap_address(ray: Any, address: str) -> str:
    """``HOST:PORT`` that ``ray.init(address=...)`` will dial (``auto`` resolved as Ray does).

    Raises:
        ConfigError: when Ray finds no cluster for ``auto`` or cannot parse the address.
    """
    if address.startswith("ray://"):  # Ray Client: the client server's own host and port
        return address.removeprefix("ray://")
    try:
        # Ray's own resolution (RAY_ADDRESS, ``auto``, localhost -> node IP): probe what it dials.
        canonical = ray._private.services.canonicalize_bootstrap_address(address)
    except AttributeError:  # private API moved: probe the address as given
        return address
    except (ConnectionError, ValueError) as exc:
        raise _join_error(address, _describe(exc)) from exc
    return canonical or address


def _join_error(address: str, why: str) -> ConfigError:
    return ConfigError(
        f"cannot join the Ray cluster at {address!r}: {why}",
        key="--ray-address",
        hint="start it with `ray start --head`, or leave --ray-address out for a local Ray",
    )


def probe_address(ray: Any, address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when nothing accepts a TCP connection at the cluster's address.

    ``ray.init`` retries an unreachable GCS for ever (closed port, firewalled host); one TCP
    connect with a timeout turns that into an error within seconds. A reachable port that is
    not a Ray GCS still reaches ``ray.init`` and its own errors.

    Raises:
        ConfigError: naming the address (key ``--ray-address``) and how to start a cluster.
    """
    target = _bootstrap_address(ray, address)
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise _join_error(address, f"{target!r} is not HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        dialled = "" if target == address.removeprefix("ray://") else f" (Ray dials {target})"
        why = f"cannot connect{dialled}: {reason}"
        raise _join_error(address, why) from exc


def connect(ray: Any, address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (``"auto"``, ``HOST:PORT``), or start a local instance.

    Returns:
        True when this call started (or joined) Ray and should shut it down afterwards; False
        when Ray was already initialised by the caller.
    """
    if ray.is_initialized():
        return False
    if address:
        probe_address(ray, address)
        try:
            ray.init(address=address, log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise _join_error(address, _describe(exc)) from exc
    else:
        # "local" always starts a fresh instance, never silently joins an unrelated one.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    return True


def _failed_stages() -> set[str]:
    return {p.strip() for p in os.environ.get(FAIL_STAGES_ENV, "").split(",") if p.strip()}


def _submit(ray: Any, exp: ExperimentSpec, plan: Plan, cpus: float, gpus: float) -> dict[str, Any]:
    """One task per stage, parents first (so a parent's ref exists before its children), in
    the pool executor's priority order: earliest seed, then longest path (``schedule``)."""
    task = ray.remote(_stage_task)
    # One retry when a worker or node dies (the stage resumes from its checkpoint); errors
    # raised by the stage itself are caught in the task and never retried.
    resources = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 1}
    exp_ref, settings_ref = ray.put(exp), ray.put(exp.eval_settings())
    fail = _failed_stages()
    refs: dict[str, Any] = {}
    for planned in submission_order(plan):
        sid = planned.stage_id
        parent_ref = refs.get(planned.spec.parent) if planned.spec.parent else None
        doomed = any(sid.startswith(prefix) for prefix in fail)
        named = task.options(name=f"stage {planned.spec.label} {sid[:8]}", **resources)
        refs[sid] = named.remote(planned, exp_ref, settings_ref, parent_ref, doomed)
    return refs


def _get(ray: Any, ref: Any, planned: PlannedStage, done: dict[str, StageOutcome]) -> StageOutcome:
    """A task's outcome; a Ray-level error (worker died, ...) becomes a failed/blocked one."""
    try:
        return ray.get(ref)
    except Exception as exc:  # the task body catches its own errors: this is Ray's
        parent = done.get(planned.spec.parent or "")
        if parent is not None and parent.status != "complete":
            return StageOutcome(planned.stage_id, "blocked", error=f"parent stage {parent.status}")
        return StageOutcome(planned.stage_id, "failed", error=_describe(exc))


def _record(
    store: ResultsStore, planned: PlannedStage, out: StageOutcome, summary: RunSummary, logs: Path
) -> None:
    """Write one outcome to the store and the summary (driver side)."""
    sid = planned.stage_id
    if out.status == "complete":
        record_stage(store, planned, out.metrics, out.records)
        (summary.trained if out.trained else summary.cached).append(sid)
    elif out.status in ("failed", "busy"):
        if out.status == "failed":  # a busy stage is the other run's: not a failure to record
            store.record_stage(planned.spec, "failed", {"error": out.error})
        summary.failed[sid] = out.error or "unknown error"
        if out.traceback:
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{sid}.log").write_text(out.traceback)
    else:
        summary.blocked.append(sid)


def _failure_message(plan: Plan, summary: RunSummary) -> str:
    parts = []
    for sid, error in summary.failed.items():
        planned = plan.stage(sid)
        chains = ", ".join(planned.chains[:2]) + (" ..." if len(planned.chains) > 2 else "")
        parts.append(f"stage {planned.spec.label} [{sid[:8]}] (in {chains}) failed: {error}")
    text = f"{len(summary.failed)} stage(s) failed: " + "; ".join(parts)
    if summary.blocked:
        text += f"; {len(summary.blocked)} stage(s) not run because a parent failed"
    done = len(summary.trained) + len(summary.cached)
    return text + f"; {done} stage(s) completed and recorded"


def run_experiment_ray(
    exp: ExperimentSpec,
    plan: Plan,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_stage: float = 1.0,
    gpus_per_stage: float | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> RunSummary:
    """Run ``plan`` on a Ray cluster (or a local Ray instance) and record results.

    Args:
        exp: The validated experiment; its ``cache_dir`` and ``data_dir`` must be reachable
            at the same paths on every node.
        plan: Its plan.
        address: Ray cluster address (``"auto"``, ``HOST:PORT``); ``None`` starts a local
            instance (unless Ray is already initialised in this process, which is then used).
        num_cpus: CPUs of a local instance (default: all).
        cpus_per_stage: CPUs reserved per stage task.
        gpus_per_stage: GPUs per stage task (default: 1 when the cluster has GPUs, else 0).
        progress: Show a progress bar over stages on stderr.
        console: Console for the bar (default: stderr).

    Returns:
        The output directory and which stages were trained or found cached.

    Raises:
        StageFailedError: after every other branch has finished, naming each failed stage.
    """
    ray = import_ray()
    started = connect(ray, address, num_cpus)
    try:
        if gpus_per_stage is None:
            gpus_per_stage = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        ensure_writable_dir(exp.stages_dir)  # a read-only output folder: now, not after training
        results_json.discard(exp)  # the store changes now: no stale results.json beside it
        refs = _submit(ray, exp, plan, cpus_per_stage, gpus_per_stage)
        summary = _collect(ray, exp, plan, refs, progress, console)
    finally:
        if started:
            ray.shutdown()
    if summary.failed:
        logs = exp.output_dir / "logs"
        raise StageFailedError(
            _failure_message(plan, summary), summary, hint=f"tracebacks in {logs}; run again"
        )
    results_json.write(exp)
    return summary


def _collect(
    ray: Any,
    exp: ExperimentSpec,
    plan: Plan,
    refs: dict[str, Any],
    progress: bool,
    console: Console | None,
) -> RunSummary:
    """Record outcomes as tasks finish (in completion order, so the store fills as it goes)."""
    summary = RunSummary(exp.output_dir)
    by_ref = {refs[p.stage_id]: p for p in plan.stages}
    pending = list(by_ref)  # topological order: ray.wait keeps it, so parents come first
    done: dict[str, StageOutcome] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    bar = Progress(*columns, console=console or Console(stderr=True), disable=not progress)
    with ResultsStore(exp.store_path) as store, bar:
        store.record_experiment(exp.name, exp.source)
        store.replace_runs(exp.name, plan.chains)
        task = bar.add_task("stages (ray)", total=len(pending))
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                planned = by_ref[ref]
                out = done[planned.stage_id] = _get(ray, ref, planned, done)
                _record(store, planned, out, summary, exp.output_dir / "logs")
                label = f"{planned.spec.label} [{planned.stage_id[:8]}] {out.status}"
                bar.update(task, advance=1, description=escape(label))
    return summary
