"""Stage integrity: every file's sha256 is recorded at publication and checked before a stage is
used as a parent or evaluated; a corrupt or unverifiable stage is one error naming it and how to
rebuild it (issue 12, finding 4)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_encoder
from xstilts.errors import CheckpointError
from xstilts.pipelines import integrity, stage
from xstilts.pipelines.locking import partial_dir
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.training import loop
from xstilts.training.evaluate import EvalSettings

CPU = torch.device("cpu")
TINY = tiny_encoder(300, ["sst2"], 50, hidden=16, layers=1)
BASE = StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)


def _child(parent: str) -> StageSpec:
    train = {
        "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "epochs": 1.0, "max_steps": 1,
        "batch_size": 4, "max_tokens": None, "grad_accum": 1, "max_grad_norm": 1.0,
        "eval_every": None, "patience": None, "max_train_examples": 8, "max_dev_examples": 4,
        "precision": "fp32", "compile": False, "tasks": {"sst2": {"max_length": 32}},
    }  # fmt: skip
    return StageSpec(kind="train", tasks=("sst2",), role="target", encoder=TINY, parent=parent,
                     seed=0, train=train)  # fmt: skip


@pytest.fixture(scope="module")
def built(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A base stage and an sst2 child of it, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("integrity")
    base_dir = root / BASE.stage_id
    stage.run_stage(BASE, base_dir, data_root, None, device=CPU)
    child = _child(BASE.stage_id)
    child_dir = root / child.stage_id
    stage.run_stage(child, child_dir, data_root, base_dir, device=CPU)
    return {"base": base_dir, "child": child_dir}


def _copy(src: Path, root: Path) -> Path:
    """A copy in ``root``: new inodes, so nothing about it is known to this process yet."""
    dst = root / src.name
    shutil.copytree(src, dst)
    return dst


def _flip_weight_bit(path: Path) -> None:
    """Flip one bit inside the tensor data (the header stays valid: the file still loads)."""
    raw = bytearray(path.read_bytes())
    header = struct.unpack("<Q", raw[:8])[0]
    pos = 8 + header + (len(raw) - 8 - header) // 2
    raw[pos] ^= 0x10
    path.write_bytes(bytes(raw))


def _no_training(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a stage trained on top of a corrupt parent")


def test_complete_records_the_sha256_of_every_stage_file(built: dict[str, Path]) -> None:
    for d in built.values():
        manifest = json.loads((d / "COMPLETE").read_text())
        assert manifest["stage_id"] == d.name
        files = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
        files.remove("COMPLETE")
        assert sorted(manifest["files"]) == files
        assert {"encoder.safetensors", "heads.safetensors", "encoder_config.json",
                "tokenizer/tokenizer.json", "spec.json", "metrics.json"} <= set(files)  # fmt: skip
        for rel, entry in manifest["files"].items():
            data = (d / rel).read_bytes()
            assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert json.loads((built["base"] / "COMPLETE").read_text())["label"] == "base"
    assert json.loads((built["child"] / "COMPLETE").read_text())["label"] == "sst2"


def test_flipped_bit_in_a_parent_is_refused_before_training_and_a_rebuild_fixes_it(
    built: dict[str, Path], data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _copy(built["base"], tmp_path)
    weights = base / "encoder.safetensors"
    _flip_weight_bit(weights)
    load_file(str(weights))  # silent corruption: safetensors itself sees nothing wrong
    child = _child(BASE.stage_id)
    with monkeypatch.context() as mp:
        mp.setattr(loop, "train", _no_training)
        with pytest.raises(CheckpointError) as err:
            stage.run_stage(child, tmp_path / child.stage_id, data_root, base, device=CPU)
    text = str(err.value)
    assert f"stage base [{BASE.stage_id}] is corrupt: encoder.safetensors does not match" in text
    assert f"delete {base} (rm -r) and run the experiment again" in text
    assert err.value.file == str(weights)
    assert "nan" not in text.lower() and not (tmp_path / child.stage_id).exists()
    # What the message says to do works: the rebuilt parent is the original, byte for byte.
    shutil.rmtree(base)
    stage.run_stage(BASE, base, data_root, None, device=CPU)
    assert weights.read_bytes() == (built["base"] / "encoder.safetensors").read_bytes()
    stage.run_stage(child, tmp_path / child.stage_id, data_root, base, device=CPU)
    assert stage.is_complete(tmp_path / child.stage_id)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("heads.safetensors", "heads.safetensors does not match the sha256"),
        ("tokenizer/tokenizer.json", "tokenizer/tokenizer.json has changed size"),
        ("delete:encoder_config.json", "encoder_config.json is missing"),
    ],
)
def test_evaluating_a_corrupt_stage_names_the_stage_and_file(
    built: dict[str, Path], data_root: Path, tmp_path: Path, damage: str, problem: str
) -> None:
    child = _copy(built["child"], tmp_path)
    if damage == "heads.safetensors":
        _flip_weight_bit(child / damage)
    elif damage.startswith("delete:"):
        (child / damage.removeprefix("delete:")).unlink()
    else:
        path = child / damage
        path.write_text(path.read_text() + " ")  # still valid JSON, one byte longer
    settings = EvalSettings(max_eval_examples=4, languages={"sst2": ("en",)})
    with pytest.raises(CheckpointError) as err:
        stage.evaluate_stage(_child(BASE.stage_id), child, data_root, ["sst2"], settings,
                             device=CPU)  # fmt: skip
    assert f"stage sst2 [{child.name}] is corrupt: {problem}" in str(err.value)
    assert f"delete {child}" in str(err.value)


@pytest.mark.parametrize("marker", ["old", "weights-left-out"])
def test_a_stage_without_recorded_hashes_is_refused_with_the_rebuild_hint(
    built: dict[str, Path], tmp_path: Path, marker: str
) -> None:
    child = _copy(built["child"], tmp_path)
    if marker == "old":
        (child / "COMPLETE").write_text(json.dumps(child.name))  # the marker of earlier xstilts
    else:  # an edited marker that no longer covers the encoder's weights
        manifest = json.loads((child / "COMPLETE").read_text())
        del manifest["files"]["encoder.safetensors"]
        (child / "COMPLETE").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError) as err:
        stage.load_stage_model(child)
    text = str(err.value)
    assert f"stage sst2 [{child.name}] records no content hashes" in text
    assert f"{child / 'COMPLETE'}:" in text and f"delete {child} (rm -r)" in text


def test_a_stage_is_hashed_once_per_process_until_one_of_its_files_changes(
    built: dict[str, Path], data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real = integrity.sha256_file

    def counting(path: Path) -> str:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(integrity, "sha256_file", counting)
    base = _copy(built["base"], tmp_path)
    n_files = len(json.loads((base / "COMPLETE").read_text())["files"])
    integrity.verify_stage(base)
    assert len(hashed) == n_files
    for _ in range(3):  # a parent of several children: verified from the cache
        stage.load_stage_model(base, keep_heads=False)
    assert len(hashed) == n_files
    # Rewriting a file (same bytes) makes it a different file on disk: hashed again, and it
    # passes. The explicit mtime step stands in for time passing (timestamps are coarse).
    config = base / "encoder_config.json"
    config.write_bytes(config.read_bytes())
    st = config.stat()
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    integrity.verify_stage(base)
    assert len(hashed) == 2 * n_files
    _flip_weight_bit(base / "encoder.safetensors")
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors does not match"):
        integrity.verify_stage(base)
    # A stage just published is known to be intact: using it at once hashes nothing more.
    hashed.clear()
    fresh = tmp_path / "fresh" / BASE.stage_id
    stage.run_stage(BASE, fresh, data_root, None, device=CPU)
    assert len(hashed) == n_files  # hashed once, at publication
    stage.load_stage_model(fresh, keep_heads=False)
    assert len(hashed) == n_files


def test_a_corrupt_unpublished_stage_is_rebuilt_not_published(
    data_root: Path, built: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / BASE.stage_id

    def store_down(metrics: dict[str, Any]) -> None:
        raise RuntimeError("results store unavailable")

    with pytest.raises(RuntimeError, match="store unavailable"):
        stage.run_stage(BASE, out, data_root, None, device=CPU, on_saved=store_down)
    final = partial_dir(out) / "final"
    _flip_weight_bit(final / "encoder.safetensors")
    stage.run_stage(BASE, out, data_root, None, device=CPU)
    assert (out / "encoder.safetensors").read_bytes() == (
        built["base"] / "encoder.safetensors"
    ).read_bytes()
    integrity.verify_stage(out)


def test_the_cli_names_a_corrupt_parent_in_one_line_and_its_hint_works(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from xstilts.cli import app

    raw = {
        "name": "integrity", "data_dir": str(data_root), "output_dir": str(tmp_path / "out"),
        "encoder": {**TINY, "tokenizer": {"train_on": ["pawsx"], "max_lines": 60,
                                           "vocab_size": 300}},
        "seeds": [1], "intermediate": ["none"], "targets": ["pawsx"],
        "train": {"lr": 1e-3, "max_steps": 1, "batch_size": 4, "max_train_examples": 8,
                  "max_dev_examples": 4, "max_length": 32, "precision": "fp32"},
        "evaluation": {"max_eval_examples": 4, "languages": {"pawsx": ["en"]}},
    }  # fmt: skip
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps(raw))  # JSON is YAML
    runner = CliRunner()
    first = runner.invoke(app, ["run", str(config), "--no-progress"])
    assert first.exit_code == 0, first.output
    stages = tmp_path / "out" / "stages"
    base = next(d for d in stages.iterdir() if (d / "spec.json").is_file()
                and json.loads((d / "spec.json").read_text())["kind"] == "base")  # fmt: skip
    _flip_weight_bit(base / "encoder.safetensors")
    integrity._verified.clear()  # as in a new process: the corruption happened between runs
    # A new target trains on top of the corrupt base: refused before any training.
    more = [str(config), "targets=[pawsx,xnli]", "evaluation.languages.xnli=[en]", "--no-progress"]
    with monkeypatch.context() as mp:
        mp.setattr(loop, "train", _no_training)
        result = runner.invoke(app, ["run", *more])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {base / 'encoder.safetensors'}: stage base [{base.name}] is corrupt: "
        "encoder.safetensors does not match the sha256 recorded when the stage was published "
        f"(rebuild it: delete {base} (rm -r) and run the experiment again; only that stage is "
        "rebuilt)"
    ]
    shutil.rmtree(base)  # what the message says
    again = runner.invoke(app, ["run", *more])
    assert again.exit_code == 0, again.output
    integrity.verify_stage(base)
