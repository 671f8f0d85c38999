"""``xstilts export --format hf``: a trained stage loads with transformers' Auto classes and gives
xstilts' outputs; heads without an exact transformers equivalent are refused with the reason."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from typer.testing import CliRunner

from conftest import tiny_encoder
from xstilts.cli import app
from xstilts.errors import CheckpointError, ConfigError
from xstilts.models import model_io
from xstilts.models.packed import encode_packed
from xstilts.packing import pack
from xstilts.pipelines import integrity, stage
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.reporting.export_hf import export_hf, find_stage
from xstilts.tasks import get_task
from xstilts.tasks.formats import FeaturizeConfig, get_format

TINY = tiny_encoder(600, ["sst2", "pawsx"], 200)
TEXTS = ["a gripping , funny film .", "Der Film war lang und langweilig.", "so-so"]


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base -> sst2 (3 steps): a real trained stage with a classification head."""
    root = tmp_path_factory.mktemp("stages")
    base = StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)
    stage.run_stage(base, root / base.stage_id, data_root, None, device=torch.device("cpu"))
    train = {
        "lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.0, "epochs": 1.0, "max_steps": 3,
        "batch_size": 8, "max_tokens": None, "grad_accum": 1, "max_grad_norm": 1.0,
        "eval_every": None, "patience": None, "max_train_examples": 24, "max_dev_examples": 8,
        "precision": "fp32", "compile": False, "tasks": {"sst2": {"max_length": 48}},
    }  # fmt: skip
    spec = StageSpec(kind="train", tasks=("sst2",), role="target", encoder=TINY,
                     parent=base.stage_id, seed=1, train=train)  # fmt: skip
    stage.run_stage(spec, root / spec.stage_id, data_root, root / base.stage_id,
                    device=torch.device("cpu"))  # fmt: skip
    return root / spec.stage_id


def _with_head(trained: Path, task: str, dest: Path, fcfg: FeaturizeConfig | None = None) -> Path:
    """A copy of the trained stage whose only head is a (random) head for ``task``."""
    shutil.copytree(trained, dest)
    model, _, _ = stage.load_stage_model(dest, keep_heads=False)
    spec = get_task(task)
    fcfg = fcfg or FeaturizeConfig()
    torch.manual_seed(7)
    model.add_head(spec.head, get_format(spec.type).make_head(spec, model.hidden_size, fcfg))
    info = {spec.head: {"task": task, "type": str(spec.type),
                        "featurize": dataclasses.asdict(fcfg)}}  # fmt: skip
    model_io.save_model(model, dest, info)
    # The copy's files changed on purpose: record their new hashes, as a published stage would.
    integrity.write_manifest(dest, dest.name, task)
    return dest


def _xstilts_outputs(stage_dir: Path, head: str | None) -> tuple[Any, torch.Tensor]:
    model, tok, _ = stage.load_stage_model(stage_dir, keep_heads=head is not None)
    model.eval()
    batch = pack([{"sequences": [tok(t)["input_ids"]]} for t in TEXTS], model.padding_idx)
    with torch.no_grad():
        out = encode_packed(model.encoder, batch) if head is None else model(batch, head)
    return batch, out


def _hf_inputs(folder: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    tok = AutoTokenizer.from_pretrained(str(folder))
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    return enc, enc["attention_mask"].bool()


def test_encoder_export_loads_with_automodel_and_matches(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "enc"
    manifest = export_hf(trained, out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "xstilts_export.json"} <= {
        p.name for p in out.iterdir()
    }
    assert json.loads((out / "config.json").read_text())["architectures"] == ["XLMRobertaModel"]
    assert manifest["stage_id"] == trained.name and manifest["max_abs_diff"] <= 1e-4
    batch, expected = _xstilts_outputs(trained, None)  # [N, H]
    enc, mask = _hf_inputs(out)
    assert torch.equal(enc["input_ids"][mask], batch.input_ids)  # same tokenizer
    hf = AutoModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    with torch.no_grad():
        got = hf(**enc).last_hidden_state[mask]  # [N, H]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not list(tmp_path.glob(".enc.*"))  # no temporary folder left


def test_classification_head_as_sequence_classification(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "cls"
    manifest = export_hf(trained, out, head="sst2")
    assert manifest["class"] == "XLMRobertaForSequenceClassification"
    hf = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    assert hf.config.id2label == dict(enumerate(get_task("sst2").labels))
    _, expected = _xstilts_outputs(trained, "sst2")  # [B, C]
    enc, _ = _hf_inputs(out)
    with torch.no_grad():
        got = hf(**enc).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got[0], got[1])  # the head really sees the inputs


def test_tagging_and_qa_heads(trained: Path, tmp_path: Path) -> None:
    for task, auto_cls in (("panx", AutoModelForTokenClassification),
                           ("squad", AutoModelForQuestionAnswering)):  # fmt: skip
        stage_dir = _with_head(trained, task, tmp_path / f"stage-{task}")
        out = tmp_path / f"hf-{task}"
        export_hf(stage_dir, out, head=task)
        _, expected = _xstilts_outputs(stage_dir, task)  # [N, C]
        hf = auto_cls.from_pretrained(str(out)).eval()
        enc, mask = _hf_inputs(out)
        with torch.no_grad():
            res = hf(**enc)
        if task == "squad":
            got = torch.stack([res.start_logits, res.end_logits], -1)[mask]
        else:
            got = res.logits[mask]
            assert hf.config.num_labels == len(get_task("panx").labels)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_unmappable_heads_and_bad_stages_are_clear_errors(trained: Path, tmp_path: Path) -> None:
    mc = _with_head(trained, "hellaswag", tmp_path / "stage-mc")
    with pytest.raises(ConfigError, match="pooler output"):
        export_hf(mc, tmp_path / "mc", head="hellaswag")
    assert not (tmp_path / "mc").exists()
    with pytest.raises(ConfigError, match="has no head 'xnli'"):
        export_hf(trained, tmp_path / "x", head="xnli")
    half = tmp_path / "half"
    half.mkdir()
    with pytest.raises(CheckpointError, match="not a complete stage"):
        export_hf(half, tmp_path / "y")
    with pytest.raises(ConfigError, match="no complete stage"):
        find_stage(trained.parent, "ffffffff")


def test_a_mean_pooled_head_reloads_mean_pooled_and_is_not_exported(
    trained: Path, tmp_path: Path
) -> None:
    dest = _with_head(
        trained, "sst2", tmp_path / "stage-mean", FeaturizeConfig(head_pooling="mean")
    )
    model, _, info = stage.load_stage_model(dest)
    assert info["sst2"]["featurize"]["head_pooling"] == "mean"  # heads.json
    assert model.heads["sst2"].pooling == "mean"  # the reloaded head pools as it was trained
    with pytest.raises(ConfigError, match="mean token"):
        export_hf(dest, tmp_path / "mean", head="sst2")
    assert not (tmp_path / "mean").exists()


def test_cli_export_hf_by_stage_prefix(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    (tmp_path / "results.sqlite").touch()  # `export DIR` wants a results store beside stages
    args = ["export", str(tmp_path), "--format", "hf", "--stages-dir", str(trained.parent),
            "--stage", trained.name[:8], "--head", "sst2", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "XLMRobertaForSequenceClassification" in result.output
    assert (out / "model.safetensors").is_file()
    bad = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "hf"])
    assert bad.exit_code == 2 and "exactly one of --stage or --chain" in bad.output
