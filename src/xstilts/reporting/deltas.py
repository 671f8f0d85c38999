"""Which comparisons a report makes, and their tested deltas (one table = one Holm family).

* vs ``none`` (no intermediate training) for every other condition;
* vs the best single task (highest mean score on that target among one-task conditions);
* for every chain ``A→B``: vs ``A`` alone, ``B`` alone, ``B→A`` and the mixture ``mix(A+B)``
  (whichever exist in the experiment).

Columns are the targets plus ``avg`` (the mean over targets; it is the XTREME score when all
nine XTREME tasks are targets). A cell compares the runs of the common, non-degenerate seeds;
the per-example test is :func:`xstilts.reporting.significance.paired_test`. When a run lacks
per-example data the cell falls back to seeds only (a t-test on the per-seed differences).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment import ARROW
from xstilts.pipelines.primary import AVG, parse_report
from xstilts.reporting.collect import ExperimentData, RunData
from xstilts.reporting.significance import PairedBlock, TestResult, holm, paired_test


@dataclass
class DeltaCell:
    """One tested comparison; ``p_holm`` is set when its table is corrected."""

    result: TestResult
    p_holm: float = 1.0
    method: str = "bootstrap"

    def win(self, alpha: float) -> bool:
        """A significant improvement after correction."""
        return self.result.delta > 0 and self.p_holm < alpha

    def loss(self, alpha: float) -> bool:
        """A significant degradation after correction."""
        return self.result.delta < 0 and self.p_holm < alpha

    def text(self, alpha: float = 0.05) -> str:
        """``+3.1 [1.0, 5.2] p=0.004 ▲`` (▲ win, ▼ loss after Holm)."""
        r = self.result
        if self.method == "untested":
            return f"{r.delta:+.1f} (untested)"
        mark = " ▲" if self.win(alpha) else " ▼" if self.loss(alpha) else ""
        return f"{r.delta:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}] p={_p(self.p_holm)}{mark}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


@dataclass
class DeltaTable:
    """Rows ``"A vs B"`` x columns (targets + avg) of tested deltas, Holm-corrected."""

    title: str
    columns: list[str]
    rows: dict[str, dict[str, DeltaCell]] = field(default_factory=dict)
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def family(self) -> list[DeltaCell]:
        """The tested cells: the Holm family (its size is the ``m`` of the MDE)."""
        # Untested cells (one seed, no per-example data) are not part of the family.
        return [c for row in self.rows.values() for c in row.values() if c.method != "untested"]

    def correct(self) -> None:
        """Holm–Bonferroni over every tested cell of the table."""
        cells = self.family()
        for cell, adj in zip(cells, holm([c.result.p for c in cells]), strict=True):
            cell.p_holm = adj


def _blocks(a_runs: Sequence[RunData], b_runs: Sequence[RunData], task: str) -> list[PairedBlock]:
    """Aligned per-language blocks of two run lists (same seeds, same order)."""
    blocks = []
    langs = set.intersection(*(set(r.details or {}) for r in [*a_runs, *b_runs]))
    for lang in sorted(langs):
        recs = [r.details[lang] for r in [*a_runs, *b_runs] if r.details]
        if any(rec.get("stats") is None for rec in recs):
            continue  # unlabelled language: nothing to test
        if any(rec["ids"] != recs[0]["ids"] for rec in recs):
            continue  # different example sets: not pairable
        kind = recs[0]["kind"]
        n = len(a_runs)
        stack = [np.asarray(rec["stats"], dtype=np.float64) for rec in recs]
        blocks.append(PairedBlock(task, lang, kind, np.stack(stack[:n]), np.stack(stack[n:])))
    return blocks


def _seed_only(diffs: Sequence[float]) -> TestResult:
    """A paired t-test over seeds (no per-example data); p = NaN with a single seed."""
    n = len(diffs)
    d = np.asarray(diffs, dtype=np.float64)
    if n < 2:
        nan = float("nan")
        return TestResult(float(d.mean()), nan, nan, nan, nan, 0.0, n, 0)
    se = float(d.std(ddof=1)) / math.sqrt(n)
    mean = float(d.mean())
    if se == 0:  # SciPy answers NaN here; identical differences are no evidence of noise
        return TestResult(mean, mean, mean, 1.0 if mean == 0 else 0.0, 0.0, n - 1, n, 0)
    test = stats.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(0.95)
    return TestResult(mean, float(ci.low), float(ci.high), float(test.pvalue), se, n - 1, n, 0)


def compare(
    data: ExperimentData,
    a: str,
    b: str,
    targets: Sequence[str],
    *,
    n_boot: int = 1000,
    lang: str | None = None,
) -> DeltaCell | None:
    """Test option ``a`` against ``b`` on the average of ``targets`` (one target = that task).

    Only seeds where both options have a usable run on every target take part. With ``lang``
    (one target), only that language is compared.
    """
    seeds = None
    for t in targets:
        common = {r.seed for r in data.runs_of(a, t)} & {r.seed for r in data.runs_of(b, t)}
        seeds = common if seeds is None else seeds & common
    if not seeds:
        return None
    blocks: list[PairedBlock] = []
    complete = True
    for t in targets:
        a_runs = [r for r in data.runs_of(a, t) if r.seed in seeds]
        b_runs = [r for r in data.runs_of(b, t) if r.seed in seeds]
        task_blocks = _blocks(a_runs, b_runs, t) if all(r.details for r in a_runs + b_runs) else []
        task_blocks = [blk for blk in task_blocks if lang is None or blk.lang == lang]
        complete &= bool(task_blocks)
        blocks.extend(task_blocks)
    if complete and blocks:
        return DeltaCell(paired_test(blocks, n_boot=n_boot))

    def value(run: RunData) -> float | None:
        return run.score if lang is None else run.lang_scores.get(lang)

    diffs = []
    for s in sorted(seeds):
        pairs = [
            (value(next(r for r in data.runs_of(a, t) if r.seed == s)),
             value(next(r for r in data.runs_of(b, t) if r.seed == s)))
            for t in targets
        ]  # fmt: skip
        if any(x is None or y is None for x, y in pairs):
            return None
        diffs.append(float(np.mean([x - y for x, y in pairs])))  # type: ignore[operator]
    result = _seed_only(diffs)
    return DeltaCell(result, p_holm=result.p, method="seeds" if len(diffs) > 1 else "untested")


def mean_score(data: ExperimentData, option: str, target: str) -> float | None:
    """Mean over usable seeds of one cell."""
    runs = data.runs_of(option, target)
    return float(np.mean([r.score for r in runs])) if runs else None


def single_options(data: ExperimentData) -> list[str]:
    """Conditions made of one task (no chain, no mixture)."""
    return [o for o in data.options if o != "none" and ARROW not in o and "(" not in o]


def comparison_pairs(data: ExperimentData) -> dict[str, list[tuple[str, str]]]:
    """Table name -> (option, reference) pairs present in the experiment."""
    opts = set(data.options)
    out: dict[str, list[tuple[str, str]]] = {}
    if "none" in opts:
        out["vs no intermediate task"] = [(o, "none") for o in data.options if o != "none"]
    chains: list[tuple[str, str]] = []
    for o in data.options:
        steps = o.split(ARROW)
        if len(steps) != 2 or any("(" in s for s in steps):
            continue
        first, second = steps
        refs = [first, second, f"{second}{ARROW}{first}", f"mix({first}+{second})",
                f"mix({second}+{first})"]  # fmt: skip
        chains.extend((o, ref) for ref in refs if ref in opts)
    if chains:
        out["chains"] = chains
    return out


def best_single(data: ExperimentData, target: str) -> str | None:
    """The one-task condition with the highest mean score on ``target``."""
    scored = [(mean_score(data, o, target), o) for o in single_options(data)]
    scored = [(s, o) for s, o in scored if s is not None]
    return max(scored)[1] if scored else None


PRIMARY_TITLE = "Δ primary: the declared question"


def primary_table(data: ExperimentData, *, n_boot: int = 1000) -> DeltaTable | None:
    """The comparisons the experiment declared in ``report.primary``, one Holm family.

    None when the experiment declares none; a table with a note (and no rows) when the
    declaration no longer matches the stored runs (e.g. a condition that was not run).
    """
    raw = (data.spec or {}).get("report")
    if not raw:
        return None
    table = DeltaTable(PRIMARY_TITLE, [])
    try:
        declared = parse_report(raw, data.options, data.targets)
    except ConfigError as exc:
        table.notes.append(f"report.primary cannot be tested on these runs: {exc}")
        return table
    if not declared:
        return None
    table.columns = list(dict.fromkeys(p.target for p in declared))
    for item in declared:
        targets = data.avg_targets if item.target == AVG else [item.target]
        table.pairs[item.name] = (item.a, item.b)
        cell = compare(data, item.a, item.b, targets, n_boot=n_boot) if targets else None
        row = table.rows.setdefault(item.name, {})
        if cell is not None:
            row[item.target] = cell
    table.correct()
    table.notes.append(
        f"Declared in the experiment file (report.primary) as its question: one Holm family of "
        f"its own (m = {len(table.family())}). Every other Δ table is exploratory, each its own "
        "Holm family."
    )
    return table


def delta_tables(data: ExperimentData, *, n_boot: int = 1000) -> list[DeltaTable]:
    """Every comparison table of the experiment, Holm-corrected per table.

    The declared question (``report.primary``) comes first when the experiment has one.
    """
    columns = [*data.targets, AVG]
    tables = []
    primary = primary_table(data, n_boot=n_boot)
    if primary is not None:
        tables.append(primary)
    for title, pairs in comparison_pairs(data).items():
        table = DeltaTable(f"Δ {title}", columns)
        for a, b in pairs:
            name = f"{a} vs {b}"
            table.pairs[name] = (a, b)
            row = {t: compare(data, a, b, [t], n_boot=n_boot) for t in data.targets}
            if len(data.avg_targets) > 1:
                row[AVG] = compare(data, a, b, data.avg_targets, n_boot=n_boot)
            table.rows[name] = {k: v for k, v in row.items() if v is not None}
        table.correct()
        tables.append(table)
    best = DeltaTable("Δ vs the best single task (per target)", data.targets)
    for target in data.targets:
        ref = best_single(data, target)
        if ref is None:
            continue
        for option in data.options:
            if option in (ref, "none"):
                continue
            cell = compare(data, option, ref, [target], n_boot=n_boot)
            if cell is not None:
                best.rows.setdefault(option, {})[target] = cell
        best.notes.append(f"{target}: best single task = {ref}")
    if best.rows:
        best.correct()
        tables.append(best)
    return tables


def language_delta_table(data: ExperimentData, target: str, *, n_boot: int = 1000) -> DeltaTable:
    """Every condition vs ``none`` on one target, per language and averaged (one Holm family)."""
    langs = sorted({lang for r in data.runs if r.target == target for lang in r.lang_scores})
    table = DeltaTable(f"Δ vs no intermediate task per language: {target}", [*langs, AVG])
    if "none" not in data.options:
        return table
    for option in data.options:
        if option == "none":
            continue
        name = f"{option} vs none"
        table.pairs[name] = (option, "none")
        row = {lg: compare(data, option, "none", [target], n_boot=n_boot, lang=lg) for lg in langs}
        row[AVG] = compare(data, option, "none", [target], n_boot=n_boot)
        table.rows[name] = {k: v for k, v in row.items() if v is not None}
    table.correct()
    return table
