"""Stages: atomic stage dirs, parent encoder hand-over, head dropping, failures, evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import tiny_encoder
from xstilts.errors import CheckpointError
from xstilts.models import model_io
from xstilts.pipelines import stage, stage_eval
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.training import evaluate, loop
from xstilts.training.evaluate import EvalSettings

TINY = tiny_encoder(1000, ["sst2", "pawsx"], 300)
STAGE_FILES = {
    "spec.json",
    "encoder.safetensors",
    "encoder_config.json",
    "heads.safetensors",
    "heads.json",
    "tokenizer",
    "trainer_state.json",
    "metrics.json",
    "COMPLETE",
}


def _train_spec(task: str, parent: str, max_steps: int, seed: int = 0) -> StageSpec:
    train = {
        "lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.1, "epochs": 1.0,
        "max_steps": max_steps, "batch_size": 8, "max_tokens": None, "grad_accum": 1,
        "max_grad_norm": 1.0, "eval_every": None, "patience": None, "max_train_examples": 48,
        "max_dev_examples": 24, "precision": "fp32", "compile": False,
        "tasks": {task: {"max_length": 64}},
    }  # fmt: skip
    return StageSpec(
        kind="train", tasks=(task,), role="intermediate", encoder=TINY, parent=parent,
        seed=seed, train=train,
    )  # fmt: skip


@pytest.fixture(scope="module")
def chain(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """base -> A (sst2, 3 steps), run once for the module."""
    root = tmp_path_factory.mktemp("stages")
    base = StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)
    base_dir = root / base.stage_id
    stage.run_stage(base, base_dir, data_root, None, device=torch.device("cpu"))
    spec_a = _train_spec("sst2", base.stage_id, max_steps=3)
    dir_a = root / spec_a.stage_id
    metrics_a = stage.run_stage(spec_a, dir_a, data_root, base_dir, device=torch.device("cpu"))
    return {"root": root, "base": base_dir, "a": dir_a, "spec_a": spec_a, "metrics_a": metrics_a}


def test_base_and_train_stage_dirs_are_complete(chain: dict[str, Any]) -> None:
    for key in ("base", "a"):
        d = chain[key]
        assert stage.is_complete(d)
        assert {p.name for p in d.iterdir()} == STAGE_FILES
        assert (d / "tokenizer" / "tokenizer.json").is_file()
    assert not list(chain["root"].glob(".tmp-*"))
    metrics = chain["metrics_a"]
    assert metrics == json.loads((chain["a"] / "metrics.json").read_text())
    assert metrics["steps"] == 3
    assert metrics["train_examples"] == {"sst2": 48}
    assert metrics["examples_passes"] == 3 * 8
    assert 0 < metrics["real_tokens"] <= metrics["processed_tokens"]
    assert len(metrics["dev_curve"]) == 1  # 3 steps < one epoch: evaluated at the end only
    assert 0.0 <= metrics["best_dev_metric"] <= 100.0
    assert set(json.loads((chain["a"] / "heads.json").read_text())) == {"sst2"}
    spec_json = json.loads((chain["a"] / "spec.json").read_text())
    assert spec_json["stage_id"] == chain["a"].name


def test_child_starts_from_parent_encoder_without_parent_heads(
    chain: dict[str, Any], data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real_train = loop.train

    def spy(model: Any, tasks: Any, cfg: Any, **kw: Any) -> loop.TrainResult:
        seen["encoder"] = {k: v.clone() for k, v in model.encoder.state_dict().items()}
        seen["heads"] = sorted(model.heads)
        seen["calls"] = seen.get("calls", 0) + 1
        return real_train(model, tasks, cfg, **kw)

    monkeypatch.setattr(loop, "train", spy)
    spec_b = _train_spec("pawsx", chain["a"].name, max_steps=2)
    dir_b = chain["root"] / spec_b.stage_id
    stage.run_stage(spec_b, dir_b, data_root, chain["a"], device=torch.device("cpu"))
    assert seen["calls"] == 1
    parent_encoder = model_io.load_encoder_from_dir(chain["a"]).state_dict()
    assert seen["encoder"].keys() == parent_encoder.keys()
    for k, v in parent_encoder.items():
        assert torch.equal(seen["encoder"][k], v), k
    assert seen["heads"] == ["pawsx"]  # A's sst2 head was dropped
    assert set(json.loads((dir_b / "heads.json").read_text())) == {"pawsx"}
    # Training moved the encoder away from the parent's weights.
    child = model_io.load_encoder_from_dir(dir_b).state_dict()
    assert any(not torch.equal(child[k], v) for k, v in parent_encoder.items())


def test_failure_mid_stage_leaves_nothing(
    chain: dict[str, Any], data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash during training")

    monkeypatch.setattr(loop, "train", boom)
    spec = _train_spec("sst2", chain["a"].name, max_steps=1, seed=123)
    target = chain["root"] / spec.stage_id
    with pytest.raises(RuntimeError, match="simulated crash"):
        stage.run_stage(spec, target, data_root, chain["a"], device=torch.device("cpu"))
    assert not target.exists()
    assert not stage.is_complete(target)
    assert not list(chain["root"].glob(".tmp-*"))


def test_wrong_dir_name_and_missing_parent_are_errors(
    chain: dict[str, Any], data_root: Path
) -> None:
    spec = _train_spec("sst2", chain["a"].name, max_steps=1)
    with pytest.raises(CheckpointError, match="stage id"):
        stage.run_stage(spec, chain["root"] / "wrong", data_root, chain["a"])
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        stage.run_stage(spec, chain["root"] / spec.stage_id, data_root, chain["root"] / "nope")


def test_evaluate_stage_classification_per_language_and_cached(
    chain: dict[str, Any], data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = EvalSettings(max_eval_examples=20, languages={"sst2": ("en",)})
    records = stage.evaluate_stage(chain["spec_a"], chain["a"], data_root, ["sst2"], settings,
                                   device=torch.device("cpu"))  # fmt: skip
    assert [(r.task, r.language, r.metric, r.n_examples) for r in records] == [
        ("sst2", "en", "accuracy", 20)
    ]
    (cache,) = (chain["a"] / "eval").glob("sst2-*.json")
    preds = json.loads((chain["a"] / "predictions" / cache.name).read_text())
    assert len(preds["en"]) == 20

    def no_recompute(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("cached evaluation was recomputed")

    monkeypatch.setattr(stage_eval, "evaluate_task", no_recompute)
    monkeypatch.setattr(evaluate, "evaluate_task", no_recompute)
    again = stage.evaluate_stage(chain["spec_a"], chain["a"], data_root, ["sst2"], settings)
    assert again == records


def test_evaluate_stage_pawsx_two_languages_and_tatoeba(
    chain: dict[str, Any], data_root: Path
) -> None:
    settings = EvalSettings(
        max_eval_examples=16, languages={"pawsx": ("de", "en"), "tatoeba": ("de", "fr")}
    )
    spec_b = _train_spec("pawsx", chain["a"].name, max_steps=1, seed=5)
    dir_b = chain["root"] / spec_b.stage_id
    stage.run_stage(spec_b, dir_b, data_root, chain["a"], device=torch.device("cpu"))
    records = stage.evaluate_stage(spec_b, dir_b, data_root, ["pawsx", "tatoeba"], settings,
                                   device=torch.device("cpu"))  # fmt: skip
    by_task = {(r.task, r.language): r for r in records}
    assert set(by_task) == {("pawsx", "de"), ("pawsx", "en"), ("tatoeba", "de"), ("tatoeba", "fr")}
    assert by_task["pawsx", "de"].n_examples == 16
    assert by_task["pawsx", "de"].metric == "accuracy"
    tat = by_task["tatoeba", "fr"]
    assert tat.metric == "accuracy" and 0.0 <= tat.value <= 100.0
    assert tat.extra["pooling"] == "mean" and tat.extra["layer"] == 1  # middle of 2 layers
    assert tat.n_examples == 300  # aligned sentence pairs in the shared slice
    assert len(list((dir_b / "eval").glob("tatoeba-*.json"))) == 1
    assert not list((dir_b / "predictions").glob("tatoeba-*"))  # embeddings are not dumped


def test_evaluate_stage_without_head_is_an_error(chain: dict[str, Any], data_root: Path) -> None:
    with pytest.raises(CheckpointError, match="no 'pawsx' head"):
        stage.evaluate_stage(
            chain["spec_a"], chain["a"], data_root, ["pawsx"], EvalSettings(max_eval_examples=4)
        )


def test_mlm_auxiliary_trains_and_is_not_saved(
    chain: dict[str, Any], data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xstilts.training.mlm import MlmObjective

    calls: list[float] = []
    real_loss = MlmObjective.loss

    def counting_loss(self: MlmObjective, forward: Any, device: torch.device) -> torch.Tensor:
        value = real_loss(self, forward, device)
        calls.append(float(value.detach()))
        return value

    monkeypatch.setattr(MlmObjective, "loss", counting_loss)
    base = _train_spec("sst2", chain["a"].name, max_steps=2, seed=9)
    spec = StageSpec(**{**base.__dict__, "mlm": {"weight": 0.5, "probability": 0.15,
                                                "texts_from": ["sst2"]}})  # fmt: skip
    target = chain["root"] / spec.stage_id
    metrics = stage.run_stage(spec, target, data_root, chain["a"], device=torch.device("cpu"))
    assert metrics["steps"] == 2
    assert len(calls) == 2 and all(v > 0 for v in calls)  # one MLM loss per micro-batch
    assert set(json.loads((target / "heads.json").read_text())) == {"sst2"}
    assert set(model_io.load_heads_state(target)) == {"sst2"}


def test_eval_cache_key_follows_the_task_version() -> None:
    import dataclasses

    from xstilts.tasks import get_task
    from xstilts.tasks.formats import FeaturizeConfig

    def key(task: Any) -> str:
        ident = evaluate.eval_identity(
            task, EvalSettings(), FeaturizeConfig(), ["de"], {}, torch.device("cpu")
        )
        return evaluate.eval_key(ident)

    before = key(get_task("tatoeba"))
    assert key(get_task("tatoeba")) == before  # stable
    bumped = dataclasses.replace(get_task("tatoeba"), version="99")
    assert key(bumped) != before  # a scoring change re-evaluates
