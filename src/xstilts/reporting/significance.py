"""Is a difference real? Paired bootstrap over evaluation examples, combined with seed variance.

Two systems A and B (intermediate conditions) were evaluated on the same examples with the
same training seeds. For one comparison (a task/language cell, a task average over languages,
or the average over tasks), with per-seed differences ``d_s`` and their mean ``D``:

* **Examples.** One bootstrap replicate draws every language's examples with replacement ONCE
  and applies the same draw to every seed of both systems (the test set is one sample shared
  by all runs, so resampling it per seed would understate its variance). ``v_ex`` = variance of
  the replicated ``D``. Statistics are re-scored from per-example sufficient statistics, so an
  F1 over counts is recomputed exactly, not averaged per sentence.
* **Seeds.** The spread of ``d_s`` over seeds also carries the example-by-seed interaction that
  ``v_ex`` already holds; that part (estimated from per-seed bootstrap variances, balanced
  two-way random-effects algebra) is removed: ``v_seed = max(s_d^2 / n - interaction, 0)``.
* ``SE = sqrt(v_ex + v_seed)``; degrees of freedom by Welch–Satterthwaite (``v_seed`` has
  ``n - 1``, ``v_ex`` infinitely many), so 3 seeds with real seed noise get wide, honest
  intervals (t with ~2 df) rather than a normal approximation.
* Two-sided p-value and ``(1 - alpha)`` confidence interval from that t distribution; Holm–
  Bonferroni (:func:`holm`) across the comparisons of one table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedBlock:
    """One (task, language) of a comparison: per-seed statistics of both systems.

    Attributes:
        task: Task name (blocks of one task are averaged first, then tasks).
        lang: Language code.
        kind: ``"mean"`` (stats ``[S, n]``) or ``"f1"`` (stats ``[S, n, 3]`` of tp/pred/gold).
        a: System A's per-example statistics, one row per common seed.
        b: System B's, same seeds and examples in the same order.
    """

    task: str
    lang: str
    kind: str
    a: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class TestResult:
    """Mean difference A - B (points), its confidence interval and two-sided p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p: float
    se: float
    df: float
    n_seeds: int
    n_examples: int


# ------------------------------------------------------------------ Student t (SciPy)


def t_sf(t: float, df: float) -> float:
    """``P(T > t)`` for Student's t with ``df`` degrees of freedom (``inf`` = normal)."""
    return float(stats.t.sf(t, df))


def t_ppf(q: float, df: float) -> float:
    """Quantile ``t`` with ``P(T <= t) = q`` (``df = inf`` gives the normal quantile)."""
    return float(stats.t.ppf(q, df))


# ------------------------------------------------------------------ bootstrap
# Hand-written on purpose: scipy.stats.bootstrap resamples each sample on its own (or pairs
# rows with paired=True), but not one draw of examples shared by every seed of both systems
# and re-scored from per-example sufficient statistics (an F1 over summed counts), which is
# what the module doc needs. numpy does the counting in one bincount per block: measured 0.04 s
# for 3 seeds x 2,000 examples x 1,000 replicates (scipy.stats.bootstrap takes 0.02 s for the
# plain mean of ONE sample, which is not this test), so it costs a report nothing.


def _block_scores(kind: str, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Scores ``[S, B]`` of every seed under every resample (``counts [B, n]``)."""
    n = counts.shape[1]
    if kind == "mean":
        return np.einsum("bn,sn->sb", counts, stats) / n
    sums = np.einsum("bn,snk->sbk", counts, stats)  # [S, B, 3]
    denom = sums[..., 1] + sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 200.0 * sums[..., 0] / denom, 0.0)


def _aggregate(
    blocks: Sequence[PairedBlock], rng: np.random.Generator, n_boot: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed differences: observed ``[S]`` and bootstrapped ``[S, B]`` (task-then-lang mean)."""
    by_task: dict[str, list[PairedBlock]] = {}
    for blk in blocks:
        by_task.setdefault(blk.task, []).append(blk)
    observed: np.ndarray | float = 0.0
    boot: np.ndarray | float = 0.0
    for task_blocks in by_task.values():
        for blk in task_blocks:
            n = blk.a.shape[1]
            # Row 0 is the observed sample (every example once); rows 1.. are resamples.
            counts = np.ones((1, n))
            if n_boot:
                idx = rng.integers(0, n, size=(n_boot, n))  # [B, n]
                flat = (idx + n * np.arange(n_boot)[:, None]).ravel()
                draws = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n)
                counts = np.vstack([counts, draws.astype(np.float64)])  # [1 + B, n]
            diff = _block_scores(blk.kind, blk.a, counts) - _block_scores(blk.kind, blk.b, counts)
            weight = 1.0 / (len(task_blocks) * len(by_task))
            observed = observed + weight * diff[:, 0]
            boot = boot + weight * diff[:, 1:]
    return np.asarray(observed), np.asarray(boot)


def paired_test(
    blocks: Sequence[PairedBlock], *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> TestResult:
    """Paired test of A - B over examples and seeds (see the module doc).

    Args:
        blocks: The (task, language) blocks compared; every block has the same seeds.
        n_boot: Bootstrap replicates.
        alpha: 1 - confidence level of the interval.
        seed: Seed of the bootstrap's random generator (reports are reproducible).

    Returns:
        Difference, interval, p-value, standard error, degrees of freedom and sizes.
    """
    if not blocks:
        raise ValueError("paired_test needs at least one block")
    rng = np.random.default_rng(seed)
    d, boot = _aggregate(blocks, rng, n_boot)  # [S], [S, B]
    n = len(d)
    delta = float(d.mean())
    v_ex = float(boot.mean(axis=0).var(ddof=1)) if n_boot > 1 else 0.0
    v_seed = 0.0
    if n > 1:
        per_seed = float(boot.var(axis=1, ddof=1).mean()) if n_boot > 1 else 0.0
        interaction = max(per_seed - v_ex, 0.0) / (n - 1)
        v_seed = max(float(d.var(ddof=1)) / n - interaction, 0.0)
    var = v_ex + v_seed
    df = math.inf if v_seed == 0.0 else var**2 / (v_seed**2 / (n - 1))
    se = math.sqrt(var)
    if se == 0.0:
        p = 1.0 if delta == 0.0 else 0.0
        half = 0.0
    else:
        p = min(1.0, 2.0 * t_sf(abs(delta) / se, df))
        half = t_ppf(1.0 - alpha / 2.0, df) * se
    n_examples = sum(int(b.a.shape[1]) for b in blocks)
    return TestResult(delta, delta - half, delta + half, p, se, df, n, n_examples)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    The i-th smallest p (1-based) is multiplied by ``m - i + 1``; adjusted values are made
    monotone (a running maximum) and capped at 1, so ``adjusted <= alpha`` is Holm's rejection.
    """
    # SciPy has no Holm (stats.false_discovery_control is Benjamini-Hochberg/-Yekutieli only);
    # statsmodels' multipletests(method="holm") would be a whole dependency for these 8 lines.
    # tests/test_significance.py checks them against hand-computed values.
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out
