"""The Ray executor on a local 2-CPU Ray instance: same stages and metrics as the local one,
failures isolated to their branch, complete stages never re-run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import tiny_encoder
from xstilts.pipelines import executor, stage
from xstilts.pipelines.executor_ray import (
    FAIL_STAGES_ENV,
    StageFailedError,
    run_experiment_ray,
)
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import Plan, build_plan
from xstilts.results.store import ResultsStore

# CI installs the dev extra, which includes Ray: there a missing Ray is an error, not a skip.
if os.environ.get("CI", "").lower() == "true":
    import ray
else:
    ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

# Wall-clock fields differ between any two runs; everything else must match exactly.
TIMING = {"train_seconds", "tokens_per_second"}


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A private 2-CPU Ray instance (own temp dir: no clash with other Ray sessions)."""
    temp = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths are limited
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp,
        object_store_memory=100 * 2**20, log_to_driver=False,
    )  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def _experiment(data_root: Path, out: Path) -> Any:
    raw: dict[str, Any] = {
        "name": "ray",
        "data_dir": str(data_root),
        "output_dir": str(out),
        "encoder": tiny_encoder(500, ["sst2", "pawsx"], 200, layers=1),
        "seeds": [1],
        "intermediate": ["none", "sst2", ["sst2", "qqp"]],
        "targets": ["pawsx"],
        "train": {
            "lr": 1e-3,
            "max_steps": 2,
            "batch_size": 8,
            "max_train_examples": 16,
            "max_dev_examples": 8,
            "max_length": 48,
            "precision": "fp32",
        },
        "evaluation": {"max_eval_examples": 12, "languages": {"pawsx": ["en", "de"]}},
    }
    return experiment_from_dict(raw)


def _results(plan: Plan, db: Path) -> dict[str, Any]:
    """Per stage: status, training metrics (minus timing) and evaluation scores."""
    out: dict[str, Any] = {}
    with ResultsStore(db) as store:
        rows = {r["stage_id"]: r for r in store.stage_rows()}
        for planned in plan.stages:
            sid = planned.stage_id
            row = rows.get(sid)
            if row is None:
                continue
            metrics = row["metrics"] or {}
            scores = {t: store.task_metrics(sid, t) for t in planned.spec.evaluate}
            out[sid] = (
                row["status"],
                {k: v for k, v in metrics.items() if k not in TIMING},
                scores,
            )
    return out


def _by_label(plan: Plan) -> dict[str, str]:
    """``"sst2→qqp→pawsx"``-style chain position -> stage id (labels alone are not unique)."""
    out = {}
    for chain in plan.chains:
        labels = [plan.stage(i).spec.label for i in chain.stage_ids]
        for n in range(1, len(labels) + 1):
            out["→".join(labels[:n])] = chain.stage_ids[n - 1]
    return out


def test_ray_matches_local_and_reuses_its_cache(
    ray_local: None, data_root: Path, tmp_path: Path
) -> None:
    local_exp = _experiment(data_root, tmp_path / "local")
    local_plan = build_plan(local_exp, count_examples=False)
    executor.run_experiment(local_exp, local_plan, progress=False)
    trained_local = [s.stage_id for s in local_plan.stages if stage.is_complete(s.dir)]

    ray_exp = _experiment(data_root, tmp_path / "ray")
    ray_plan = build_plan(ray_exp, count_examples=False)
    summary = run_experiment_ray(ray_exp, ray_plan, progress=False)

    ids = [s.stage_id for s in local_plan.stages]
    assert [s.stage_id for s in ray_plan.stages] == ids
    assert len(ids) == 6  # base, sst2 (shared by two chains), qqp, pawsx x 3
    assert sorted(summary.trained) == sorted(trained_local) == sorted(ids)
    assert summary.cached == [] and summary.failed == {} and summary.blocked == []
    local = _results(local_plan, local_exp.store_path)
    assert set(local) == set(ids)
    assert _results(ray_plan, ray_exp.store_path) == local
    assert local[_by_label(local_plan)["base→pawsx"]][2]["pawsx"]["de"]  # real scores compared

    # Stages completed by another process (here: the local executor) are reused by the Ray
    # workers, never re-trained, and the store ends up the same.
    again = run_experiment_ray(local_exp, build_plan(local_exp), progress=False)
    assert again.trained == [] and sorted(again.cached) == sorted(ids)
    assert _results(local_plan, local_exp.store_path) == local


def test_failed_branch_is_reported_others_finish_rerun_trains_the_rest(
    ray_local: None, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _experiment(data_root, tmp_path / "out")
    plan = build_plan(exp, count_examples=False)
    at = _by_label(plan)
    qqp, leaf_none = at["base→sst2→qqp"], at["base→pawsx"]
    blocked = at["base→sst2→qqp→pawsx"]
    monkeypatch.setenv(FAIL_STAGES_ENV, f"{qqp[:12]},{leaf_none[:12]}")
    with pytest.raises(StageFailedError) as info:
        run_experiment_ray(exp, plan, progress=False)
    message = str(info.value)
    assert f"stage qqp [{qqp[:8]}]" in message and f"stage pawsx [{leaf_none[:8]}]" in message
    assert "failure injected" in message and "1 stage(s) not run" in message
    summary = info.value.summary
    assert set(summary.failed) == {qqp, leaf_none} and summary.blocked == [blocked]
    ok = {at["base"], at["base→sst2"], at["base→sst2→pawsx"]}
    assert set(summary.trained) == ok
    log = (exp.output_dir / "logs" / f"{qqp}.log").read_text()
    assert log.startswith("Traceback") and "RuntimeError: failure injected" in log
    status = {sid: row[0] for sid, row in _results(plan, exp.store_path).items()}
    assert status == {**dict.fromkeys(ok, "complete"), qqp: "failed", leaf_none: "failed"}
    assert not stage.is_complete(exp.stages_dir / qqp)
    markers = {sid: (exp.stages_dir / sid / "COMPLETE").stat().st_mtime_ns for sid in ok}

    monkeypatch.delenv(FAIL_STAGES_ENV)
    rerun = run_experiment_ray(exp, build_plan(exp, count_examples=False), progress=False)
    assert set(rerun.trained) == {qqp, leaf_none, blocked}
    assert set(rerun.cached) == ok
    assert {sid: (exp.stages_dir / sid / "COMPLETE").stat().st_mtime_ns for sid in ok} == markers
    status = {sid: row[0] for sid, row in _results(plan, exp.store_path).items()}
    assert set(status.values()) == {"complete"} and len(status) == 6
