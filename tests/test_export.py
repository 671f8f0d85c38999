"""``xstilts export --format xtreme``: XTREME's layout and formats, re-scored = stored metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.pipelines import executor
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.collect import load_experiment_data
from xstilts.reporting.export import read_label, read_tag, rescore
from xstilts.tasks.registry import get_task

pytestmark = pytest.mark.slow

LANGS = {"pawsx": ["en", "de"], "panx": ["en", "de"], "mlqa": ["en", "de"],
         "tatoeba": ["de", "fr"]}  # fmt: skip


def tiny_experiment(data_root: Path, out: Path, targets: list[str], options: list[Any]) -> Any:
    """A tiny random encoder, two optimizer steps per stage, 20 eval examples per language."""
    raw = {
        "name": "tiny", "data_dir": str(data_root), "output_dir": str(out),
        "encoder": {
            "tiny": {"vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "intermediate_size": 64, "seed": 0},
            "tokenizer": {"train_on": ["sst2", "pawsx"], "max_lines": 200, "vocab_size": 1000},
        },
        "seeds": [1], "intermediate": options, "targets": targets,
        "train": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_train_examples": 32,
                  "max_dev_examples": 16, "max_length": 64, "precision": "fp32"},
        "overrides": {"mlqa": {"max_length": 128, "stride": 32, "max_query_length": 32}},
        "evaluation": {"max_eval_examples": 20,
                       "languages": {t: LANGS[t] for t in targets if t in LANGS}},
    }  # fmt: skip
    exp = experiment_from_dict(raw)
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    return exp


def test_export_layout_formats_and_rescored_metrics(data_root: Path, tmp_path: Path) -> None:
    """One real tiny run (BUCC's 22k sentences are too slow here: see the synthetic test)."""
    out = tmp_path / "exp"
    tiny_experiment(data_root, out, ["pawsx", "panx", "mlqa", "tatoeba"], ["none"])
    result = CliRunner().invoke(app, ["export", str(out), "--format", "xtreme"])
    assert result.exit_code == 0, result.output
    root = out / "export-xtreme"
    _check_layout(root)
    _check_rescore(out, root)


def _check_layout(root: Path) -> None:
    sub = root / "none" / "seed-1"
    files = sorted(str(p.relative_to(sub)) for p in sub.rglob("*") if p.is_file())
    assert files == sorted(
        [f"pawsx/test-{lg}.tsv" for lg in ("en", "de")]
        + [f"panx/test-{lg}.tsv" for lg in ("en", "de")]
        + [f"mlqa/test-{lg}.json" for lg in ("en", "de")]
        + [f"tatoeba/test-{lg}.tsv" for lg in ("de", "fr")]
    )
    assert set(read_label(sub / "pawsx" / "test-en.tsv")) <= {"0", "1"}  # raw PAWS-X labels
    assert len(read_label(sub / "pawsx" / "test-en.tsv")) == 20
    tags = read_tag(sub / "panx" / "test-de.tsv")
    gold_tags = read_tag(root / "labels" / "panx" / "test-de.tsv")
    assert len(tags) == 20 and [len(s) for s in tags] == [len(s) for s in gold_tags]
    assert {t for s in tags for t in s} <= {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC",
                                            "I-LOC"}  # fmt: skip
    answers = json.loads((sub / "mlqa" / "test-de.json").read_text(encoding="utf-8"))
    gold = json.loads((root / "labels" / "mlqa" / "test-de.json").read_text(encoding="utf-8"))
    ids = [qa["id"] for a in gold["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert isinstance(answers, dict) and sorted(answers) == sorted(ids) and len(ids) == 20
    assert all(len(i) == 40 for i in ids)  # MLQA's real hex ids, not positions
    idx = read_label(sub / "tatoeba" / "test-fr.tsv")
    assert len(idx) == 300 and all(x.isdigit() for x in idx)  # one corpus: the 300 lines
    assert read_label(root / "labels" / "tatoeba" / "test-fr.tsv") == [str(i) for i in range(300)]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["submissions"]["none/seed-1"]["files"]["pawsx/test-en.tsv"]["split"] == "dev"


def _check_rescore(out: Path, root: Path) -> None:
    """Re-reading every exported file gives back the score the store holds."""
    data = load_experiment_data(out / "results.sqlite")
    checked = 0
    for run in data.runs:
        folder = run.target
        ext = "json" if run.target == "mlqa" else "tsv"
        for lang, stored in run.lang_scores.items():
            name = f"{folder}/test-{lang}.{ext}"
            again = rescore(
                root / "none" / "seed-1" / name, root / "labels" / name, run.target, lang
            )
            assert again == pytest.approx(stored, abs=1e-6), (run.target, lang)
            checked += 1
    assert checked == 8


def test_bucc_export_rescores_to_the_mined_f1(tmp_path: Path) -> None:
    """BUCC pairs: mined from (synthetic) embeddings, scored, exported, re-read: same F1."""
    from xstilts.metrics.per_example import example_details
    from xstilts.metrics.retrieval import bucc_f1, mine_bucc_pairs
    from xstilts.reporting.collect import ExperimentData, RunData
    from xstilts.reporting.export import export_xtreme
    from xstilts.tasks.examples import RetrievalCorpus

    rng = np.random.default_rng(0)
    tgt = rng.normal(size=(60, 16)).astype(np.float32)
    src = tgt[:40] + rng.normal(scale=0.8, size=(40, 16)).astype(np.float32)  # noisy copies
    gold = tuple((i, i) for i in range(0, 40, 2))  # half of the sources are gold pairs
    corpus = RetrievalCorpus(
        "zh", tuple(f"s{i}" for i in range(40)), tuple(f"t{i}" for i in range(60)), gold,
        tuple(f"zh-{i:09d}" for i in range(40)), tuple(f"en-{i:09d}" for i in range(60)),
    )  # fmt: skip
    pairs, scores = mine_bucc_pairs(src, tgt, k=4)
    stored = bucc_f1(pairs, scores, gold)
    rec = example_details(get_task("bucc"), [corpus], [(src, tgt)], stored, "zh")
    assert 0 < stored["f1"] < 100
    run = RunData("none", "bucc", 1, "x", {"zh": stored["f1"]}, stored["f1"], {"zh": rec})
    export_xtreme(ExperimentData("e", {}, ["none"], ["bucc"], [run], [], None), tmp_path)
    pred = tmp_path / "none" / "seed-1" / "bucc2018" / "test-zh.tsv"
    labels = tmp_path / "labels" / "bucc2018" / "test-zh.tsv"
    assert read_label(labels)[0] == "zh-000000000\ten-000000000"
    assert rescore(pred, labels, "bucc", "zh") == pytest.approx(stored["f1"])


def test_export_rejects_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "conll"])
    assert result.exit_code == 2 and "unknown export format" in result.output
