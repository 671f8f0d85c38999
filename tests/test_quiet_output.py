"""Quiet, readable output: each warning once per run, no transformers bars under --no-progress."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from xstilts import notices


def _xstilts(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "xstilts", *args], capture_output=True, text=True, env=env,
        timeout=300, check=False, cwd=cwd,
    )  # fmt: skip


def test_repeats_are_dropped_and_look_alikes_summed_up(tmp_path: Path) -> None:
    logger = logging.getLogger("xstilts.test_notices")
    logger.propagate = False
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    notices.once_per_run(logger)
    folder = tmp_path / "tydiqa"
    for lang in ("en", "ar", "en", "fi"):  # en twice: a repeat; ar, fi: look-alikes of en
        logger.warning("%s: %d of %d QAs have no gold answer", folder / f"{lang}.json", 150, 150)
    logger.warning("%s: %d of %d QAs have no gold answer", folder / "bn.json", 113, 113)
    logger.warning("%s: %d of %d QAs have no gold answer", tmp_path / "other" / "x.json", 1, 1)
    for task in ("mlqa", "squad", "mlqa"):  # two tasks reading one stand-in file
        logger.warning("%s: reading the stand-in %s", task, folder / "train.json")
    logger.warning("no file argument")
    logger.warning("no file argument")
    notices.flush()
    assert seen == [
        f"{folder / 'en.json'}: 150 of 150 QAs have no gold answer",
        f"{folder / 'bn.json'}: 113 of 113 QAs have no gold answer",  # other numbers: printed
        f"{tmp_path / 'other' / 'x.json'}: 1 of 1 QAs have no gold answer",  # other folder
        f"mlqa: reading the stand-in {folder / 'train.json'}",
        "no file argument",
        "same warning as for en.json also for 2 more: ar.json, fi.json",
        "same warning as for mlqa also for 1 more: squad",
    ]
    notices.flush()  # summed up once
    assert len(seen) == 7
    logger.removeHandler(handler)


def test_xstilts_tasks_prints_each_warning_once(data_root: Path) -> None:
    """Before: 17 stderr lines, 9 of them the TyDiQA no-answers notice, once per language."""
    done = _xstilts("tasks", "--data-dir", str(data_root))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(set(lines)) and len(lines) <= 10, done.stderr
    tydiqa = [ln for ln in lines if "tydiqa.goldp." in ln and ".dev.json" in ln]
    # en (150 of 150), bn (113 of 113: other numbers) and one line naming the 7 other files.
    assert len(tydiqa) == 3, tydiqa
    (summary,) = [ln for ln in tydiqa if ln.startswith("same warning as for")]
    assert "7 more" in summary and "tydiqa.goldp.te.dev.json" in summary
    stand_in = [ln for ln in lines if "train-v1.1.json not found" in ln]
    assert len(stand_in) == 1  # mlqa, squad and xquad read one stand-in: one line...
    assert any(ln.endswith("also for 2 more: squad, xquad") for ln in lines)  # ...and their names


@pytest.mark.slow
def test_run_no_progress_prints_no_loading_bars(data_root: Path, tmp_path: Path) -> None:
    """A pretrained (local) encoder: transformers' loading bar and load report stay silent."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from xstilts.models.tokenizer import train_tokenizer

    enc = tmp_path / "encoder"
    tok = train_tokenizer(["a small english sentence", "ein kleiner deutscher Satz"] * 50, 300)
    tok.save_pretrained(str(enc))
    config = XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    XLMRobertaModel(config).save_pretrained(str(enc))  # has a pooler: a load report is due
    exp = {
        "name": "quiet", "data_dir": str(data_root), "output_dir": str(tmp_path / "out"),
        "encoder": {"name": str(enc)}, "seeds": [1], "intermediate": ["none"],
        "targets": ["tydiqa"],
        "train": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_train_examples": 32,
                  "max_dev_examples": 16, "max_length": 64, "precision": "fp32"},
        "overrides": {"tydiqa": {"max_length": 64, "stride": 32, "max_query_length": 16}},
        "evaluation": {"max_eval_examples": 10,
                       "languages": {"tydiqa": ["en", "ar"]}},
    }  # fmt: skip
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")
    done = _xstilts("run", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in ("Loading weights", "LOAD REPORT", "it/s", "UNEXPECTED"):
        assert noise not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(set(lines)), done.stderr  # plan-time checks + training: once
    assert sum("tydiqa.goldp.en.dev.json: 150 of 150" in ln for ln in lines) == 1
    assert "same warning as for tydiqa.goldp.en.dev.json also for 1 more: " in done.stderr
    assert (tmp_path / "out" / "results.json").is_file()


def test_log_asks_for_a_tracker_that_is_not_installed(tmp_path: Path) -> None:
    """One clear error before anything is planned or trained (neither tracker is installed)."""
    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here")
    done = _xstilts("run", str(tmp_path / "absent.yaml"), "--log", "mlflow")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: [--log]: --log mlflow: the mlflow package is not installed (pip install mlflow)"
    ]
