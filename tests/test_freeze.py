"""Frozen embeddings (train.freeze) and the recorded speed settings of a stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from xstilts.errors import ConfigError
from xstilts.models import model_io
from xstilts.models.encoder import load_encoder
from xstilts.models.model import XstiltsModel
from xstilts.pipelines import stage, validate
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.tasks.formats.classification import FORMAT
from xstilts.tasks.spec import SplitSource, TaskSpec
from xstilts.training import loop, speed
from xstilts.training.loop import TrainConfig, TrainTask

TINY = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "seed": 0}  # fmt: skip


def _task() -> TrainTask:
    spec = TaskSpec(
        name="toy", type="classification", version="1", splits={"train": SplitSource("x")},
        labels=("a", "b", "c"),
    )  # fmt: skip
    feats = [
        {"sequences": [[0, *[5 + (i * j) % 40 for j in range(3 + i % 9)], 2]],
         "example_index": i, "label": i % 3}
        for i in range(24)
    ]  # fmt: skip
    return TrainTask("toy", spec, "toy", FORMAT, feats, [], [], FeaturizeConfig())


def _train(freeze: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Three fused-AdamW steps; returns weights before/after, the optimizer and the result."""
    model = XstiltsModel(
        load_encoder({"tiny": TINY}), {"toy": FORMAT.make_head(_task().spec, 32, None)}
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    made: list[torch.optim.Optimizer] = []
    real = loop.build_optimizer

    def keep(*args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(loop, "build_optimizer", keep)
    cfg = TrainConfig(lr=1e-2, max_steps=3, batch_size=8, warmup_ratio=0.0, precision="fp32",
                      freeze=freeze)  # fmt: skip
    result = loop.train(model, [_task()], cfg, device=torch.device("cpu"))
    return {"model": model, "before": before, "optimizer": made[0], "result": result}


def test_frozen_embeddings_stay_bit_identical_and_get_no_optimizer_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _train(("embeddings",), monkeypatch)
    model, before, optimizer = run["model"], run["before"], run["optimizer"]
    emb_names = [k for k in before if k.startswith("encoder.embeddings.")]
    assert "encoder.embeddings.word_embeddings.weight" in emb_names
    after = model.state_dict()
    for name in emb_names:
        assert torch.equal(after[name], before[name]), name
    # The rest of the model did train.
    query = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(after[query], before[query])
    frozen = {id(p) for p in model.encoder.embeddings.parameters()}
    in_groups = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert frozen and not frozen & in_groups
    assert not frozen & {id(p) for p in optimizer.state}
    assert len(optimizer.state) == len(in_groups)  # every trained tensor has its moments
    assert all(p.grad is None for p in model.encoder.embeddings.parameters())
    assert run["result"].optimizer == "adamw-fused"  # CPU has the fused kernel (torch >= 2.4)
    assert run["result"].attention == "sdpa-padded-view"


def test_without_freeze_the_embeddings_train(monkeypatch: pytest.MonkeyPatch) -> None:
    run = _train((), monkeypatch)
    name = "encoder.embeddings.word_embeddings.weight"
    assert not torch.equal(run["model"].state_dict()[name], run["before"][name])
    word = run["model"].encoder.embeddings.word_embeddings.weight
    assert word in run["optimizer"].state


def test_freeze_values_are_validated() -> None:
    ok = validate.check_train_values({"freeze": ["embeddings", "layers.0-1", "layer.3"]}, "train")
    assert ok["freeze"] == ["embeddings", "layers.0-1", "layer.3"]
    for bad in (["embedings"], "embeddings", ["embeddings", "embeddings"], [["embeddings"]],
                ["layers.2-1"], ["layers.0-2", "layer.1"], ["layer.x"]):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            validate.check_train_values({"freeze": bad}, "train")
        assert err.value.key == "train.freeze"
    with pytest.raises(ConfigError, match="cannot freeze 'layers'"):
        speed.freeze_parameters(torch.nn.Module(), ["layers"])


def test_freezing_lower_layers_keeps_them_and_trains_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _train(("embeddings", "layer.0"), monkeypatch)
    after = run["model"].state_dict()
    layer0 = [k for k in after if k.startswith("encoder.encoder.layer.0.")]
    layer1 = [k for k in after if k.startswith("encoder.encoder.layer.1.")]
    assert layer0 and layer1
    assert all(torch.equal(after[k], run["before"][k]) for k in layer0)
    assert not all(torch.equal(after[k], run["before"][k]) for k in layer1)
    frozen = {id(p) for p in run["model"].encoder.encoder.layer[0].parameters()}
    assert not any(id(p) in frozen for p in run["optimizer"].state)
    # The tiny encoder has layers 0-1: layer 2 is a clear error, not a silent no-op.
    model = XstiltsModel(load_encoder({"tiny": TINY}), {})
    with pytest.raises(ConfigError, match=r"layer\.2.*layers 0-1"):
        speed.freeze_parameters(model, ["layers.1-2"])


def test_freeze_is_part_of_the_stage_id() -> None:
    common = {"kind": "train", "tasks": ("sst2",), "role": "target", "encoder": {"tiny": TINY},
              "parent": "p", "seed": 0}  # fmt: skip
    plain = StageSpec(**common, train={"lr": 1e-3})
    frozen = StageSpec(**common, train={"lr": 1e-3, "freeze": ["embeddings"]})
    assert plain.stage_id != frozen.stage_id


def test_stage_with_frozen_embeddings_records_its_settings(data_root: Path, tmp_path: Path) -> None:
    tiny = {"tiny": {**TINY, "vocab_size": 1000},
            "tokenizer": {"train_on": ["sst2"], "max_lines": 200, "vocab_size": 1000}}  # fmt: skip
    base = StageSpec(kind="base", tasks=(), role="base", encoder=tiny, parent=None, seed=0)
    stage.run_stage(base, tmp_path / base.stage_id, data_root, None, device=torch.device("cpu"))
    train = {
        "lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.0, "epochs": 1.0, "max_steps": 2,
        "batch_size": 8, "max_tokens": None, "grad_accum": 1, "max_grad_norm": 1.0,
        "eval_every": None, "patience": None, "max_train_examples": 16, "max_dev_examples": 8,
        "precision": "fp32", "compile": False, "freeze": ["embeddings"],
        "tasks": {"sst2": {"max_length": 64}},
    }  # fmt: skip
    spec = StageSpec(kind="train", tasks=("sst2",), role="intermediate", encoder=tiny,
                     parent=base.stage_id, seed=0, train=train)  # fmt: skip
    out = tmp_path / spec.stage_id
    metrics = stage.run_stage(spec, out, data_root, tmp_path / base.stage_id,
                              device=torch.device("cpu"))  # fmt: skip
    assert (metrics["attention"], metrics["optimizer"]) == ("sdpa-padded-view", "adamw-fused")
    assert json.loads((out / "metrics.json").read_text())["attention"] == "sdpa-padded-view"
    parent = model_io.load_encoder_from_dir(tmp_path / base.stage_id).state_dict()
    child = model_io.load_encoder_from_dir(out).state_dict()
    assert torch.equal(child["embeddings.word_embeddings.weight"],
                       parent["embeddings.word_embeddings.weight"])  # fmt: skip
    assert not torch.equal(child["encoder.layer.1.output.dense.weight"],
                           parent["encoder.layer.1.output.dense.weight"])  # fmt: skip
