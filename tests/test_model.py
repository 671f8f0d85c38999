"""XstiltsModel (encoder + named heads), encoder construction and checkpoint round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from xstilts.errors import CheckpointError, ConfigError
from xstilts.models import model_io
from xstilts.models.encoder import load_encoder, tiny_config, xlmr_large_config
from xstilts.models.model import XstiltsModel
from xstilts.models.packed import encode_packed
from xstilts.packing import PackedBatch, pack

TINY = {"vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "seed": 0}  # fmt: skip


class FirstTokenHead(nn.Module):
    """Toy classification head: a linear layer on each sequence's <s> token -> [B, C]."""

    def __init__(self, hidden: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, classes)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return self.linear(hidden[batch.first_token_index])


class LayerProbe(nn.Module):
    """Returns the hidden states it gets, read at ``layer`` (None = the model's middle layer)."""

    def __init__(self, layer: int | None) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return hidden


class TiedHead(nn.Module):
    """Two parameters sharing one storage (like tied embeddings)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.first = nn.Linear(hidden, 2)
        self.second = self.first

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return self.second(hidden[batch.first_token_index])


def make_batch() -> PackedBatch:
    seqs = [[0, 5, 6, 7, 2], [0], [0, 9, 2]]
    return pack([{"sequences": [s], "label": i % 2} for i, s in enumerate(seqs)])


def make_model() -> XstiltsModel:
    torch.manual_seed(0)
    heads = {"a": FirstTokenHead(32, 3), "b": FirstTokenHead(32, 5)}
    return XstiltsModel(load_encoder({"tiny": TINY}), heads).eval()


def test_forward_shapes_and_properties() -> None:
    model = make_model()
    batch = make_batch()
    assert model(batch, "a").shape == (3, 3)
    assert model(batch, "b").shape == (3, 5)
    assert (model.hidden_size, model.num_layers, model.padding_idx) == (32, 2, 1)
    with pytest.raises(ConfigError, match="'c'"):
        model(batch, "c")


def test_head_layer_resolution() -> None:
    model = make_model()
    batch = make_batch()
    model.add_head("middle", LayerProbe(None))
    model.add_head("embeddings", LayerProbe(0))
    assert [model.head_layer(h) for h in ("a", "middle", "embeddings")] == [2, 1, 0]
    with torch.no_grad():
        for head, layer in (("middle", 1), ("embeddings", 0), ("a", None)):
            expected = encode_packed(model.encoder, batch, layer)
            if head == "a":
                expected = model.heads["a"](expected, batch)
            assert torch.equal(model(batch, head), expected)
    model.add_head("bad", LayerProbe(3))
    with pytest.raises(ConfigError, match="layer 3"):
        model(batch, "bad")


def test_drop_heads() -> None:
    model = make_model()
    model.drop_heads(keep=["b"])
    assert list(model.heads) == ["b"]
    model.drop_heads()
    assert len(model.heads) == 0


def test_tiny_encoder_is_deterministic_and_leaves_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = load_encoder({"tiny": TINY}).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    second = load_encoder({"tiny": TINY}).state_dict()
    other = load_encoder({"tiny": {**TINY, "seed": 1}}).state_dict()
    key = "embeddings.word_embeddings.weight"
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first[key], other[key])
    assert not any(k.startswith("pooler") for k in first)


def test_pretrained_encoder_from_local_directory(tmp_path: Path) -> None:
    saved = load_encoder({"tiny": TINY})
    saved.save_pretrained(tmp_path)
    loaded = load_encoder({"name": str(tmp_path)})
    assert loaded.pooler is None
    reference = saved.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in loaded.state_dict().items())


def test_encoder_spec_errors() -> None:
    with pytest.raises(ConfigError, match="hidden_sise"):
        load_encoder({"tiny": {**TINY, "hidden_sise": 8}})
    with pytest.raises(ConfigError, match="exactly one"):
        load_encoder({"revision": "main"})
    large = xlmr_large_config()
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads) == (1024, 24, 16)
    assert (large.intermediate_size, large.vocab_size, large.type_vocab_size) == (4096, 250002, 1)
    assert tiny_config(hidden_size=48).hidden_size == 48


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = make_model()
    model.add_head("tied", TiedHead(32))
    info = {"a": {"task": "toy_a", "type": "classification"}, "b": {"task": "toy_b"}}
    model_io.save_model(model, tmp_path, info)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "encoder.safetensors",
        "encoder_config.json",
        "heads.json",
        "heads.safetensors",
    ]  # no temporary files left behind
    assert json.loads((tmp_path / "heads.json").read_text()) == info
    assert model_io.load_heads_info(tmp_path) == info

    torch.manual_seed(99)  # fresh heads with different initial weights
    fresh = {"a": FirstTokenHead(32, 3), "b": FirstTokenHead(32, 5), "tied": TiedHead(32)}
    loaded = XstiltsModel(model_io.load_encoder_from_dir(tmp_path), fresh).eval()
    loaded.load_heads_state(model_io.load_heads_state(tmp_path))
    batch = make_batch()
    with torch.no_grad():
        for head in ("a", "b", "tied"):
            assert torch.equal(loaded(batch, head), model(batch, head))
    original = model.encoder.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in loaded.encoder.state_dict().items())


@pytest.mark.parametrize(
    ("name", "load"),
    [
        ("encoder.safetensors", model_io.load_encoder_from_dir),
        ("encoder_config.json", model_io.load_encoder_from_dir),
        ("heads.safetensors", model_io.load_heads_state),
        ("heads.json", model_io.load_heads_info),
    ],
)
def test_missing_or_corrupt_file_is_named(tmp_path: Path, name: str, load) -> None:
    model_io.save_model(make_model(), tmp_path, {})
    (tmp_path / name).write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load(tmp_path)
    assert err.value.file == str(tmp_path / name)


def test_heads_state_must_match_model_heads(tmp_path: Path) -> None:
    model = make_model()
    model_io.save_model(model, tmp_path, {})
    state = model_io.load_heads_state(tmp_path)
    assert sorted(state) == ["a", "b"]
    assert sorted(state["a"]) == ["linear.bias", "linear.weight"]
    only_a = XstiltsModel(load_encoder({"tiny": TINY}), {"a": FirstTokenHead(32, 3)})
    with pytest.raises(CheckpointError, match="'b'"):
        only_a.load_heads_state(state)
    wrong_size = XstiltsModel(load_encoder({"tiny": TINY}), {"a": FirstTokenHead(32, 4)})
    with pytest.raises(CheckpointError, match="'a'"):
        wrong_size.load_heads_state({"a": state["a"]})
    with pytest.raises(CheckpointError, match=r"no saved weights.*'b'"):
        model.load_heads_state({"a": state["a"]})
