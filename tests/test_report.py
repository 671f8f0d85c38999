"""Report logic on synthetic runs with planted effects: means, exclusions, comparisons, verdict."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.reporting.collect import ExperimentData, RunData, prediction_flags
from xstilts.reporting.deltas import best_single, comparison_pairs, delta_tables
from xstilts.reporting.render import html_table, latex, markdown, to_csv
from xstilts.reporting.report import build_report, main_grid

N = 1500  # examples per language
LANGS = ("en", "de")
ACCURACY = {"none": 0.60, "mnli": 0.65, "squad": 0.62, "mnli→squad": 0.70,
            "squad→mnli": 0.65, "mix(mnli+squad)": 0.65}  # fmt: skip


def _run(rng: np.random.Generator, option: str, seed: int, gold: dict) -> RunData:
    details, scores = {}, {}
    for lang in LANGS:
        acc = ACCURACY[option] + rng.normal(0, 0.003)  # small seed-to-seed variation
        right = rng.random(N) < acc
        wrong = (gold[lang] + 1 + rng.integers(0, 2, N)) % 3
        pred = np.where(right, gold[lang], wrong)
        stats = 100.0 * (pred == gold[lang])
        details[lang] = {"ids": [f"{lang}-{i}" for i in range(N)], "kind": "mean",
                         "stats": stats.tolist(), "pred": pred.tolist(),
                         "gold": gold[lang].tolist()}  # fmt: skip
        scores[lang] = float(stats.mean())
    run = RunData(
        option, "xnli", seed, f"{option}-{seed}", scores, float(np.mean([*scores.values()]))
    )
    run.details = details
    return run


@pytest.fixture(scope="module")
def data() -> ExperimentData:
    rng = np.random.default_rng(3)
    gold = {lang: rng.integers(0, 3, N) for lang in LANGS}
    runs = [_run(rng, o, s, gold) for s in (1, 2, 3) for o in ACCURACY]
    # One diverged run of the chain: must be excluded from means and tests, and listed.
    broken = _run(rng, "mnli→squad", 4, gold)
    broken.flags = ["mnli [abc]: training loss not finite"]
    runs.append(broken)
    return ExperimentData("synthetic", {}, list(ACCURACY), ["xnli"], runs, [], None)


def test_main_table_excludes_degenerate_runs_visibly(data: ExperimentData) -> None:
    grid = main_grid(data)
    usable = [r.score for r in data.runs_of("mnli→squad", "xnli")]
    assert len(usable) == 3  # seed 4 left out
    assert grid.rows["mnli→squad"]["xnli"].startswith(f"{np.mean(usable):.1f} ± ")
    assert grid.rows["mnli→squad"]["xnli"].endswith("†1")
    assert any("seed 4" in n and "not finite" in n for n in grid.notes)


def test_comparisons_found_and_planted_effects_detected(data: ExperimentData) -> None:
    pairs = comparison_pairs(data)
    assert pairs["chains"] == [
        ("mnli→squad", "mnli"), ("mnli→squad", "squad"), ("mnli→squad", "squad→mnli"),
        ("mnli→squad", "mix(mnli+squad)"), ("squad→mnli", "squad"), ("squad→mnli", "mnli"),
        ("squad→mnli", "mnli→squad"), ("squad→mnli", "mix(mnli+squad)"),
    ]  # fmt: skip
    assert best_single(data, "xnli") == "mnli"
    tables = {t.title: t for t in delta_tables(data, n_boot=300)}
    chains = tables["Δ chains"]
    win = chains.rows["mnli→squad vs mnli"]["xnli"]  # planted +5 points
    assert win.result.delta == pytest.approx(5.0, abs=1.5) and win.win(0.05)
    assert win.result.n_seeds == 3  # the degenerate seed 4 is not paired
    same = chains.rows["squad→mnli vs mnli"]["xnli"]  # planted 0
    assert abs(same.result.delta) < 1.5 and not same.win(0.05)
    assert chains.rows["squad→mnli vs mnli→squad"]["xnli"].loss(0.05)
    # Holm: every adjusted p is at least its raw p, and the family is the whole table.
    cells = [c for row in chains.rows.values() for c in row.values()]
    assert len(cells) == 8 and all(c.p_holm >= c.result.p for c in cells)


def test_glance_answers_the_chain_questions(data: ExperimentData) -> None:
    report = build_report(data, n_boot=300)
    glance = report.glance
    assert glance is not None and glance.columns == ["xnli"]
    assert glance.rows["does mnli→squad beat mnli?"]["xnli"].startswith("▲ YES +")
    assert glance.rows["does mnli→squad beat mix(mnli+squad)?"]["xnli"].startswith("▲ YES")
    assert glance.rows["does squad→mnli beat mnli?"]["xnli"].startswith("no:")
    assert glance.rows["does squad→mnli beat mnli→squad?"]["xnli"].startswith("▼ WORSE")
    assert "YES" in report.verdict[0]


def test_renderers() -> None:
    from xstilts.reporting.render import Grid

    grid = Grid("Δ a→b & 50%", ["xnli", "avg"], {"a→b": {"xnli": "+1.0 ± 0.2 ▲"}}, ["note_1"])
    md = markdown(grid)
    assert "| a→b | +1.0 ± 0.2 ▲ | — |" in md and "- note_1" in md
    assert to_csv(grid).splitlines() == ["condition,xnli,avg", "a→b,+1.0 ± 0.2 ▲,"]
    tex = latex(grid)
    assert r"a$\rightarrow$b & +1.0 $\pm$ 0.2 $\blacktriangle$ & -- \\" in tex
    assert r"\caption{$\Delta$ a$\rightarrow$b \& 50\%. note\_1}" in tex


def test_majority_flag_uses_gold_distribution() -> None:
    gold = [0] * 50 + [1] * 30 + [2] * 20  # majority 50%
    ok = {"en": {"gold": gold, "pred": [0, 1, 2, 1] * 25, "stats": [100.0] * 60 + [0.0] * 40}}
    low = {"en": {"gold": gold, "pred": [0, 1, 2, 1] * 25, "stats": [100.0] * 50 + [0.0] * 50}}
    assert prediction_flags("xnli", ok, 60.0) == []
    assert prediction_flags("xnli", low, 50.0)


def test_glance_says_which_comparisons_were_not_run(data: ExperimentData) -> None:
    """No squad→mnli and no mixture in the experiment: their questions are rows saying so."""
    from xstilts.reporting.report import missing_comparisons

    keep = ("none", "mnli", "squad", "mnli→squad")
    part = ExperimentData("part", {}, list(keep), ["xnli"],
                          [r for r in data.runs if r.option in keep], [], None)  # fmt: skip
    assert missing_comparisons(part) == {"mnli→squad": ["squad→mnli", "mix(mnli+squad)"]}
    assert missing_comparisons(data) == {}  # every reference is there
    report = build_report(part, n_boot=200)
    glance = report.glance
    assert glance is not None
    assert list(glance.rows) == [
        "does mnli→squad beat mnli?", "does mnli→squad beat squad?",
        "does mnli→squad beat squad→mnli?", "does mnli→squad beat mix(mnli+squad)?",
    ]  # fmt: skip
    assert glance.rows["does mnli→squad beat squad→mnli?"] == {"xnli": "not run"}
    assert any(n.startswith("not run: squad→mnli, mix(mnli+squad) are not in this") for n in
               glance.notes)  # fmt: skip
    assert report.verdict[-1] == (
        "does mnli→squad beat squad→mnli / mix(mnli+squad)? not run (not in this experiment)"
    )
    assert '<td class="na">not run</td>' in html_table(glance)


def test_html_table_transposes_a_table_with_many_more_columns_than_rows() -> None:
    from xstilts.reporting.render import Grid

    langs = [f"l{i:02d}" for i in range(36)]  # 36 x 3-character columns: wider than the page
    grid = Grid("tatoeba per language", [*langs, "avg"], slug="lang-tatoeba")
    grid.rows = {"none": {lg: "1.0" for lg in langs}, "mnli": {"l00": "+2.0 [1.0, 3.0] p=0.001 ▲"}}
    page = html_table(grid)
    assert page.count("<tr>") == 1 + 37  # header + one row per language and the average
    assert "<tr><th>language</th><th>none</th><th>mnli</th></tr>" in page
    assert '<tr><th>l00</th><td>1.0</td><td class="win">+2.0 [1.0, 3.0] p=0.001 ▲</td></tr>' in page
    assert "<tr><th>avg</th><td>—</td><td>—</td></tr>" in page
    narrow = Grid("pawsx per language", ["en", "de", "avg"], {"none": {"en": "1.0"}})
    assert "<tr><th>none</th><td>1.0</td><td>—</td><td>—</td></tr>" in html_table(narrow)
    many_narrow = Grid("few", langs[:20], {"none": {lg: "1" for lg in langs}})  # fits the page
    assert html_table(many_narrow).count("<tr>") == 2
