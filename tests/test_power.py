"""Power: the stated MDE is detected at ~80 % by the report's paired test, 0 at ~α."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xstilts.reporting.power import VarianceParts, detectable, variance_parts
from xstilts.reporting.significance import PairedBlock, paired_test

M = 4  # comparisons in the table: Holm's worst case tests the first at α / 4
N_SIMS = 400


def _block(rng: np.random.Generator, delta: float, sd: tuple[float, float, float],
           seeds: int, n: int) -> PairedBlock:  # fmt: skip
    """x_si = Δ + u_s + a_i + e_si (points) as system A, zeros as B."""
    s_seed, s_item, s_res = sd
    x = (delta + rng.normal(0, s_seed, (seeds, 1)) + rng.normal(0, s_item, (1, n))
         + rng.normal(0, s_res, (seeds, n)))  # fmt: skip
    return PairedBlock("t", "xx", "mean", x, np.zeros_like(x))


def _rejection_rate(
    delta: float, sd: tuple[float, float, float], seeds: int, n: int, alpha: float
) -> float:
    rng = np.random.default_rng(7)
    hits = 0
    for sim in range(N_SIMS):
        result = paired_test([_block(rng, delta, sd, seeds, n)], n_boot=200, seed=sim)
        hits += result.p < alpha
    return hits / N_SIMS


@pytest.mark.parametrize(
    ("sd", "seeds", "n"),
    [((3.0, 30.0, 40.0), 5, 300),  # items dominate (df large)
     ((4.0, 10.0, 20.0), 5, 400)],  # seeds dominate (df ~ 4-5: the noncentral t matters)
)  # fmt: skip
def test_planted_mde_is_found_at_80_percent_and_zero_at_alpha(
    sd: tuple[float, float, float], seeds: int, n: int
) -> None:
    s_seed, s_item, s_res = sd
    truth = VarianceParts(s_seed**2, s_item**2 / n, s_res**2 / n, seeds, n)
    mde = truth.mde(M)
    assert 0.5 < mde < 20
    assert abs(_rejection_rate(mde, sd, seeds, n, 0.05 / M) - 0.8) <= 0.07
    # No effect: rejected at about α. (With seed noise dominating, 5 seeds: measured 6.5 % at
    # α = 0.05 and 2.7 % at α/4 over 1,500 simulations; Satterthwaite's df is a bit generous.)
    assert abs(_rejection_rate(0.0, sd, seeds, n, 0.05) - 0.05) <= 0.03
    # The report states the MDE from measured data: the estimate is about the true one.
    rng = np.random.default_rng(3)
    estimates = [variance_parts([_block(rng, 0.0, sd, seeds, n)], n_boot=200, seed=i).mde(M)
                 for i in range(60)]  # fmt: skip
    assert abs(float(np.median(estimates)) / mde - 1) < 0.15


def test_variance_parts_match_the_tests_standard_error() -> None:
    rng = np.random.default_rng(0)
    blocks = [_block(rng, 1.0, (2.0, 20.0, 30.0), 5, 200) for _ in range(3)]
    parts = variance_parts(blocks, n_boot=300, seed=5)
    result = paired_test(blocks, n_boot=300, seed=5)
    var, df = parts.variance(5)
    assert math.sqrt(var) == pytest.approx(result.se, rel=1e-9)
    assert df == pytest.approx(result.df, rel=1e-9)
    assert parts.rows == 200 and parts.n_seeds == 5


def test_detectable_matches_the_normal_formula_and_grows_with_few_df() -> None:
    # Infinite df: (z_{1-α/2} + z_{0.8}) · SE = (1.95996 + 0.84162) · 2 (the tiny opposite
    # tail adds ~1e-4 of power).
    assert detectable(2.0, math.inf, 0.05) == pytest.approx(2 * 2.80158, abs=2e-3)
    assert (
        detectable(2.0, 4.0, 0.05) > detectable(2.0, 30.0, 0.05) > detectable(2.0, math.inf, 0.05)
    )
    assert detectable(0.0, 4.0, 0.05) == 0.0


def test_what_would_it_take() -> None:
    parts = VarianceParts(seed=4.0, item=0.02, residual=1.0, n_seeds=5, rows=600)
    seeds = parts.seeds_for(1.0)
    rows = parts.rows_for(1.0)
    # Var = 5/S + 0.02 must fall below ~(1/2.8)² = 0.1276: S ≥ 47.
    assert seeds is not None and 45 <= seeds <= 50 and parts.mde(seeds=seeds) <= 1.0
    assert parts.mde(seeds=seeds - 1) > 1.0
    assert rows is None  # 4/5 = 0.8 of seed variance at 5 seeds: no number of rows helps
    items_only = VarianceParts(seed=0.0, item=0.5, residual=1.0, n_seeds=5, rows=600)
    rows = items_only.rows_for(1.0)
    assert rows is not None and items_only.mde(row_factor=rows / 600) <= 1.0
    assert items_only.mde(row_factor=(rows - 2) / 600) > 1.0


def test_rows_needed_when_rows_do_not_matter() -> None:
    # No item-level variance (e.g. two conditions predicting identically on every item): the
    # MDE does not move with rows, so "rows to detect" is the fewest rows, not a solver error.
    flat = VarianceParts(seed=0.01, item=0.0, residual=0.0, n_seeds=1, rows=200)
    assert flat.mde() == flat.mde(row_factor=1e-6)
    assert flat.rows_for(flat.mde() + 1.0) == 1
    assert flat.rows_for(flat.mde() / 2) is None
