"""Training logs: TensorBoard event files in the stage folders, read back; W&B/MLflow adapters."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import tiny_encoder
from xstilts.errors import ConfigError
from xstilts.pipelines import executor, stage, tracking
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.results.store import ResultsStore
from xstilts.training.loop import Progress

LR = 1e-3


def _experiment(data_root: Path, out: Path) -> Any:
    """Base, a two-task mixture and the target: 6 steps, dev every 3, warm-up over 3 steps."""
    raw = {
        "name": "tb", "data_dir": str(data_root), "output_dir": str(out),
        "encoder": tiny_encoder(1000, ["sst2", "pawsx"], 200),
        "seeds": [1], "intermediate": [{"mixture": ["sst2", "qqp"]}], "targets": ["pawsx"],
        "train": {"lr": LR, "max_steps": 6, "eval_every": 3, "warmup_ratio": 0.5,
                  "batch_size": 8, "max_train_examples": 32, "max_dev_examples": 16,
                  "max_length": 64, "precision": "fp32"},
        "evaluation": {"max_eval_examples": 10, "languages": {"pawsx": ["en"]}},
    }  # fmt: skip
    return experiment_from_dict(raw)


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_every_trained_stage_has_event_files_with_its_scalars(
    data_root: Path, tmp_path: Path
) -> None:
    exp = _experiment(data_root, tmp_path / "out")
    plan = build_plan(exp, count_examples=False)
    executor.run_experiment(exp, plan, progress=False)
    _check_results_json(exp, plan)
    trained = [s for s in plan.stages if s.spec.kind == "train"]
    assert sorted(s.spec.label for s in trained) == ["mix(sst2+qqp)", "pawsx"]
    base = next(s for s in plan.stages if s.spec.kind == "base")
    assert not (base.dir / "tb").exists()  # nothing trained, nothing logged
    assert not list(exp.stages_dir.glob(".partial-*"))  # logs moved into the published stages
    for planned in trained:
        metrics = json.loads((planned.dir / "metrics.json").read_text())
        runs = [p.parent for p in (planned.dir / "tb").rglob("events.out.tfevents.*")]
        assert [r.name for r in runs] == [tracking.run_name(planned.spec)]
        got = _scalars(runs[0])
        # Logged at each dev evaluation (3, 6): lr from the warm-up/decay schedule by hand:
        # warm-up 3 steps, update s uses factor(s - 1): (2 + 1) / 4 and (6 - 5) / 3.
        lr = dict(got["train/lr"])
        assert lr[3] == pytest.approx(LR * 3 / 4) and lr[6] == pytest.approx(LR / 3)
        dev = {int(p["step"]): p["metric"] for p in metrics["dev_curve"]}
        assert dict(got["dev/metric"]) == pytest.approx(dev) and sorted(dev) == [3, 6]
        # At an evaluation the loss is the mean since the previous one, as in the dev curve
        # (not the last micro-batch's loss).
        want = {int(p["step"]): p["train_loss"] for p in metrics["dev_curve"]}
        assert dict(got["train/loss"]) == pytest.approx(want, rel=1e-6)
        assert got["throughput/tokens_per_second"] == [
            (6, pytest.approx(metrics["tokens_per_second"], rel=1e-6))
        ]
        assert all(v > 0 for _, v in got["throughput/examples_per_second"])
        per_task = {t for p in metrics["dev_curve"] for t in p["per_task"]}
        if len(per_task) > 1:  # the mixture: one dev curve per task as well
            for task in per_task:
                want = {int(p["step"]): p["per_task"][task] for p in metrics["dev_curve"]}
                assert dict(got[f"dev/{task}"]) == pytest.approx(want)
        else:
            assert not any(t.startswith("dev/") and t != "dev/metric" and t != "dev/best_metric"
                           for t in got)  # fmt: skip


def _check_results_json(exp: Any, plan: Any) -> None:
    """results.json beside results.sqlite: config, versions, every run with its stage ids."""
    doc = json.loads((exp.output_dir / "results.json").read_text(encoding="utf-8"))
    assert doc["experiment"] == "tb" and doc["config"]["targets"] == ["pawsx"]
    assert set(doc["versions"]) >= {"xstilts", "torch", "transformers", "python"}
    (run,) = doc["runs"]
    (chain,) = plan.chains
    assert run["stage_ids"] == list(chain.stage_ids) and run["seed"] == 1
    assert run["condition"] == "mix(sst2+qqp)" and run["target"] == "pawsx"
    with ResultsStore(exp.store_path) as store:
        assert run["metrics"] == store.task_metrics(chain.stage_ids[-1], "pawsx")
    # The raw headline number (the tables leave degenerate runs out; results.json does not).
    assert run["score"] == pytest.approx(run["metrics"]["en"]["accuracy"])
    assert sorted(run["metrics"]) == ["en"] and "accuracy" in run["metrics"]["en"]
    stages = {s["stage_id"]: s for s in doc["stages"]}
    assert list(stages) == list(chain.stage_ids)
    target = stages[chain.stage_ids[-1]]
    assert target["status"] == "complete" and target["metrics"]["steps"] == 6
    assert (
        Path(target["tensorboard"]).is_dir() and stages[chain.stage_ids[0]]["tensorboard"] is None
    )


def test_a_failed_run_leaves_no_stale_results_json(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _experiment(data_root, tmp_path / "out")
    exp.output_dir.mkdir(parents=True)
    (exp.output_dir / "results.json").write_text('{"old": true}')

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError("planted failure")

    monkeypatch.setattr(stage, "run_stage", broken)
    with pytest.raises(ConfigError, match="planted failure"):
        executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    assert not (exp.output_dir / "results.json").exists()


def _spec() -> StageSpec:
    return StageSpec(
        kind="train", tasks=("sst2",), role="target", encoder={"name": "x"}, parent="p" * 16,
        seed=3, train={"lr": 0.1, "warmup_ratio": 0.0},
    )  # fmt: skip


def test_resumed_stage_purges_the_redone_steps(tmp_path: Path) -> None:
    """Killed after step 20 (checkpoint at 10): the resumed process logs 20 again, once."""
    stage_dir = tmp_path / "stages" / ("a" * 16)
    first = tracking.StageLogs(_spec(), stage_dir, "exp", backends=[])
    for step, loss in ((10, 1.0), (20, 0.9)):
        first.log_step(Progress(step, 40, step * 8, 100.0, loss, None))
    first.close()  # the process dies: no finish(), the logs stay in .partial-<id>/tb
    second = tracking.StageLogs(_spec(), stage_dir, "exp", backends=[])
    for step, loss in ((20, 0.5), (30, 0.4), (40, 0.3)):
        second.log_step(Progress(step, 40, step * 8, 100.0, loss, None))
    final = stage_dir.parent / f".partial-{stage_dir.name}" / "final"
    final.mkdir(parents=True)
    second.finish({"steps": 40, "tokens_per_second": 1234.0, "dev_curve": []})
    assert (final / "tb").is_dir() and not (final.parent / "tb").exists()
    got = _scalars(final / "tb" / "sst2-seed3")
    assert got["train/loss"] == [(10, 1.0), (20, 0.5), (30, pytest.approx(0.4)),
                                 (40, pytest.approx(0.3))]  # fmt: skip
    # No warm-up: lr decays linearly from 0.1 over 40 steps; update s uses (40 - (s - 1)) / 40.
    assert dict(got["train/lr"])[10] == pytest.approx(0.1 * 31 / 40)
    assert got["throughput/tokens_per_second"] == [(40, 1234.0)]


def test_unknown_or_missing_tracker_is_one_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown logger 'comet'"):
        tracking.check_backends(["comet"])
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="the wandb package is not installed") as err:
        tracking.check_backends(["wandb"])
    assert "pip install wandb" in str(err.value)


def test_wandb_and_mlflow_get_the_same_scalars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapters against stand-in modules that record calls (neither tracker is installed)."""
    calls: list[tuple[str, Any]] = []
    wandb = types.ModuleType("wandb")

    class _Run:
        def log(self, values: dict, step: int) -> None:
            calls.append(("wandb.log", (values, step)))

        def finish(self) -> None:
            calls.append(("wandb.finish", None))

    def init(**kw: Any) -> _Run:
        calls.append(("wandb.init", kw))
        return _Run()

    wandb.init = init  # type: ignore[attr-defined]
    mlflow = types.ModuleType("mlflow")
    for name in ("set_experiment", "set_tags", "log_dict", "end_run"):
        setattr(mlflow, name, lambda *a, _n=name, **k: calls.append((f"mlflow.{_n}", a)))
    mlflow.active_run = lambda: None  # type: ignore[attr-defined]
    mlflow.start_run = lambda **kw: calls.append(("mlflow.start_run", kw))  # type: ignore[attr-defined]
    mlflow.log_metrics = lambda v, step: calls.append(("mlflow.log", (v, step)))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setenv(tracking.ENV, "wandb,mlflow")
    stage_dir = tmp_path / "stages" / ("b" * 16)
    logs = tracking.StageLogs(_spec(), stage_dir, "my-exp")
    logs.log_step(Progress(5, 10, 40, 80.0, 0.7, 61.5))
    logs.close()
    init = next(kw for name, kw in calls if name == "wandb.init")
    assert init["group"] == "my-exp" and init["name"] == f"sst2 seed 3 [{_spec().stage_id[:8]}]"
    assert init["config"]["stage_id"] == _spec().stage_id
    want = {"train/loss": 0.7, "train/lr": pytest.approx(0.1 * 6 / 10),
            "throughput/examples_per_second": 80.0, "dev/metric": 61.5}  # fmt: skip
    assert [v for n, v in calls if n == "wandb.log"] == [(want, 5)]
    assert [v for n, v in calls if n == "mlflow.log"] == [(want, 5)]
    assert ("mlflow.set_experiment", ("my-exp",)) in calls
    assert [n for n, _ in calls][-2:] == ["wandb.finish", "mlflow.end_run"]
