"""A Ray executor: one remote task per stage, parents passed as object references.

Ray resolves a task's ObjectRef arguments before it starts, so handing each stage its parent's
ref is all the scheduling needed: independent branches of the DAG run in parallel. Workers
only train and evaluate; the driver alone writes the results store.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.executor import execute_stage, record_stage
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.pipelines.plan import Plan, PlannedStage
from xstilts.results.store import ResultsStore


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


def _stage_task(
    planned: PlannedStage, exp: ExperimentSpec, settings: Any, _parent: Any
) -> tuple[dict[str, Any], list[Any], bool]:
    """Remote body: ``_parent`` is the parent's result (only awaited, never used)."""
    return execute_stage(planned, exp, settings)


def run_experiment_ray(
    exp: ExperimentSpec,
    plan: Plan,
    *,
    address: str | None = None,
    gpus_per_stage: float = 0.0,
) -> Path:
    """Run ``plan`` on a Ray cluster (or a local Ray instance) and record results.

    Args:
        exp: The validated experiment.
        plan: Its plan.
        address: Ray cluster address (``None``: start or join a local instance).
        gpus_per_stage: GPUs reserved per stage task (e.g. 1 on a GPU cluster).

    Returns:
        The experiment's output directory.
    """
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address)
    remote = ray.remote(num_gpus=gpus_per_stage)(_stage_task)
    settings = exp.eval_settings()
    exp.stages_dir.mkdir(parents=True, exist_ok=True)
    refs: dict[str, Any] = {}
    for planned in plan.stages:  # topological: a parent's ref exists before its children
        parent_ref = refs.get(planned.spec.parent) if planned.spec.parent else None
        refs[planned.stage_id] = remote.remote(planned, exp, settings, parent_ref)
    with ResultsStore(exp.store_path) as store:
        store.record_experiment(exp.name, exp.source)
        store.replace_runs(exp.name, plan.chains)
        for planned in plan.stages:
            try:
                metrics, records, _ = ray.get(refs[planned.stage_id])
            except Exception:
                store.record_stage(planned.spec, "failed")
                raise
            record_stage(store, planned, metrics, records)
    return exp.output_dir
