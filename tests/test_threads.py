"""Each stage runs with an explicit, recorded torch thread count, whatever the environment says;
``--workers N`` runs independent stages in parallel processes with the same results as serial."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from test_ray_executor import _by_label, _experiment, _results
from xstilts.errors import ConfigError
from xstilts.pipelines import executor, stage
from xstilts.pipelines.executor_pool import run_experiment_parallel
from xstilts.pipelines.executor_ray import FAIL_STAGES_ENV, StageFailedError
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.training import loop
from xstilts.training.threads import resolve_threads, torch_threads


@pytest.fixture
def two_threads() -> Iterator[None]:
    """The process runs 2 torch threads (what an unset OMP_NUM_THREADS gives on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_stage_uses_the_configured_threads_not_the_process_default(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_threads: None
) -> None:
    seen: list[int] = []
    real_train = loop.train

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(loop, "train", spy)
    exp = _experiment(data_root, tmp_path / "t")
    plan = build_plan(exp, count_examples=False)
    executor.run_experiment(exp, plan, progress=False)
    assert seen and set(seen) == {1}  # train.threads defaults to 1, not the process's 2
    assert torch.get_num_threads() == 2  # restored afterwards
    trained = [s for s in plan.stages if s.spec.kind == "train"]
    for planned in trained:
        metrics = json.loads((planned.dir / "metrics.json").read_text())
        spec = json.loads((planned.dir / "spec.json").read_text())
        assert metrics["threads"] == 1 and spec["train"]["threads"] == 1


def test_threads_setting_is_validated_and_not_part_of_the_stage_id(
    data_root: Path, tmp_path: Path
) -> None:
    exp = _experiment(data_root, tmp_path / "a")
    raw = dict(exp.source)
    raw["train"] = {**raw["train"], "threads": 2}
    two = experiment_from_dict(raw)
    ids_one = [s.stage_id for s in build_plan(exp, count_examples=False).stages]
    plan_two = build_plan(two, count_examples=False)
    assert [s.stage_id for s in plan_two.stages] == ids_one  # a cache survives a new count
    assert resolve_threads(plan_two.stages[1].spec.train, two.train) == 2
    assert resolve_threads({}, two.train) == 2  # base stages follow the experiment's setting
    raw["train"]["threads"] = 0
    with pytest.raises(ConfigError, match="an integer >= 1") as err:
        experiment_from_dict(raw)
    assert err.value.key == "train.threads"


def test_torch_threads_restores_on_error(two_threads: None) -> None:
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.slow
def test_parallel_workers_give_the_serial_results(
    data_root: Path, tmp_path: Path, two_threads: None
) -> None:
    serial = _experiment(data_root, tmp_path / "serial")
    serial_plan = build_plan(serial, count_examples=False)
    executor.run_experiment(serial, serial_plan, progress=False)

    par = _experiment(data_root, tmp_path / "par")
    par_plan = build_plan(par, count_examples=False)
    summary = run_experiment_parallel(par, par_plan, workers=2, progress=False)
    ids = [s.stage_id for s in par_plan.stages]
    assert sorted(summary.trained) == sorted(ids) and summary.failed == {}
    assert all(stage.is_complete(s.dir) for s in par_plan.stages)
    assert _results(par_plan, par.store_path) == _results(serial_plan, serial.store_path)

    again = run_experiment_parallel(par, build_plan(par), workers=2, progress=False)
    assert again.trained == [] and sorted(again.cached) == sorted(ids)


@pytest.mark.slow
def test_parallel_failure_blocks_only_its_branch_and_rerun_finishes(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _experiment(data_root, tmp_path / "out")
    plan = build_plan(exp, count_examples=False)
    at = _by_label(plan)
    qqp, blocked = at["base→sst2→qqp"], at["base→sst2→qqp→pawsx"]
    monkeypatch.setenv(FAIL_STAGES_ENV, qqp[:12])
    with pytest.raises(StageFailedError, match=f"stage qqp \\[{qqp[:8]}\\]") as info:
        run_experiment_parallel(exp, plan, workers=2, progress=False)
    summary = info.value.summary
    assert set(summary.failed) == {qqp} and summary.blocked == [blocked]
    assert len(summary.trained) == 4 and not stage.is_complete(exp.stages_dir / blocked)
    # The finished stages are cache hits for any executor (the parallel one's own cache reuse
    # is checked above): the serial re-run trains exactly the failed stage and its child.
    monkeypatch.delenv(FAIL_STAGES_ENV)
    rerun = build_plan(exp, count_examples=False)
    assert {s.stage_id for s in rerun.stages if not s.cached} == {qqp, blocked}
    executor.run_experiment(exp, rerun, progress=False)
    assert all(stage.is_complete(s.dir) for s in rerun.stages)
