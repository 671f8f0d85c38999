"""The plan warns when every intermediate stage freezes the layer retrieval pools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import tiny_encoder
from xstilts.pipelines.encoder_checks import encoder_layers
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan


def _warnings(data_root: Path, tmp_path: Path, freeze: list[str], layer: Any) -> list[str]:
    raw = {
        "name": "fr", "data_dir": str(data_root), "output_dir": str(tmp_path / "out"),
        "encoder": tiny_encoder(300, ["mnli", "tatoeba"], 50),
        "intermediate": ["none", "mnli"], "targets": ["tatoeba"],
        "train": {"max_train_examples": 8, "freeze": freeze},
        "evaluation": {"retrieval": {"layer": layer}},
    }  # fmt: skip
    exp = experiment_from_dict(raw, base_dir=tmp_path, check_data=False)
    return [w for w in build_plan(exp, count_examples=False).warnings if "retrieval.layer" in w]


def test_a_frozen_retrieval_layer_is_named_at_plan_time(data_root: Path, tmp_path: Path) -> None:
    # 2 layers: the middle layer (1) is the output of the embeddings and layer 0.
    (warning,) = _warnings(data_root, tmp_path, ["embeddings", "layer.0"], None)
    assert "tatoeba pool layer 1" in warning and "cannot differ" in warning
    assert _warnings(data_root, tmp_path, ["embeddings"], None) == []  # layer 0 trains
    assert _warnings(data_root, tmp_path, ["embeddings", "layer.0"], 2) == []  # last layer
    assert _warnings(data_root, tmp_path, ["embeddings"], 0) != []  # layer 0 = the embeddings


def test_encoder_layers(tmp_path: Path) -> None:
    assert encoder_layers({"tiny": {"num_hidden_layers": 3}}) == 3
    assert encoder_layers({"name": "builtin:multilingual-e5-small"}) == 12
    assert encoder_layers({"name": "some/hub-model"}) is None
    (tmp_path / "config.json").write_text('{"num_hidden_layers": 6}', encoding="utf-8")
    assert encoder_layers({"name": str(tmp_path)}) == 6
