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

from xstilts.metrics.per_example import f1_from_counts


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


# ------------------------------------------------------------------ Student t (no SciPy)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """``P(T > t)`` for Student's t with ``df`` degrees of freedom (``inf`` = normal)."""
    if math.isinf(df):
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """Quantile ``t`` with ``P(T <= t) = q`` (bisection on :func:`t_sf`)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ------------------------------------------------------------------ bootstrap


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
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def stats_score(kind: str, stats: np.ndarray) -> float:
    """The score one run's statistics give (same as the evaluator's)."""
    if kind == "mean":
        return float(np.mean(stats)) if stats.size else 0.0
    return f1_from_counts(*np.asarray(stats, dtype=np.float64).reshape(-1, 3).sum(axis=0))
