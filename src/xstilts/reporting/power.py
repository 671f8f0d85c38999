"""Power: the smallest difference a comparison could detect, and what detecting 1 point takes.

**Variance model** (the one :func:`xstilts.reporting.significance.paired_test` tests with). For
a comparison A − B over ``S`` paired seeds, evaluated on the same ``n`` items (per language),
the difference on item ``i`` in seed ``s`` is::

    x_si = Δ + u_s + a_i + e_si,   u ~ (0, σ²_seed), a ~ (0, σ²_item), e ~ (0, σ²_res)

``u_s``: seed-to-seed noise of the difference (training randomness, paired: the same target
sample, head init and batch order in both conditions); ``a_i``: the item's own effect, shared by
every seed because every run is scored on the same items; ``e_si``: the item-by-seed residual.
The estimate ``D = mean_s mean_i x_si`` has::

    Var(D) = σ²_seed / S + σ²_item / n + σ²_res / (S·n)

(with ``n`` the language-weighted effective count when languages or tasks are averaged). The
three parts come from the same bootstrap the test uses (:func:`significance._aggregate`, the
same resample of items for every seed): ``v_ex`` = bootstrap variance of ``D`` =
``(σ²_item + σ²_res/S)/n``; the mean per-seed bootstrap variance = ``(σ²_item + σ²_res)/n``;
the seed spread ``s_d²`` of the per-seed differences = ``σ²_seed + σ²_res/n``. At the measured
``(S, n)`` the model's variance equals the test's ``SE²`` exactly.

**MDE.** The true Δ that the two-sided t test (Welch–Satterthwaite df, as in the test) rejects
with probability 80 % at ``α' = α/m``: Holm's first step, the worst case for a table of ``m``
comparisons. Solved exactly on the noncentral t (``scipy.stats.nct``), not by the
``(z_{α'/2} + z_β)·SE`` shortcut, which is optimistic with few seeds.

**What would it take.** The same model at other designs: seeds needed for an MDE of 1 point at
today's rows, and rows per language needed at today's seeds (``—`` when no amount of it alone
reaches 1 point: e.g. the seed term alone already exceeds it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from xstilts.metrics.xtreme_score import XTREME_TASKS
from xstilts.reporting.collect import ExperimentData
from xstilts.reporting.deltas import AVG, DeltaTable, _blocks
from xstilts.reporting.render import Grid
from xstilts.reporting.significance import PairedBlock, _aggregate

POWER = 0.8
ALPHA = 0.05
TARGET_POINTS = 1.0
MAX_SEEDS = 1000
MIN_ROW_FACTOR = 1e-6  # the fewest rows searched: one row per million today
MAX_ROW_FACTOR = 1000.0


@dataclass(frozen=True)
class VarianceParts:
    """Estimated variance components of one comparison, in points² (module doc).

    Attributes:
        seed: ``σ²_seed`` (per seed).
        item: ``σ²_item / n`` at today's rows (shared by all seeds).
        residual: ``σ²_res / n`` at today's rows (per seed).
        n_seeds: Seeds measured (``S``).
        rows: Rows per language today (median over the blocks).
    """

    seed: float
    item: float
    residual: float
    n_seeds: int
    rows: int

    def variance(self, seeds: int, row_factor: float = 1.0) -> tuple[float, float]:
        """``(Var(D), df)`` for ``seeds`` seeds and ``row_factor`` × today's rows."""
        v_seed = self.seed / seeds
        var = v_seed + (self.item + self.residual / seeds) / row_factor
        df = math.inf if v_seed <= 0.0 or seeds < 2 else var**2 / (v_seed**2 / (seeds - 1))
        return var, df

    def mde(
        self, m: int = 1, *, seeds: int | None = None, row_factor: float = 1.0,
        alpha: float = ALPHA, power: float = POWER,
    ) -> float:  # fmt: skip
        """Minimum detectable effect (points) with ``m`` comparisons (Holm worst case α/m)."""
        var, df = self.variance(seeds or self.n_seeds, row_factor)
        return detectable(math.sqrt(var), df, alpha / m, power)

    def seeds_for(self, points: float, m: int = 1, *, alpha: float = ALPHA) -> int | None:
        """Fewest seeds for an MDE ≤ ``points`` at today's rows (None: not within 1,000)."""
        if self.mde(m, seeds=MAX_SEEDS, alpha=alpha) > points:
            return None
        lo, hi = 2, MAX_SEEDS  # MDE falls monotonically with seeds: bisect
        if self.mde(m, seeds=lo, alpha=alpha) <= points:
            return lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.mde(m, seeds=mid, alpha=alpha) <= points else (mid, hi)
        return hi

    def rows_for(self, points: float, m: int = 1, *, alpha: float = ALPHA) -> int | None:
        """Fewest rows per language for an MDE ≤ ``points`` at today's seeds (None: no such)."""
        if self.mde(m, row_factor=MAX_ROW_FACTOR, alpha=alpha) > points:
            return None

        def excess(k: float) -> float:  # MDE falls monotonically as rows grow
            return self.mde(m, row_factor=k, alpha=alpha) - points

        lo, hi = (MIN_ROW_FACTOR, 1.0) if excess(1.0) <= 0 else (1.0, MAX_ROW_FACTOR)
        # An MDE that does not depend on rows (no item-level variance, e.g. identical
        # predictions) is met at the fewest rows: brentq needs a sign change, so check first.
        factor = lo if excess(lo) <= 0 else optimize.brentq(excess, lo, hi)
        return math.ceil(factor * self.rows)


def detectable(se: float, df: float, alpha: float, power: float = POWER) -> float:
    """The Δ a two-sided t test at level ``alpha`` (``df``, standard error ``se``) rejects with
    probability ``power`` (noncentral t; normal when ``df`` is infinite)."""
    if se <= 0.0:
        return 0.0
    if df > 1000:  # the normal limit (scipy's nct returns NaN far out at huge df)
        crit = stats.norm.ppf(1 - alpha / 2)

        def reject(nc: float) -> float:
            return float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
    else:
        crit = stats.t.ppf(1 - alpha / 2, df)

        def reject(nc: float) -> float:
            # The opposite tail is ~0 here; scipy's nct answers NaN for it far out.
            far = float(np.nan_to_num(stats.nct.cdf(-crit, df, nc)))
            return float(stats.nct.sf(crit, df, nc)) + far

    hi = crit + 5.0
    while reject(hi) < power:  # very few df: the noncentrality needed grows fast
        hi *= 2.0
    return float(optimize.brentq(lambda nc: reject(nc) - power, 0.0, hi)) * se


def variance_parts(
    blocks: Sequence[PairedBlock], *, n_boot: int = 1000, seed: int = 0
) -> VarianceParts:
    """Estimate the components of the module doc from the blocks of one comparison.

    The bootstrap draws are the ones :func:`paired_test` makes with the same ``seed`` and
    ``n_boot``, so ``variance(S)`` equals that test's ``SE²``.
    """
    if not blocks:
        raise ValueError("variance_parts needs at least one block")
    d, boot = _aggregate(blocks, np.random.default_rng(seed), n_boot)  # [S], [S, B]
    s = len(d)
    v_ex = float(boot.mean(axis=0).var(ddof=1)) if n_boot > 1 else 0.0
    residual = item = 0.0
    seed_var = 0.0
    if s > 1:
        per_seed = float(boot.var(axis=1, ddof=1).mean()) if n_boot > 1 else 0.0
        residual = max(per_seed - v_ex, 0.0) * s / (s - 1)
        seed_var = max(float(d.var(ddof=1)) - residual, 0.0)
    item = v_ex - residual / s
    if item < 0.0:  # sampling noise around a zero item part: keep v_ex whole, all residual
        item, residual = 0.0, v_ex * s
    rows = int(np.median([b.a.shape[1] for b in blocks]))
    return VarianceParts(seed_var, item, residual, s, rows)


# ------------------------------------------------------------------ report tables


def comparison_blocks(
    data: ExperimentData, a: str, b: str, targets: Sequence[str]
) -> list[PairedBlock]:
    """The paired blocks :func:`deltas.compare` tests (common usable seeds; [] without
    per-example data for some run)."""
    seeds: set[int] | None = None
    for t in targets:
        common = {r.seed for r in data.runs_of(a, t)} & {r.seed for r in data.runs_of(b, t)}
        seeds = common if seeds is None else seeds & common
    if not seeds:
        return []
    blocks: list[PairedBlock] = []
    for t in targets:
        a_runs = [r for r in data.runs_of(a, t) if r.seed in seeds]
        b_runs = [r for r in data.runs_of(b, t) if r.seed in seeds]
        if not all(r.details for r in a_runs + b_runs):
            return []
        task_blocks = _blocks(a_runs, b_runs, t)
        if not task_blocks:
            return []
        blocks.extend(task_blocks)
    return blocks


def power_cell(parts: VarianceParts, m: int, points: float = TARGET_POINTS) -> str:
    """``2.1 · 1 pt: 23 seeds | 2,400 rows`` (MDE, then what detecting ``points`` takes)."""
    seeds = parts.seeds_for(points, m)
    rows = parts.rows_for(points, m)
    seeds_text = f"{seeds} seeds" if seeds is not None else "— seeds"
    rows_text = f"{rows:,} rows" if rows is not None else "— rows"
    return f"{parts.mde(m):.1f} · {points:g} pt: {seeds_text} | {rows_text}"


def power_grid(data: ExperimentData, table: DeltaTable, *, n_boot: int = 1000) -> Grid | None:
    """MDE per cell of one Δ table (its Holm family: ``m`` = its tested cells)."""
    if not table.pairs:
        return None
    m = len(table.family())
    label = "XTREME" if set(XTREME_TASKS) <= set(data.avg_targets) else AVG
    cols = [label if c == AVG else c for c in table.columns]
    grid = Grid(f"Power: {table.title}", cols, slug=f"power-{table.title[2:]}"[:60],
                corner="comparison")  # fmt: skip
    grid.slug = "".join(ch if ch.isalnum() else "-" for ch in grid.slug.lower()).strip("-")
    for name, (a, b) in table.pairs.items():
        row: dict[str, str] = {}
        for col, shown in zip(table.columns, cols, strict=True):
            if col not in table.rows.get(name, {}):
                continue
            targets = data.avg_targets if col == AVG else [col]
            blocks = comparison_blocks(data, a, b, targets)
            if blocks:
                row[shown] = power_cell(variance_parts(blocks, n_boot=n_boot), max(m, 1))
        grid.rows[name] = row
    grid.notes = [
        f"Minimum detectable effect (points) at {POWER:.0%} power, two-sided α = {ALPHA} / m "
        f"with m = {m} (Holm's worst case over this table), from the measured seed-to-seed "
        "and item-level variance of the paired differences (reporting/power.py: "
        "Var = σ²_seed/S + σ²_item/n + σ²_res/(S·n)). Then what detecting 1 point would take: "
        "seeds at today's rows, or rows per language at today's seeds (— = not by that alone).",
    ]
    return grid
