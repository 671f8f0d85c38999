"""Per-example predictions, gold and metric contributions: what bootstrap and export need.

A language's score is either a mean of per-example values (accuracy, QA ``(EM + F1) / 2``,
Tatoeba) or an F1 over summed counts (seqeval entity F1, BUCC). Each example therefore gets
*sufficient statistics* (``kind = "mean"``: one value in percent; ``kind = "f1"``:
``[true positives, predicted, gold]``), so a resample of examples re-scores exactly like the
official scorer scores the resampled set. Entity chunks never cross sentences (seqeval puts an
``"O"`` between sentences), so per-sentence counts sum to the corpus counts.

The record of one language (``details``) is plain JSON::

    {"ids": [...], "kind": "mean" | "f1", "stats": [...] | None, "pred": [...], "gold": [...]}

``pred``/``gold`` are export-ready: label names, tag names per word, answer strings (gold: all
gold answers), the retrieved target index (Tatoeba) or ``"src_id\\ttgt_id"`` lines (BUCC,
``pred`` per mined pair, not per example). ``stats is None`` when the set has no gold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.tasks.examples import QAExample, RetrievalCorpus, TaggingExample
from xstilts.tasks.spec import TaskSpec, TaskType

# BUCC margin neighbourhood, as in the retrieval task type (XTREME's k).
_BUCC_K = 4


def f1_from_counts(tp: float, n_pred: float, n_gold: float) -> float:
    """Entity/pair F1 in percent from summed counts (0 when nothing was predicted or gold)."""
    denom = n_pred + n_gold
    return 200.0 * tp / denom if denom else 0.0


def score_from_stats(kind: str, stats: Sequence[Any]) -> float:
    """The language score (percent) that ``stats`` of all its examples give."""
    arr = np.asarray(stats, dtype=np.float64)
    if kind == "mean":
        return float(arr.mean()) if arr.size else 0.0
    total = arr.reshape(-1, 3).sum(axis=0)
    return f1_from_counts(*total)


def _classification(spec: TaskSpec, examples: Sequence[Any], preds: Sequence[Any]) -> dict:
    names = list(spec.labels) if spec.labels else None

    def name(i: int) -> Any:
        return names[int(i)] if names else int(i)

    return {
        "ids": [ex.guid for ex in examples],
        "kind": "mean",
        "stats": [100.0 * (int(p) == ex.label) for p, ex in zip(preds, examples, strict=True)],
        "pred": [name(p) for p in preds],
        "gold": [name(ex.label) for ex in examples],
    }


def _tagging(spec: TaskSpec, examples: Sequence[TaggingExample], preds: Sequence[Any]) -> dict:
    from xstilts.metrics.seqeval import get_entities

    names = spec.labels
    gold = [[names[t] for t in ex.tags] for ex in examples]
    hyp = [[names[int(t)] for t in p] for p in preds]
    stats = []
    for g, h in zip(gold, hyp, strict=True):
        ge, he = set(get_entities(g)), set(get_entities(h))
        stats.append([len(ge & he), len(he), len(ge)])
    return {
        "ids": [ex.guid for ex in examples],
        "kind": "f1",
        "stats": stats,
        "pred": hyp,
        "gold": gold,
    }


def _qa(spec: TaskSpec, examples: Sequence[QAExample], preds: Sequence[Any], lang: str) -> dict:
    answers = [str(p) for p in preds]
    out: dict[str, Any] = {
        "ids": [ex.guid for ex in examples],
        "kind": "mean",
        "stats": None,
        "pred": answers,
        "gold": None,
    }
    if not all(ex.answers for ex in examples):
        return out  # unlabelled set (TyDiQA-GoldP dev as XTREME ships it): nothing to score
    golds = [[a.text for a in ex.answers] for ex in examples]
    if spec.answer_normalization == "mlqa":
        from xstilts.metrics.mlqa import mlqa_scores

        per = [mlqa_scores([p], [g], lang) for p, g in zip(answers, golds, strict=True)]
    else:
        from xstilts.metrics.squad import squad_scores

        per = [squad_scores([p], [g]) for p, g in zip(answers, golds, strict=True)]
    out["stats"] = [(s["exact_match"] + s["f1"]) / 2 for s in per]
    out["gold"] = golds
    return out


def _tatoeba(corpora: Sequence[RetrievalCorpus], embeddings: Sequence[Any]) -> dict:
    from xstilts.metrics.retrieval import _pair, knn

    ids, stats, pred, gold = [], [], [], []
    for c, (corpus, (src, tgt)) in enumerate(zip(corpora, embeddings, strict=True)):
        x, y = _pair(src, tgt)
        # XTREME's direction: each English (target) sentence queries the other language.
        _, nearest = knn(y, x, 1)  # [N, 1]: source index retrieved for each target
        wanted = {t: s for s, t in corpus.gold}
        for i, j in enumerate(nearest[:, 0].tolist()):
            ids.append(corpus.target_ids[i] if corpus.target_ids else f"{c}:{i}")
            pred.append(int(j))
            gold.append(wanted.get(i, -1))
            stats.append(100.0 * (wanted.get(i) == j))
    return {"ids": ids, "kind": "mean", "stats": stats, "pred": pred, "gold": gold}


def _bucc(
    corpora: Sequence[RetrievalCorpus], embeddings: Sequence[Any], threshold: float | None
) -> dict:
    from xstilts.metrics.retrieval import bucc_f1, mine_bucc_pairs

    ids, stats, pred, gold = [], [], [], []
    for corpus, (src, tgt) in zip(corpora, embeddings, strict=True):
        pairs, scores = mine_bucc_pairs(src, tgt, k=_BUCC_K)
        cut = threshold
        if cut is None:
            cut = bucc_f1(pairs, scores, corpus.gold)["threshold"]
        # Same candidate set as bucc_f1: a repeated pair keeps its last score.
        cands = dict(
            zip(map(tuple, np.asarray(pairs).reshape(-1, 2).tolist()), scores.tolist(), strict=True)
        )
        chosen = {(int(s), int(t)) for (s, t), v in cands.items() if v >= cut}
        gold_set = {(int(s), int(t)) for s, t in corpus.gold}
        sid = corpus.source_ids or tuple(str(i) for i in range(len(corpus.source)))
        tid = corpus.target_ids or tuple(str(i) for i in range(len(corpus.target)))
        # Pairs grouped by source once: scanning every pair per source was O(sources x pairs).
        mine_by: dict[int, set[tuple[int, int]]] = defaultdict(set)
        ref_by: dict[int, set[tuple[int, int]]] = defaultdict(set)
        for p in chosen:
            mine_by[p[0]].add(p)
        for p in gold_set:
            ref_by[p[0]].add(p)
        for i in range(len(corpus.source)):
            mine, ref = mine_by.get(i, set()), ref_by.get(i, set())
            ids.append(sid[i])
            stats.append([len(mine & ref), len(mine), len(ref)])
        pred.extend(f"{sid[s]}\t{tid[t]}" for s, t in sorted(chosen))
        gold.extend(f"{sid[s]}\t{tid[t]}" for s, t in sorted(gold_set))
    return {"ids": ids, "kind": "f1", "stats": stats, "pred": pred, "gold": gold}


def example_details(
    spec: TaskSpec,
    examples: Sequence[Any],
    predictions: Sequence[Any],
    scores: Mapping[str, float],
    lang: str,
) -> dict[str, Any]:
    """Per-example ids, predictions, gold and sufficient statistics of one language.

    Args:
        spec: The task.
        examples: The language's evaluation examples (retrieval: its corpora).
        predictions: Postprocessed predictions (retrieval: ``(src_emb, tgt_emb)`` per corpus).
        scores: The language's scores (BUCC: its ``threshold`` is reused).
        lang: Language code (MLQA normalisation).

    Returns:
        The JSON record described in the module doc.
    """
    if spec.type in (TaskType.CLASSIFICATION, TaskType.MULTIPLE_CHOICE):
        return _classification(spec, examples, predictions)
    if spec.type is TaskType.TAGGING:
        return _tagging(spec, examples, predictions)
    if spec.type is TaskType.EXTRACTIVE_QA:
        return _qa(spec, examples, predictions, lang)
    if "f1" in spec.metrics:
        return _bucc(examples, predictions, scores.get("threshold"))
    return _tatoeba(examples, predictions)
