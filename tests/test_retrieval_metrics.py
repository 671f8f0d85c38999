"""Retrieval metrics: hand-computed margins, BUCC mining and F1, Tatoeba accuracy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from xstilts.errors import DataError
from xstilts.metrics import bucc_f1, margin_scores, mine_bucc_pairs, tatoeba_accuracy

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "bucc_scoring.py"

# Unnormalised on purpose: after L2 normalisation x = e1, e2, (.6, .8, 0) and
# y = e1, (.8, .6, 0), e3, so cos(x, y) is the matrix C below.
X = np.array([[2, 0, 0], [0, 3, 0], [3, 4, 0]], dtype=np.float32)
Y = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 5]], dtype=np.float32)
C = np.array([[1.0, 0.8, 0.0], [0.0, 0.6, 0.0], [0.6, 0.96, 0.0]])


def _margin(fwd: list[float], bwd: list[float]) -> np.ndarray:
    return C / ((np.array(fwd)[:, None] + np.array(bwd)[None, :]) / 2)


def test_margin_k1_hand_computed() -> None:
    # k=1: fwd = row maxima, bwd = column maxima of C.
    expected = _margin([1.0, 0.6, 0.96], [1.0, 0.96, 0.0])
    got = margin_scores(X, Y, k=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got[0, 1] == pytest.approx(0.8 / 0.98, rel=1e-6)
    assert got[2, 1] == pytest.approx(1.0, rel=1e-6)


def test_margin_k2_hand_computed() -> None:
    # k=2: means of the two largest per row / per column.
    fwd = [(1 + 0.8) / 2, (0.6 + 0) / 2, (0.96 + 0.6) / 2]
    bwd = [(1 + 0.6) / 2, (0.96 + 0.8) / 2, 0.0]
    got = margin_scores(X, Y, k=2, block=2)  # block < rows exercises the blocking
    np.testing.assert_allclose(got, _margin(fwd, bwd), rtol=1e-6, atol=1e-7)
    assert got[1, 1] == pytest.approx(0.6 / 0.59, rel=1e-6)


def _hub_corpus() -> tuple[np.ndarray, np.ndarray]:
    """4 sources e0..e3; targets t_i = .45 e_i + sqrt(1-.45^2) e_{4+i}, then a hub (index 4).

    The hub has cosine .5 with every source, more than each true target (.45).
    """
    src = np.eye(8, dtype=np.float32)[:4]
    tgt = np.zeros((5, 8), dtype=np.float32)
    for i in range(4):
        tgt[i, i], tgt[i, 4 + i] = 0.45, np.sqrt(1 - 0.45**2)
    tgt[4, :4] = 0.5
    return src, tgt


def test_margin_beats_hub_that_wins_on_cosine() -> None:
    src, tgt = _hub_corpus()
    cosine_best = (src @ tgt.T).argmax(axis=1)
    assert cosine_best.tolist() == [4, 4, 4, 4]
    # k=2: fwd mean (.5 + .45)/2 for each source; bwd mean .5 for the hub, .225 for t_i.
    margins = margin_scores(src, tgt, k=2)
    assert margins[0, 4] == pytest.approx(0.5 / ((0.475 + 0.5) / 2), rel=1e-5)
    assert margins[0, 0] == pytest.approx(0.45 / ((0.475 + 0.225) / 2), rel=1e-5)
    pairs, scores = mine_bucc_pairs(src, tgt, k=2)
    assert pairs.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    np.testing.assert_allclose(scores, [0.45 / 0.35] * 4, rtol=1e-5)
    result = bucc_f1(pairs, scores, {(i, i) for i in range(4)})
    assert (result["precision"], result["recall"], result["f1"]) == (100.0, 100.0, 100.0)


def test_mining_modes() -> None:
    src, tgt = _hub_corpus()
    fwd, _ = mine_bucc_pairs(src, tgt, k=2, retrieval="fwd")
    assert fwd.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    bwd, bwd_scores = mine_bucc_pairs(src, tgt, k=2, retrieval="bwd")
    # The hub's 2 nearest sources tie at .5; it picks one of them (torch.topk order).
    assert bwd[:4].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    assert bwd[4, 1] == 4 and bwd[4, 0] in range(4)
    assert bwd_scores[4] == pytest.approx(0.5 / 0.4875, rel=1e-5)
    inter, _ = mine_bucc_pairs(src, tgt, k=2, retrieval="intersect")
    assert inter.tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    with pytest.raises(DataError, match="unknown retrieval mode"):
        mine_bucc_pairs(src, tgt, retrieval="union")  # type: ignore[arg-type]


def test_max_mode_keeps_only_scores_above_min_score() -> None:
    src, tgt = _hub_corpus()  # every mined pair scores .45 / .35 = 1.2857
    assert len(mine_bucc_pairs(src, tgt, k=2, min_score=1.28)[0]) == 4
    assert len(mine_bucc_pairs(src, tgt, k=2, min_score=1.29)[0]) == 0
    # Only "max" mode filters, as in XTREME's mine_bitext.
    assert len(mine_bucc_pairs(src, tgt, k=2, retrieval="fwd", min_score=1.29)[0]) == 4


def test_bucc_f1_optimal_threshold_known_answer() -> None:
    pairs = np.array([[0, 0], [1, 1], [2, 5], [3, 3], [4, 9]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    gold = {(0, 0), (1, 1), (3, 3), (7, 7)}  # (7, 7) never proposed: still in recall
    # F1 by rank: .4, .667, .571, .75, .667 -> cut after rank 4, halfway to the 5th score.
    result = bucc_f1(pairs, scores, gold)
    assert result["threshold"] == pytest.approx(0.55)
    assert result["precision"] == pytest.approx(75.0)
    assert result["recall"] == pytest.approx(75.0)
    assert result["f1"] == pytest.approx(75.0)
    fixed = bucc_f1(pairs, scores, gold, threshold=0.85)
    assert fixed["precision"] == 100.0 and fixed["recall"] == 25.0
    assert fixed["f1"] == pytest.approx(40.0)


def test_bucc_f1_edge_cases() -> None:
    pairs = np.array([[0, 0], [1, 1]])
    # Best cut after the last candidate: threshold is its own score (all kept).
    best_last = bucc_f1(pairs, np.array([0.9, 0.8]), {(0, 0), (1, 1)})
    assert best_last["threshold"] == pytest.approx(0.8) and best_last["f1"] == 100.0
    none_right = bucc_f1(pairs, np.array([0.9, 0.8]), {(5, 5)})
    assert none_right == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "threshold": 0.0}
    with pytest.raises(DataError, match="at least one gold pair"):
        bucc_f1(pairs, np.array([0.9, 0.8]), set())
    with pytest.raises(DataError, match="2 candidate pairs but 1 scores"):
        bucc_f1(pairs, np.array([0.9]), {(0, 0)})


def test_tatoeba_accuracy_toy() -> None:
    src = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    # Source 0: .8 (t0) vs .6 (t2), right; source 2: .6 (t0) vs 0 (t2), wrong: 2 of 3.
    tgt = np.array([[0.8, 0, 0.6], [0, 2, 0], [0.6, 0.8, 0]], dtype=np.float32)
    assert tatoeba_accuracy(src, tgt) == pytest.approx(200 / 3)
    with pytest.raises(DataError, match="3 sources and 2 targets"):
        tatoeba_accuracy(src, tgt[:2])
    with pytest.raises(DataError, match="dimension 3, target embeddings 2"):
        tatoeba_accuracy(src, tgt[:, :2])


def test_tatoeba_is_scored_in_xtremes_direction_english_queries() -> None:
    """XTREME indexes the xx side and searches it with the English side (en -> xx)."""
    from xstilts.tasks import get_task
    from xstilts.tasks.examples import RetrievalCorpus
    from xstilts.tasks.formats import get_format

    xx = np.eye(3, dtype=np.float32)
    # en 0 = xx 0; en 1 and en 2 lean towards xx 0 (a hub) but are each xx i's nearest en.
    en = np.array([[1, 0, 0], [0.8, 0.6, 0], [0.8, 0, 0.6]], dtype=np.float32)
    assert tatoeba_accuracy(xx, en) == pytest.approx(100.0)  # xx -> en: all right
    assert tatoeba_accuracy(en, xx) == pytest.approx(100 / 3)  # en -> xx: only en 0
    corpus = RetrievalCorpus("t", ("a", "b", "c"), ("A", "B", "C"), ((0, 0), (1, 1), (2, 2)))
    fmt = get_format(get_task("tatoeba").type)
    scores = fmt.score([corpus], [(xx, en)], get_task("tatoeba"), "de")
    assert scores["accuracy"] == pytest.approx(100 / 3)


def _benchmark_module() -> ModuleType:
    # The benchmark scripts import each other as top-level modules (run as scripts).
    if str(BENCHMARK.parent) not in sys.path:
        sys.path.insert(0, str(BENCHMARK.parent))
    spec = importlib.util.spec_from_file_location("bucc_scoring_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_xtreme_pipeline_matches_vectorised() -> None:
    bench = _benchmark_module()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 16)).astype(np.float32)
    y = rng.standard_normal((17, 16)).astype(np.float32)
    ref = bench.xtreme_mine(x, y, 4)
    pairs, scores = mine_bucc_pairs(x, y, k=4)
    assert [tuple(p) for p in pairs.tolist()] == [(s, t) for s, t, _ in ref]
    np.testing.assert_allclose(scores, [sc for _, _, sc in ref], rtol=1e-5, atol=1e-6)
    ref_margin = bench.reference_margin_matrix(x, y, 3)
    np.testing.assert_allclose(margin_scores(x, y, k=3, block=5), ref_margin, rtol=1e-5, atol=1e-6)
    gold = {(s, t) for s, t, _ in ref[:3]} | {(0, 16)}
    xtreme = bench.run_xtreme(x, y, gold, 2)
    assert bench.check_equal(xtreme, bench.run_xstilts(x, y, gold, 2))["pairs"] == len(xtreme[0])
    assert xtreme[1]["f1"] > 0
