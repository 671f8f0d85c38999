"""``report.primary``: the declared question is validated before any work and tested as one
Holm family of its own, ahead of the exploratory tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.experiment_spec import Primary
from xstilts.reporting.collect import ExperimentData, RunData
from xstilts.reporting.deltas import PRIMARY_TITLE, delta_tables
from xstilts.reporting.power import ALPHA, detectable, power_grid
from xstilts.reporting.report import build_report

LABELS = ("entailment", "neutral", "contradiction")
OPTIONS = ["none", "mnli", "squad", "mnli→squad"]


def _raw(report: Any) -> dict[str, Any]:
    return {
        "name": "t", "data_dir": "data", "encoder": {"name": "xlm-roberta-large"}, "seeds": [1],
        "intermediate": ["none", "mnli", "squad", ["mnli", "squad"],
                         {"mixture": ["mnli", "squad"]}],
        "targets": ["xnli", "panx"], "report": report,
    }  # fmt: skip


def _load(report: Any) -> tuple[Primary, ...]:
    exp = experiment_from_dict(_raw(report), base_dir=Path("/x"), check_data=False)
    return exp.primary


def test_declared_comparisons_parse_with_ascii_arrows_and_avg() -> None:
    first = {"a": "mnli->squad", "b": "mnli", "target": "xnli"}
    got = _load({"primary": [first, {"a": "mnli→squad", "b": "mix(mnli+squad)", "target": "avg"}]})
    assert got == (Primary("mnli→squad", "mnli", "xnli"),
                   Primary("mnli→squad", "mix(mnli+squad)", "avg"))  # fmt: skip
    assert got[0].name == "mnli→squad vs mnli"
    assert _load(None) == ()


@pytest.mark.parametrize(
    ("report", "key", "words"),
    [
        ({"primary": [{"a": "mnli→sqad", "b": "mnli", "target": "xnli"}]}, "report.primary.0.a",
         "did you mean 'mnli→squad'"),
        ({"primary": [{"a": "mnli", "b": "mnli", "target": "xnli"}]}, "report.primary.0.b",
         "with itself"),
        ({"primary": [{"a": "mnli", "b": "none", "target": "xnl"}]}, "report.primary.0.target",
         "did you mean 'xnli'"),
        ({"primary": [{"a": "mnli", "b": "none"}]}, "report.primary.0", "missing target"),
        ({"primary": [{"a": "mnli", "b": "none", "target": "xnli", "alpha": 0.1}]},
         "report.primary.0.alpha", "unknown key"),
        ({"primary": [{"a": "mnli", "b": "none", "target": "xnli"}] * 2}, "report.primary.1",
         "declared twice"),
        ({"primry": []}, "report.primry", "did you mean 'primary'"),
        ({"primary": "mnli vs none"}, "report.primary", "must be a list"),
        (["primary"], "report", "must be a mapping"),
    ],
)  # fmt: skip
def test_bad_declarations_name_the_key(report: Any, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(report)
    assert info.value.key == key
    assert words in str(info.value)


def _run(option: str, seed: int, preds: list[str], gold: list[str]) -> RunData:
    stats = [100.0 * (x == g) for x, g in zip(preds, gold, strict=True)]
    ids = [f"en-{i}" for i in range(len(gold))]
    run = RunData(option, "xnli", seed, f"{option}{seed}", {"en": float(np.mean(stats))},
                  float(np.mean(stats)))  # fmt: skip
    run.details = {"en": {"ids": ids, "kind": "mean", "stats": stats, "pred": preds, "gold": gold}}
    return run


def _data(spec: dict[str, Any]) -> ExperimentData:
    rng = np.random.default_rng(4)
    n = 500
    gold = [LABELS[i] for i in rng.integers(0, 3, n)]
    runs = []
    for seed in (1, 2, 3, 4, 5):
        for option, acc in zip(OPTIONS, (0.6, 0.62, 0.61, 0.66), strict=True):
            right = rng.random(n) < acc + rng.normal(0, 0.01)
            preds = [g if r else LABELS[(LABELS.index(g) + 1) % 3]
                     for g, r in zip(gold, right, strict=True)]  # fmt: skip
            runs.append(_run(option, seed, preds, gold))
    return ExperimentData("p", spec, OPTIONS, ["xnli"], runs, [], None)


def test_declared_question_is_its_own_holm_family_and_leads_the_report() -> None:
    spec = {"report": {"primary": [{"a": "mnli→squad", "b": "mnli", "target": "xnli"}]}}
    data = _data(spec)
    tables = delta_tables(data, n_boot=300)
    primary, chains = tables[0], next(t for t in tables if t.title == "Δ chains")
    assert primary.title == PRIMARY_TITLE
    assert list(primary.rows) == ["mnli→squad vs mnli"]
    assert sum(len(r) for r in chains.rows.values()) == 2  # the chain vs mnli, vs squad
    mine, theirs = (
        primary.rows["mnli→squad vs mnli"]["xnli"],
        chains.rows["mnli→squad vs mnli"]["xnli"],
    )
    # The same test and delta; only the family differs: alone, its Holm p is its own p.
    assert mine.result.delta == pytest.approx(theirs.result.delta)
    assert mine.result.p == pytest.approx(theirs.result.p)
    assert mine.p_holm == pytest.approx(mine.result.p)
    other = chains.rows["mnli→squad vs squad"]["xnli"].result.p
    p = mine.result.p  # Holm over two, by hand: the smaller p doubled, the larger kept (or more)
    assert theirs.p_holm == pytest.approx(min(1.0, 2 * p if p <= other else max(p, 2 * other)))
    # Its power row uses m = 1 (α itself), the exploratory table m = 2.
    grid = power_grid(data, primary, n_boot=300)
    assert grid is not None
    r = mine.result
    assert grid.rows["mnli→squad vs mnli"]["xnli"].startswith(
        f"{detectable(r.se, r.df, ALPHA):.1f} · 1 pt: "
    )
    assert detectable(r.se, r.df, ALPHA) < detectable(r.se, r.df, ALPHA / 2)
    report = build_report(data, n_boot=300)
    assert report.verdict[0].startswith("declared, xnli: does mnli→squad beat mnli? ")
    assert report.glance is not None
    assert next(iter(report.glance.rows)) == "declared: does mnli→squad beat mnli?"


def test_a_declaration_the_runs_cannot_answer_is_said_not_crashed() -> None:
    spec = {"report": {"primary": [{"a": "squad→mnli", "b": "mnli", "target": "xnli"}]}}
    report = build_report(_data(spec), n_boot=200)
    assert any("report.primary cannot be tested" in line and "squad→mnli" in line
               for line in report.verdict)  # fmt: skip
