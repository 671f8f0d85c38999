"""``xstilts export --format xtreme``: XTREME's layout and formats, re-scored = stored metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_encoder
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
        "encoder": tiny_encoder(1000, ["sst2", "pawsx"], 200),
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
    from xstilts.metrics.retrieval import bucc_f1, mine_bucc_pairs
    from xstilts.reporting.collect import ExperimentData, RunData
    from xstilts.reporting.export import export_xtreme
    from xstilts.tasks.examples import RetrievalCorpus
    from xstilts.tasks.formats import example_details

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


# ------------------------------------------------------------------ XTREME's own spellings

# The label strings of XTREME's label files and classifiers (google-research/xtreme:
# processors/xnli.py and processors/pawsx.py get_labels(); utils_preprocess.py keeps UD's UPOS
# column and WikiANN's BIO tags). evaluate.py compares these strings as they are.
XTREME_SPELLINGS = {
    "xnli": {"contradiction", "entailment", "neutral"},
    "pawsx": {"0", "1"},
    "udpos": {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
              "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"},
    "panx": {"B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"},
}  # fmt: skip
EVAL_FILES = {
    "xnli": "xtreme/xnli/dev-de.tsv",
    "pawsx": "xtreme/pawsx/dev-de.tsv",
    "panx": "xtreme/panx/dev-de.tsv",
    "udpos": "xtreme/udpos/UD_German-GSD/de_gsd-ud-test.conllu",
}
N_GOLD = 60


def _xtreme_gold(task: str, path: Path) -> list[Any]:
    """The first gold labels (or tag sentences) of a file, read as XTREME's scripts read it."""
    import csv

    lines = path.read_text(encoding="utf-8").split("\n")
    if task in ("xnli", "pawsx"):  # csv-written TSV, label in the third column
        return [row[2].strip() for row in csv.reader(lines[:N_GOLD], delimiter="\t")]
    sentences: list[list[str]] = [[]]
    for line in lines:
        items = line.strip().split("\t")
        if task == "udpos" and len(items) == 10 and items[0].isdigit():
            sentences[-1].append(items[3])  # UPOS, as utils_preprocess.py's udpos reader
        elif task == "panx" and len(items) == 2:
            sentences[-1].append(items[1])
        elif not line.strip() and sentences[-1]:
            sentences.append([])
    return [s for s in sentences if s][:N_GOLD]


def _xtreme_score(task: str, pred: Path, gold: list[Any]) -> float:
    """XTREME evaluate.py's accuracy (classification) or exact tag agreement (tagging)."""
    if task in ("xnli", "pawsx"):
        predictions = read_label(pred)
        return 100.0 * sum(int(p == g) for p, g in zip(predictions, gold, strict=True)) / len(gold)
    tags = read_tag(pred)
    return 100.0 * sum(p == g for p, g in zip(tags, gold, strict=True)) / len(gold)


@pytest.mark.parametrize("task", sorted(EVAL_FILES))
def test_perfect_predictions_score_100_against_xtremes_own_label_files(
    task: str, data_root: Path, tmp_path: Path
) -> None:
    """XNLI used to be written as 'contradictory': a perfect file scored 66.7 with XTREME."""
    from xstilts.reporting.collect import ExperimentData, RunData
    from xstilts.reporting.export import export_xtreme
    from xstilts.tasks.data import load_examples
    from xstilts.tasks.formats import example_details

    spec = get_task(task)
    examples = load_examples(spec, data_root, spec.eval_split, "de", limit=N_GOLD)
    perfect = [ex.tags if spec.type.value == "tagging" else ex.label for ex in examples]
    rec = example_details(spec, examples, perfect, {}, "de")
    run = RunData("none", task, 1, "x", {"de": 100.0}, 100.0, {"de": rec})
    export_xtreme(ExperimentData("e", {}, ["none"], [task], [run], [], None), tmp_path)
    gold = _xtreme_gold(task, data_root / EVAL_FILES[task])
    assert len(gold) == N_GOLD
    name = f"{task}/test-de.tsv"
    assert _xtreme_score(task, tmp_path / "none" / "seed-1" / name, gold) == 100.0
    assert _xtreme_score(task, tmp_path / "labels" / name, gold) == 100.0  # gold file too


@pytest.mark.parametrize("task", sorted(XTREME_SPELLINGS))
def test_every_label_has_xtremes_spelling(task: str) -> None:
    from xstilts.reporting.export import XTREME_LABELS, xtreme_label

    assert set(XTREME_LABELS[task]) == set(get_task(task).labels)
    assert {xtreme_label(task, name) for name in get_task(task).labels} == XTREME_SPELLINGS[task]


def test_a_label_without_xtreme_spelling_is_refused() -> None:
    from xstilts.errors import DataError
    from xstilts.reporting.export import xtreme_label

    assert xtreme_label("xnli", "contradiction") == "contradiction"
    assert xtreme_label("pawsx", "paraphrase") == "1"
    with pytest.raises(DataError, match="'contradictory' has no XTREME spelling"):
        xtreme_label("xnli", "contradictory")


def test_reidentified_qa_ids_are_stated_in_the_manifest(data_root: Path, tmp_path: Path) -> None:
    """TyDiQA's English train file repeats ids (89 for 3,696 QAs): the renaming is stated."""
    from xstilts.reporting.collect import ExperimentData, RunData
    from xstilts.reporting.export import export_xtreme
    from xstilts.tasks.formats import example_details
    from xstilts.tasks.readers import get_reader

    spec = get_task("tydiqa")
    source = spec.splits["train"][0]
    path = data_root / source.pattern_for("en")
    examples = get_reader(source.reader)(path, source, spec, "en")[:40]
    raw = json.loads(path.read_text(encoding="utf-8"))
    file_ids = [qa["id"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]][:40]
    assert len(set(file_ids)) < 40  # the file really repeats ids
    answers = [ex.answers[0].text for ex in examples]
    rec = example_details(spec, examples, answers, {}, "en")
    unique = {**rec, "ids": [f"q{i}" for i in range(40)]}  # a file with its own unique ids

    def export(details: dict[str, Any], out: Path) -> dict[str, Any]:
        run = RunData("none", "tydiqa", 1, "x", {"en": 100.0}, 100.0, {"en": details})
        return export_xtreme(ExperimentData("e", {}, ["none"], ["tydiqa"], [run], [], None), out)

    manifest = export(rec, tmp_path)
    entry = manifest["submissions"]["none/seed-1"]["files"]["tydiqa/test-en.json"]
    expected: dict[str, list[str]] = {}
    for position, old in enumerate(file_ids):
        expected.setdefault(old, []).append(f"{old}#{position}")
    assert entry["reidentified_ids"]["old_to_new"] == expected
    assert "repeats question ids" in entry["reidentified_ids"]["why"]
    pred = tmp_path / "none" / "seed-1" / "tydiqa" / "test-en.json"
    new_ids = [i for ids in expected.values() for i in ids]
    assert sorted(json.loads(pred.read_text(encoding="utf-8"))) == sorted(new_ids)
    assert rescore(pred, tmp_path / "labels" / "tydiqa" / "test-en.json", "tydiqa", "en") == 100.0
    plain = export(unique, tmp_path / "b")["submissions"]["none/seed-1"]["files"]
    assert "reidentified_ids" not in plain["tydiqa/test-en.json"]  # unique ids: as they are
    on_disk = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["submissions"]["none/seed-1"]["files"]["tydiqa/test-en.json"] == entry
