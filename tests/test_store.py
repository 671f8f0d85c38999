"""Results store: schema, idempotent upserts, and the tables built from hand-made metrics."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from xstilts.errors import DataError
from xstilts.metrics.xtreme_score import XTREME_TASKS
from xstilts.pipelines.plan import Chain
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.reporting.tables import XTREME_COLUMN, language_table, render, xtreme_table
from xstilts.results.store import ResultsStore
from xstilts.training.evaluate import EvalRecord

ENC = {"name": "xlm-roberta-large"}


def _rec(task: str, lang: str, metric: str, value: float) -> EvalRecord:
    return EvalRecord(task, "1", lang, "dev", metric, value, 100, {"note": "x"})


def _stage(task: str, seed: int) -> StageSpec:
    return StageSpec("train", (task,), "target", ENC, "p", seed, {"lr": seed})


def test_schema_and_idempotent_upserts(tmp_path: Path) -> None:
    db = tmp_path / "r" / "results.sqlite"
    spec = _stage("xnli", 1)
    with ResultsStore(db) as store:
        store.record_experiment("e", {"name": "e"})
        store.record_experiment("e", {"name": "e", "seeds": [1]})
        store.record_stage(spec, "complete", {"train_seconds": 3.5, "padding_efficiency": 0.9})
        store.record_stage(spec, "complete", {})  # re-recording keeps the metrics
        recs = [_rec("xnli", "en", "accuracy", 80.0), _rec("xnli", "de", "accuracy", 70.0)]
        assert store.record_metrics(spec.stage_id, 1, recs) == 2
        store.record_metrics(spec.stage_id, 1, recs)
        store.record_metrics(spec.stage_id, 1, [_rec("xnli", "en", "accuracy", 81.0)])
        assert store.task_metrics(spec.stage_id, "xnli") == {
            "de": {"accuracy": 70.0}, "en": {"accuracy": 81.0},
        }  # fmt: skip
        rows = store.stage_rows()
        assert len(rows) == 1
        assert rows[0]["train_seconds"] == 3.5
        assert rows[0]["metrics"]["padding_efficiency"] == 0.9
        assert set(rows[0]["versions"]) == {"xstilts", "torch", "transformers", "python"}
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"experiments", "stages", "runs", "metrics", "evaluations"}
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (2,)
    assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone() == (1,)


def test_a_new_task_version_replaces_the_old_scores(tmp_path: Path) -> None:
    spec = _stage("tatoeba", 1)
    v2 = EvalRecord("tatoeba", "2", "de", "test", "accuracy", 60.0, 300, {})
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.record_metrics(spec.stage_id, 1, [_rec("tatoeba", "de", "accuracy", 90.0)])
        store.record_metrics(spec.stage_id, 1, [_rec("xnli", "de", "accuracy", 70.0)])
        store.record_metrics(spec.stage_id, 1, [v2])  # re-scored after a scoring change
        assert store.task_metrics(spec.stage_id, "tatoeba") == {"de": {"accuracy": 60.0}}
        assert store.task_versions(["tatoeba", "xnli"]) == {"tatoeba": ["2"], "xnli": ["1"]}


# Headline number per XTREME task for the "mnli" row (seed 1): mean 410 / 9.
FULL = {
    "xnli": [("accuracy", 70.0)], "pawsx": [("accuracy", 80.0)], "udpos": [("f1", 60.0)],
    "panx": [("f1", 50.0)], "xquad": [("exact_match", 40.0), ("f1", 60.0)],
    "mlqa": [("exact_match", 30.0), ("f1", 50.0)],
    "tydiqa": [("exact_match", 20.0), ("f1", 40.0)], "bucc": [("f1", 10.0)],
    "tatoeba": [("accuracy", 20.0)],
}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    s = ResultsStore(tmp_path / "results.sqlite")
    s.record_experiment("e", {})
    chains = []
    # "none": xnli only, two seeds: (80+70)/2 = 75 and (82+72)/2 = 77.
    for seed, (en, de) in ((1, (80.0, 70.0)), (2, (82.0, 72.0))):
        sid = _stage("xnli", seed).stage_id
        s.record_metrics(
            sid, seed, [_rec("xnli", "en", "accuracy", en), _rec("xnli", "de", "accuracy", de)]
        )
        chains.append(Chain("xnli", "none", "xnli", seed, ("b", sid)))
    for task, metrics in FULL.items():
        sid = f"mnli-{task}"
        s.record_metrics(sid, 1, [_rec(task, lang, m, v) for m, v in metrics for lang in "ab"])
        chains.append(Chain(f"mnli→{task}", "mnli", task, 1, ("b", "m", sid)))
    s.replace_runs("e", chains)
    yield s
    s.close()


def test_xtreme_table_values(store: ResultsStore) -> None:
    table = xtreme_table(store)
    assert table.columns == ["xnli", *[t for t in FULL if t != "xnli"], XTREME_COLUMN]
    assert list(table.rows) == ["none", "mnli"]
    cell = table.rows["none"]["xnli"]
    assert cell.mean == pytest.approx(76.0)
    assert cell.std == pytest.approx(2**0.5)
    assert cell.text() == "76.0 ± 1.4"
    assert table.value("mnli", "xquad") == pytest.approx(50.0)  # (EM + F1) / 2
    assert table.value("mnli", XTREME_COLUMN) == pytest.approx(410 / 9)
    assert table.value("none", XTREME_COLUMN) is None
    missing = [t for t in XTREME_TASKS if t != "xnli"]
    assert "missing: " + ", ".join(missing) in table.caption
    assert "xnli v1" in table.caption
    assert render(table).row_count == 2


def test_language_table_and_unknown_task(store: ResultsStore) -> None:
    table = language_table(store, "xnli")
    # The catalog's language order first, then undeclared languages seen in the store.
    assert table.columns == ["de", "en", "a", "b", "avg"]
    assert table.value("none", "en") == pytest.approx(81.0)
    assert table.value("none", "avg") == pytest.approx(76.0)
    assert table.value("mnli", "en") is None
    assert table.value("mnli", "a") == pytest.approx(70.0)
    with pytest.raises(DataError, match="no results for task 'udpos'"):
        language_table(store, "udpos", experiment="other")


def test_runs_are_replaced(store: ResultsStore) -> None:
    store.replace_runs("e", [Chain("xnli", "none", "xnli", 1, ("b", "s"))])
    assert [r.option for r in store.runs("e")] == ["none"]
