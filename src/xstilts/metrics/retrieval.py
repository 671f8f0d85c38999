"""Bitext retrieval metrics: ratio-margin mining and F1 for BUCC, top-1 accuracy for Tatoeba.

Follows XTREME's ``third_party/utils_retrieve.py`` (``mine_bitext`` in mode ``"mine"``,
``bucc_optimize``/``bucc_eval``) and LASER's margin definition (Artetxe & Schwenk, 2019)::

    margin(x, y) = cos(x, y) / ((mean_{z in NN_k(x)} cos(x, z) + mean_{z in NN_k(y)} cos(y, z)) / 2)

with ``NN_k(x)`` the k nearest *targets* of source ``x`` and ``NN_k(y)`` the k nearest
*sources* of target ``y`` (cosine, embeddings L2-normalised). Everything is computed with
blocked matrix products and ``torch.topk``; the only Python loop is XTREME's greedy 1:1
selection over the (n_src + n_tgt) best candidates in ``"max"`` mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import torch

from xstilts.errors import DataError

# Rows of the query side per matmul block: block x n_other float32 must fit comfortably in RAM.
DEFAULT_BLOCK = 1024
Retrieval = Literal["max", "fwd", "bwd", "intersect"]


def _normalized(emb: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """``[N, H]`` float32 tensor with unit rows (zero rows stay zero, as faiss.normalize_L2)."""
    t = torch.as_tensor(np.asarray(emb, dtype=np.float32))
    if t.ndim != 2:
        raise DataError(f"{name} embeddings must be a 2-D [N, H] array, got shape {tuple(t.shape)}")
    norms = t.norm(dim=1, keepdim=True)  # [N, 1]
    return t / torch.where(norms > 0, norms, torch.ones_like(norms))


def _pair(src: np.ndarray, tgt: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _normalized(src, "source"), _normalized(tgt, "target")
    if x.shape[1] != y.shape[1]:
        raise DataError(
            f"source embeddings have dimension {x.shape[1]}, target embeddings {y.shape[1]}"
        )
    return x, y


def knn(
    x: torch.Tensor, y: torch.Tensor, k: int, block: int = DEFAULT_BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine k nearest neighbours in ``y`` of every row of ``x`` (both already normalised).

    Args:
        x: Queries ``[Nx, H]``.
        y: Database ``[Ny, H]``.
        k: Neighbours wanted; capped at ``Ny`` as XTREME does.
        block: Query rows per matrix product.

    Returns:
        ``(similarities [Nx, k'], indices [Nx, k'])``, best first, ``k' = min(k, Ny)``.
    """
    k = min(k, y.shape[0])
    sims, inds = [], []
    for start in range(0, x.shape[0], block):
        sim = x[start : start + block] @ y.T  # [b, Ny]
        top = torch.topk(sim, k, dim=1)
        sims.append(top.values)
        inds.append(top.indices)
    if not sims:
        return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.long)
    return torch.cat(sims), torch.cat(inds)


def _neighbourhood_means(
    x: torch.Tensor, y: torch.Tensor, k: int, block: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """kNN both ways plus the mean neighbour similarity of every source and every target."""
    x2y_sim, x2y_ind = knn(x, y, k, block)  # [Nx, k], [Nx, k]
    y2x_sim, y2x_ind = knn(y, x, k, block)  # [Ny, k], [Ny, k]
    return x2y_sim, x2y_ind, x2y_sim.mean(dim=1), y2x_sim, y2x_ind, y2x_sim.mean(dim=1)


def margin_scores(
    x: np.ndarray, y: np.ndarray, k: int = 4, block: int = DEFAULT_BLOCK
) -> np.ndarray:
    """Full ratio-margin matrix between every source and every target.

    Memory is ``Nx * Ny`` floats: use :func:`mine_bucc_pairs` (k candidates per sentence) for
    large corpora.

    Args:
        x: Source embeddings ``[Nx, H]`` (normalised here).
        y: Target embeddings ``[Ny, H]``.
        k: Neighbourhood size of the margin denominators.
        block: Source rows per matrix product.

    Returns:
        ``[Nx, Ny]`` float32 margins ``cos(x, y) / ((fwd_mean(x) + bwd_mean(y)) / 2)``.
    """
    xs, ys = _pair(x, y)
    _, _, fwd_mean, _, _, bwd_mean = _neighbourhood_means(xs, ys, k, block)
    out = np.empty((xs.shape[0], ys.shape[0]), dtype=np.float32)
    for start in range(0, xs.shape[0], block):
        cos = xs[start : start + block] @ ys.T  # [b, Ny]
        denom = (fwd_mean[start : start + block, None] + bwd_mean[None, :]) / 2  # [b, Ny]
        out[start : start + block] = (cos / denom).numpy()
    return out


def _best_candidates(
    sims: torch.Tensor, inds: torch.Tensor, own_mean: torch.Tensor, other_mean: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Among each row's k cosine neighbours, the one with the highest margin and that margin."""
    scores = sims / ((own_mean[:, None] + other_mean[inds]) / 2)  # [N, k]
    best = scores.argmax(dim=1)  # [N]
    rows = torch.arange(inds.shape[0])
    return inds[rows, best].numpy(), scores[rows, best].double().numpy()


def _greedy_one_to_one(
    src: np.ndarray, tgt: np.ndarray, scores: np.ndarray, min_score: float
) -> np.ndarray:
    """XTREME's ``"max"`` selection: best score first, each sentence used at most once."""
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    keep: list[int] = []
    # Stable sort so equal scores keep candidate order (forward candidates first), deterministic.
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src[i]), int(tgt[i])
        if s in seen_src or t in seen_tgt:
            continue
        seen_src.add(s)
        seen_tgt.add(t)
        if scores[i] > min_score:
            keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def mine_bucc_pairs(
    src_emb: np.ndarray,
    tgt_emb: np.ndarray,
    k: int = 4,
    retrieval: Retrieval = "max",
    min_score: float = 0.0,
    block: int = DEFAULT_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs with margin scores, as XTREME's ``mine_bitext(mode="mine")``.

    Every source's candidate is, among its k cosine-nearest targets, the one with the best
    margin (forward); every target's likewise among its k nearest sources (backward).

    Args:
        src_emb: Source embeddings ``[Nx, H]``.
        tgt_emb: Target embeddings ``[Ny, H]``.
        k: Neighbourhood size (candidates and margin denominators); XTREME uses 4.
        retrieval: ``"max"`` (XTREME's BUCC default: union of forward and backward candidates,
            taken greedily by score so each sentence appears once), ``"fwd"``, ``"bwd"``, or
            ``"intersect"`` (forward candidates whose target picks the same source back).
        min_score: ``"max"`` mode keeps only scores above this (XTREME's threshold 0).
        block: Query rows per matrix product.

    Returns:
        ``(pairs [M, 2] int64 of (source_index, target_index), scores [M] float64)``, in
        selection order.
    """
    x, y = _pair(src_emb, tgt_emb)
    if x.shape[0] == 0 or y.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float64)
    x2y_sim, x2y_ind, fwd_mean, y2x_sim, y2x_ind, bwd_mean = _neighbourhood_means(x, y, k, block)
    fwd_best, fwd_score = _best_candidates(x2y_sim, x2y_ind, fwd_mean, bwd_mean)  # [Nx]
    bwd_best, bwd_score = _best_candidates(y2x_sim, y2x_ind, bwd_mean, fwd_mean)  # [Ny]
    src_ids, tgt_ids = np.arange(x.shape[0]), np.arange(y.shape[0])
    modes: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
        "fwd": lambda: (src_ids, fwd_best, fwd_score),
        "bwd": lambda: (bwd_best, tgt_ids, bwd_score),
        "intersect": lambda: _intersect(fwd_best, fwd_score, bwd_best),
        "max": lambda: _union(fwd_best, fwd_score, bwd_best, bwd_score, min_score),
    }
    if retrieval not in modes:
        raise DataError(f"unknown retrieval mode {retrieval!r}", hint=f"use one of {list(modes)}")
    src, tgt, scores = modes[retrieval]()
    return np.stack([src, tgt], axis=1).astype(np.int64), scores.astype(np.float64)


def _intersect(
    fwd_best: np.ndarray, fwd_score: np.ndarray, bwd_best: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.flatnonzero(bwd_best[fwd_best] == np.arange(fwd_best.shape[0]))
    return src, fwd_best[src], fwd_score[src]


def _union(
    fwd_best: np.ndarray,
    fwd_score: np.ndarray,
    bwd_best: np.ndarray,
    bwd_score: np.ndarray,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.concatenate([np.arange(fwd_best.shape[0]), bwd_best])
    tgt = np.concatenate([fwd_best, np.arange(bwd_best.shape[0])])
    scores = np.concatenate([fwd_score, bwd_score])
    keep = _greedy_one_to_one(src, tgt, scores, min_score)
    return src[keep], tgt[keep], scores[keep]


def optimal_threshold(scores: np.ndarray, is_gold: np.ndarray, n_gold: int) -> float:
    """XTREME's ``bucc_optimize``: the score cut that maximises F1 over ranked candidates.

    Candidates are ranked by score (stable); the cut after the first F1-maximising rank is
    placed halfway to the next score. When the best rank is the last one (the official script
    would index past the end there), the threshold is that candidate's own score. With no
    correct candidate at all the threshold is 0, as in the official script.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    correct = np.cumsum(is_gold[order])  # [M]
    extracted = np.arange(1, len(ranked) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Same float expression as the official loop, so ties between ranks resolve alike.
        precision = correct / extracted
        recall = correct / n_gold
        f1 = np.where(correct > 0, 2 * precision * recall / (precision + recall), 0.0)
    if len(f1) == 0 or f1.max() <= 0:
        return 0.0
    best = int(np.argmax(f1))
    if best + 1 < len(ranked):
        return float((ranked[best] + ranked[best + 1]) / 2)
    return float(ranked[best])


def bucc_f1(
    pairs: np.ndarray,
    scores: np.ndarray,
    gold: Iterable[tuple[int, int]],
    threshold: float | None = None,
) -> dict[str, float]:
    """Precision, recall and F1 of the candidates scoring at least ``threshold``, in percent.

    Args:
        pairs: Candidate ``(source_index, target_index)`` pairs ``[M, 2]``.
        scores: Their margin scores ``[M]``.
        gold: Gold pairs; recall is over all of them (also those never proposed).
        threshold: Score cut; ``None`` picks the F1-optimal one (:func:`optimal_threshold`).

    Returns:
        ``{"precision", "recall", "f1", "threshold"}``.

    Raises:
        DataError: If there are no gold pairs or pairs and scores are misaligned.
    """
    gold_set = {(int(s), int(t)) for s, t in gold}
    if not gold_set:
        raise DataError("BUCC scoring needs at least one gold pair")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(pairs) != len(scores):
        raise DataError(f"{len(pairs)} candidate pairs but {len(scores)} scores")
    # Like XTREME's candidate dict: a repeated pair keeps its last score.
    candidates = dict(zip(map(tuple, pairs.tolist()), scores.tolist(), strict=True))
    cand_pairs = list(candidates)
    cand_scores = np.asarray(list(candidates.values()), dtype=np.float64)
    is_gold = np.asarray([p in gold_set for p in cand_pairs], dtype=np.int64)
    if threshold is None:
        threshold = optimal_threshold(cand_scores, is_gold, len(gold_set))
    selected = cand_scores >= threshold
    n_correct = int(is_gold[selected].sum())
    if n_correct == 0:
        precision = recall = f1 = 0.0
    else:
        precision = n_correct / int(selected.sum())
        recall = n_correct / len(gold_set)
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "f1": 100.0 * f1,
        "threshold": float(threshold),
    }


def tatoeba_accuracy(src_emb: np.ndarray, tgt_emb: np.ndarray, block: int = DEFAULT_BLOCK) -> float:
    """Share of sources whose cosine-nearest target is the aligned one (same index), percent.

    Raises:
        DataError: If the two sides differ in size or are empty.
    """
    x, y = _pair(src_emb, tgt_emb)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise DataError(
            f"Tatoeba needs two aligned, non-empty sides; got {x.shape[0]} sources and "
            f"{y.shape[0]} targets"
        )
    _, nearest = knn(x, y, 1, block)  # [N, 1]
    hits = (nearest[:, 0] == torch.arange(x.shape[0])).sum().item()
    return 100.0 * hits / x.shape[0]
