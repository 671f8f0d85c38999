"""Issue 12, finding 9: what is not scored is said, with its exact cause, by both
``xstilts results`` and ``xstilts report``; degenerate runs are marked in both."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import tiny_encoder
from xstilts.pipelines import executor
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import Chain, build_plan
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.reporting.collect import load_experiment_data
from xstilts.reporting.report import language_grid, main_grid
from xstilts.reporting.tables import language_table, render, xtreme_table
from xstilts.results.store import ResultsStore
from xstilts.tasks import get_task
from xstilts.tasks.data import available_languages, load_examples
from xstilts.training.evaluate import EvalRecord

NO_GOLD = "no gold labels"

# ------------------------------------------------------------------ XQuAD Romanian


def test_xquad_scores_romanian_from_the_official_release(data_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xtreme" / "xquad"
    folder.mkdir(parents=True)
    # The slice has no Romanian: the German file stands in for xquad.ro.json's layout.
    shutil.copy(data_root / "xtreme/xquad/xquad.de.json", folder / "xquad.ro.json")
    shutil.copy(data_root / "xtreme/xquad/xquad.en.json", folder / "xquad.en.json")
    xquad = get_task("xquad")
    assert "ro" in xquad.eval_languages
    assert available_languages(xquad, tmp_path, "test") == ["en", "ro"]
    assert len(load_examples(xquad, tmp_path, "test", "ro")) == 536


def test_a_file_of_an_undeclared_language_is_named_by_xstilts_tasks(
    data_root: Path, tmp_path: Path
) -> None:
    from xstilts.reporting.task_view import tasks_table

    folder = tmp_path / "xtreme" / "xquad"
    folder.mkdir(parents=True)
    shutil.copy(data_root / "xtreme/xquad/xquad.de.json", folder / "xquad.it.json")  # no Italian
    console = Console(record=True, width=400)
    console.print(tasks_table(tmp_path))
    line = next(ln for ln in console.export_text().splitlines() if ln.startswith("│ xquad "))
    assert "not used, not a language of xquad: xtreme/xquad/xquad.it.json" in line


# ------------------------------------------------------------------ a real run


@pytest.fixture(scope="module")
def pawsx_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """PAWS-X en/de/fr on disk plus an Italian file PAWS-X does not have; fr not requested."""
    root = tmp_path_factory.mktemp("notscored")
    folder = root / "data" / "xtreme" / "pawsx"
    folder.mkdir(parents=True)
    for name in ("train-en.tsv", "dev-en.tsv", "dev-de.tsv", "dev-fr.tsv"):
        shutil.copy(data_root / "xtreme" / "pawsx" / name, folder / name)
    shutil.copy(folder / "dev-de.tsv", folder / "dev-it.tsv")
    raw = {
        "name": "ns", "data_dir": str(root / "data"), "output_dir": str(root / "out"),
        "encoder": tiny_encoder(600, ["pawsx"], 200),
        "intermediate": ["none"], "targets": ["pawsx"],
        "train": {"lr": 1e-3, "max_steps": 1, "batch_size": 8, "max_train_examples": 16,
                  "max_dev_examples": 8, "max_length": 48, "precision": "fp32"},
        "evaluation": {"max_eval_examples": 8, "languages": {"pawsx": ["de", "en"]}},
    }  # fmt: skip
    exp = experiment_from_dict(raw)
    logger = logging.getLogger("xstilts")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    finally:
        logger.removeHandler(handler)
    return {"db": exp.store_path, "log": [r.getMessage() for r in records]}


def test_the_run_says_which_file_is_not_scored(pawsx_run: dict[str, Any]) -> None:
    assert any(
        "xtreme/pawsx/dev-it.tsv on disk is not scored: 'it' is not a language of pawsx" in m
        for m in pawsx_run["log"]
    )


def test_results_and_report_say_what_is_not_scored(pawsx_run: dict[str, Any]) -> None:
    expected = [
        "pawsx: not scored: xtreme/pawsx/dev-it.tsv ('it' is not a language of pawsx v1)",
        "pawsx: not scored: fr (not in evaluation.languages.pawsx)",
    ]
    with ResultsStore(pawsx_run["db"]) as store:
        main, per_language = xtreme_table(store), language_table(store, "pawsx")
    for note in expected:
        assert note in main.caption.splitlines()
        assert note in per_language.caption.splitlines()
        assert note in main_grid(load_experiment_data(pawsx_run["db"])).notes
    assert NO_GOLD not in main.caption


# ------------------------------------------------------------------ synthetic stores

ENC = {"name": "xlm-roberta-large"}


def _spec(task: str, seed: int) -> StageSpec:
    return StageSpec("train", (task,), "target", ENC, "p", seed, {"lr": 1e-5})


def _curve(*losses: float) -> dict[str, Any]:
    return {"dev_curve": [{"step": i, "train_loss": x} for i, x in enumerate(losses, 1)]}


class _Summary:
    """What the evaluator hands the store (EvalSummary's fields), for a hand-made store."""

    def __init__(self, task: str, languages: dict[str, int], unlabelled: list[str]) -> None:
        self.d = {
            "task": task, "task_version": get_task(task).version, "key": "k",
            "status": "evaluated", "reason": "", "languages": languages, "unlabelled": unlabelled,
            "not_scored": {}, "files": {}, "data_dir": "/d",
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return self.d


@pytest.fixture
def store_db(tmp_path: Path) -> Path:
    """xnli seeds 1-3 (seed 3 diverged), tydiqa unlabelled, panx failed, udpos interrupted."""
    db = tmp_path / "results.sqlite"
    chains = []
    with ResultsStore(db) as store:
        store.record_experiment("e", {})
        for seed, acc, loss in ((1, 70.0, 0.5), (2, 72.0, 0.4), (3, 33.0, math.nan)):
            spec = _spec("xnli", seed)
            store.record_stage(spec, "complete", _curve(1.0, loss))
            rec = EvalRecord("xnli", "1", "de", "test", "accuracy", acc, 100, {})
            store.record_metrics(spec.stage_id, seed, [rec], replace=["xnli"])
            store.record_evaluations(spec.stage_id, [_Summary("xnli", {"de": 100}, [])])
            chains.append(Chain("xnli", "none", "xnli", seed, ("b", spec.stage_id)))
        tydiqa = _spec("tydiqa", 1)
        store.record_stage(tydiqa, "complete", _curve(1.0, 0.5))
        store.record_evaluations(tydiqa.stage_id, [_Summary("tydiqa", {"ar": 50}, ["ar"])])
        panx, udpos = _spec("panx", 1), _spec("udpos", 1)
        store.record_stage(panx, "failed", {"error": "TrainingError: loss is nan"})
        store.record_stage(udpos, "trained", _curve(1.0, 0.5))  # killed while evaluating
        for task, spec in (("tydiqa", tydiqa), ("panx", panx), ("udpos", udpos)):
            chains.append(Chain(task, "none", task, 1, ("b", spec.stage_id)))
        store.replace_runs("e", chains)
    return db


def test_degenerate_runs_are_marked_alike_by_results_and_report(store_db: Path) -> None:
    with ResultsStore(store_db) as store:
        table = xtreme_table(store)
        langs = language_table(store, "xnli")
    cell = table.rows["none"]["xnli"]
    assert cell.values == (70.0, 72.0) and cell.degenerate == (33.0,)
    assert cell.text() == "71.0 ± 1.4 †1"
    assert table.value("none", "xnli") == pytest.approx(71.0)  # the diverged seed is left out
    assert langs.rows["none"]["de"].text() == langs.rows["none"]["avg"].text() == "71.0 ± 1.4 †1"
    data = load_experiment_data(store_db)
    grid = main_grid(data)
    assert grid.rows["none"]["xnli"] == cell.text()
    assert language_grid(data, "xnli").rows["none"] == {
        "de": langs.rows["none"]["de"].text(), "avg": langs.rows["none"]["avg"].text(),
    }  # fmt: skip
    why = "† excluded (degenerate): none → xnli, seed 3: xnli ["
    assert any(n.startswith(why) and "training loss not finite" in n for n in grid.notes)
    assert any(n.startswith(why) for n in table.caption.splitlines())
    rendered = Console(record=True, width=300)
    rendered.print(render(table))  # brackets in the notes are text, not markup
    assert f"xnli [{_spec('xnli', 3).stage_id[:8]}]" in rendered.export_text()


def test_the_no_gold_note_appears_only_for_missing_gold(store_db: Path) -> None:
    with ResultsStore(store_db) as store:
        caption = xtreme_table(store).caption.splitlines()
    notes = main_grid(load_experiment_data(store_db)).notes
    for lines in (caption, notes):
        tydiqa = [n for n in lines if n.startswith("tydiqa: ")]
        assert len(tydiqa) == 1 and NO_GOLD in tydiqa[0]
        (panx,) = [n for n in lines if n.startswith("panx: ")]
        assert "its stage failed (TrainingError: loss is nan)" in panx and NO_GOLD not in panx
        (udpos,) = [n for n in lines if n.startswith("udpos: ")]
        assert "not evaluated: the run stopped" in udpos and NO_GOLD not in udpos
        assert not [n for n in lines if n.startswith("xnli: ")]  # scored: nothing to say
