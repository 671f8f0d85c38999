"""Significance on synthetic results with known effects; Holm by hand; degenerate runs flagged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xstilts.reporting.collect import loss_flags, prediction_flags
from xstilts.reporting.significance import PairedBlock, holm, paired_test, t_ppf, t_sf


def _system(rng: np.random.Generator, p: np.ndarray, effect: float, seeds: int) -> np.ndarray:
    """Per-seed 0/100 correctness ``[seeds, n]``: a fixed base behaviour, 10% redrawn per seed.

    Fine-tuning seeds change a minority of predictions; each seed also shifts the redrawn
    ones by a seed-level offset (sd 1 point), so seeds differ as real runs do.
    """
    base = rng.random(p.size) < np.clip(p + effect, 0, 1)
    runs = []
    for _ in range(seeds):
        x = base.copy()
        redo = rng.random(p.size) < 0.1
        offset = rng.normal(0, 0.01)
        x[redo] = rng.random(int(redo.sum())) < np.clip(p[redo] + effect + offset, 0, 1)
        runs.append(100.0 * x)
    return np.stack(runs)


def _draw(rng: np.random.Generator, effect: float, n: int, langs: int = 2) -> list[PairedBlock]:
    blocks = []
    for lang in range(langs):
        p = rng.beta(4, 2, size=n)  # per-example difficulty, shared by both systems
        blocks.append(
            PairedBlock(
                "xnli", f"l{lang}", "mean", _system(rng, p, effect, 3), _system(rng, p, 0, 3)
            )
        )
    return blocks


def test_planted_three_point_effect_on_three_seeds_is_significant() -> None:
    rng = np.random.default_rng(7)
    found = [paired_test(_draw(rng, 0.03, n=2000, langs=3), n_boot=300, seed=i) for i in range(5)]
    for r in found:
        assert r.n_seeds == 3 and r.n_examples == 6000
        assert 1.5 < r.delta < 4.5
        assert r.p < 0.05 and r.ci_low > 0 < r.ci_high


def test_zero_effect_false_positive_rate_is_at_most_about_alpha() -> None:
    rng = np.random.default_rng(11)
    pvalues = [paired_test(_draw(rng, 0.0, n=600), n_boot=200, seed=i).p for i in range(100)]
    rate = sum(p < 0.05 for p in pvalues) / len(pvalues)
    assert rate <= 0.10  # alpha 0.05; 100 draws leave room for sampling error
    assert np.mean(pvalues) > 0.3  # roughly uniform under the null, not piled up near 0


def test_seed_noise_widens_the_interval_with_few_seeds() -> None:
    """Identical examples, seeds that disagree: the seed part sets the width (t with ~2 df)."""
    n = 500
    a = np.zeros((3, n))
    a[0, :50] = 100.0  # seed scores 10, 0, 0 -> differences 10, 0, 0
    blocks = [PairedBlock("t", "en", "mean", a, np.zeros((3, n)))]
    r = paired_test(blocks, n_boot=300)
    assert r.delta == pytest.approx(10 / 3)
    assert r.df < 5  # dominated by 2-df seed variance
    assert r.ci_low < 0 < r.ci_high and r.p > 0.05


def test_f1_blocks_rescore_from_counts() -> None:
    # Observed F1 of A: 2*4/(5+5)=80; of B: 2*2/(5+5)=40 -> delta 40 with no resampling noise.
    a = np.array([[[2, 2, 2], [2, 3, 3]]], dtype=float)
    b = np.array([[[1, 2, 2], [1, 3, 3]]], dtype=float)
    r = paired_test([PairedBlock("panx", "de", "f1", a, b)], n_boot=0)
    assert r.delta == pytest.approx(40.0)


def test_holm_matches_hand_computation() -> None:
    # Sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5).
    adjusted = holm([0.03, 0.5, 0.01, 0.02])
    assert adjusted == pytest.approx([0.06, 0.5, 0.04, 0.06])
    # Monotone: a later raw p smaller after scaling still takes the running maximum.
    assert holm([0.001, 0.04, 0.045]) == pytest.approx([0.003, 0.08, 0.08])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 0.8 x 2 caps at 1


def test_student_t_against_known_values() -> None:
    assert t_sf(0.0, 3) == pytest.approx(0.5)
    assert t_ppf(0.975, 2) == pytest.approx(4.302652729911275, rel=1e-6)
    assert t_ppf(0.975, 10) == pytest.approx(2.228138851986274, rel=1e-6)
    assert 2 * t_sf(2.0, 1) == pytest.approx(1 - 2 * math.atan(2.0) / math.pi)  # Cauchy
    assert t_sf(1.959963984540054, math.inf) == pytest.approx(0.025)


def test_degenerate_runs_are_flagged() -> None:
    collapsed = {"en": {"gold": [0, 1, 2, 0, 1, 2], "pred": [0] * 6, "stats": [100, 0, 0] * 2}}
    assert "one class" in prediction_flags("xnli", collapsed, 33.3)[0]
    at_majority = {
        "en": {"gold": ["a"] * 7 + ["b"] * 3, "pred": ["a"] * 9 + ["b"],
               "stats": [100.0] * 7 + [0.0] * 3},
    }  # fmt: skip
    assert "majority class" in prediction_flags("pawsx", at_majority, 70.0)[0]
    healthy = {"en": {"gold": [0, 1, 0, 1], "pred": [0, 1, 0, 1], "stats": [100.0] * 4}}
    assert prediction_flags("pawsx", healthy, 100.0) == []
    assert prediction_flags("panx", None, 0.3) and not prediction_flags("panx", None, 40.0)
    nan = {"label": "mnli", "stage_id": "abc", "metrics": {"dev_curve": [
        {"step": 1, "train_loss": 1.1}, {"step": 2, "train_loss": float("nan")}]}}  # fmt: skip
    assert "not finite" in loss_flags(nan)[0]
    rising = {"label": "mnli", "stage_id": "abc", "metrics": {"dev_curve": [
        {"step": 1, "train_loss": 1.0}, {"step": 2, "train_loss": 2.5}]}}  # fmt: skip
    assert "rose" in loss_flags(rising)[0]
    falling = {"label": "mnli", "metrics": {"dev_curve": [
        {"step": 1, "train_loss": 1.0}, {"step": 2, "train_loss": 0.5}]}}  # fmt: skip
    assert loss_flags(falling) == []


def test_seed_only_t_test_matches_the_closed_form_for_two_df() -> None:
    """Differences 1, 2, 3: t = 2 / (1 / sqrt 3); 2 df: P(T > t) = (1 - t / sqrt(t² + 2)) / 2."""
    from xstilts.reporting.deltas import _seed_only

    r = _seed_only([1.0, 2.0, 3.0])
    t = 2.0 * math.sqrt(3.0)
    assert r.delta == pytest.approx(2.0) and r.df == 2 and r.n_seeds == 3
    assert r.p == pytest.approx(1.0 - t / math.sqrt(t * t + 2.0), rel=1e-9)
    half = 4.302652729749464 / math.sqrt(3.0)  # t_{0.975, 2} x se
    assert (r.ci_low, r.ci_high) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-9)
    assert math.isnan(_seed_only([4.0]).p)  # one seed: no test
    same = _seed_only([2.0, 2.0])  # no spread: a certain difference, not SciPy's NaN
    assert same.p == 0.0 and same.ci_low == same.ci_high == 2.0
