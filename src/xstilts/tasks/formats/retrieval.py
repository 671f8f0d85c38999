"""Bitext retrieval (BUCC mining, Tatoeba), evaluation only, from pooled encoder states.

Featurize turns each :class:`RetrievalCorpus` into one feature per sentence, source side
first, then target side: ``{"sequences": [ids], "example_index": corpus, "_side": 0|1,
"_index": i}``. The head is a parameter-free :class:`PoolingHead` (``cfg.pooling`` over the
output of layer ``cfg.layer``, ``None`` = the model's middle layer). Scores are floats only:
the pooling and layer that produced them are part of the evaluation config (``cfg``), which
the evaluator records next to the metrics.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import ConfigError
from xstilts.tasks.examples import Example, RetrievalCorpus, of_type
from xstilts.tasks.formats.base import FeaturizeConfig, HeadSpec, TaskTypeBase, read_label
from xstilts.tasks.formats.classification import chunks
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch

SOURCE, TARGET = 0, 1
# k nearest neighbours for margin scoring, as in XTREME/LASER BUCC mining.
BUCC_NEIGHBOURS = 4

Embeddings = tuple[np.ndarray, np.ndarray]


def _kept(n: int, gold: set[int], cap: int) -> list[int]:
    """Indices kept on one side: every gold one, then the first others in file order up to
    ``cap`` in all (all gold, when gold alone exceeds ``cap``); ascending."""
    room = max(cap - len(gold), 0)
    others = [i for i in range(n) if i not in gold][:room]
    return sorted([*gold, *others])


def subsample_mining(corpus: RetrievalCorpus, cap: int) -> tuple[RetrievalCorpus, dict[str, Any]]:
    """A BUCC corpus cut to at most ``cap`` sentences per side, every gold pair kept.

    Each side keeps its gold sentences and the first non-gold sentences in file order up to
    ``cap`` (deterministic: no seed). Mining all of BUCC on CPU takes hours; a mined corpus
    with fewer distractors scores higher than the full one, so the result says what was kept.

    Returns:
        The cut corpus (gold re-indexed, ids kept) and ``{"source": n, "target": m, "gold": g,
        "source_total": N, "target_total": M, "max_sentences": cap, "gold_over_cap": bool}``.
    """
    src_gold = {s for s, _ in corpus.gold}
    tgt_gold = {t for _, t in corpus.gold}
    src = _kept(len(corpus.source), src_gold, cap)
    tgt = _kept(len(corpus.target), tgt_gold, cap)
    src_new = {old: new for new, old in enumerate(src)}
    tgt_new = {old: new for new, old in enumerate(tgt)}

    def pick(values: tuple[str, ...], keep: list[int]) -> tuple[str, ...]:
        return tuple(values[i] for i in keep) if values else values

    cut = dataclasses.replace(
        corpus,
        source=pick(corpus.source, src), target=pick(corpus.target, tgt),
        gold=tuple((src_new[s], tgt_new[t]) for s, t in corpus.gold),
        source_ids=pick(corpus.source_ids, src), target_ids=pick(corpus.target_ids, tgt),
    )  # fmt: skip
    info = {
        "source": len(src), "target": len(tgt), "gold": len(corpus.gold),
        "source_total": len(corpus.source), "target_total": len(corpus.target),
        "max_sentences": cap, "gold_over_cap": max(len(src_gold), len(tgt_gold)) > cap,
    }  # fmt: skip
    return cut, info


def _score_corpus(corpus: RetrievalCorpus, emb: Embeddings, spec: TaskSpec) -> dict[str, float]:
    """BUCC F1 at the F1-optimal threshold (mining) or Tatoeba accuracy (search)."""
    from xstilts.metrics import retrieval

    src, tgt = emb
    if spec.retrieval == "mining":
        pairs, scores = retrieval.mine_bucc_pairs(src, tgt, k=BUCC_NEIGHBOURS)
        result = retrieval.bucc_f1(pairs, scores, set(corpus.gold), threshold=None)
        return {k: float(v) for k, v in result.items()}
    # XTREME's Tatoeba queries with the English side (``tgt``) against an index of the other
    # language (``similarity_search(x, y)`` indexes x, searches y): en -> xx, not xx -> en.
    return {"accuracy": float(retrieval.tatoeba_accuracy(tgt, src))}


def _search_details(corpora: Sequence[RetrievalCorpus], embeddings: Sequence[Any]) -> dict:
    """Tatoeba: per English sentence, the retrieved index and 100/0 (``"mean"``)."""
    from xstilts.metrics.per_example import record
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
    return record(ids, "mean", stats, pred, gold)


def _mining_details(
    corpora: Sequence[RetrievalCorpus], embeddings: Sequence[Any], threshold: float | None
) -> dict:
    """BUCC: per source sentence ``[tp, mined, gold]`` pair counts (``"f1"``); mined pairs."""
    from xstilts.metrics.per_example import record, set_counts
    from xstilts.metrics.retrieval import bucc_f1, mine_bucc_pairs

    ids, stats = [], []
    pred: list[str] = []
    gold: list[str] = []
    for corpus, (src, tgt) in zip(corpora, embeddings, strict=True):
        pairs, scores = mine_bucc_pairs(src, tgt, k=BUCC_NEIGHBOURS)
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
            ids.append(sid[i])
            stats.append(set_counts(mine_by.get(i, set()), ref_by.get(i, set())))
        pred.extend(f"{sid[s]}\t{tid[t]}" for s, t in sorted(chosen))
        gold.extend(f"{sid[s]}\t{tid[t]}" for s, t in sorted(gold_set))
    return record(ids, "f1", stats, pred, gold)


class RetrievalFormat(TaskTypeBase):
    """The retrieval task type (see module doc); ``spec.retrieval`` tells BUCC from Tatoeba."""

    task_type = TaskType.RETRIEVAL
    trainable = False

    def featurize(
        self,
        examples: Sequence[RetrievalCorpus],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """One feature per sentence of every corpus (source side, then target side)."""
        features: list[Feature] = []
        for c, corpus in enumerate(examples):
            for side, sentences in ((SOURCE, corpus.source), (TARGET, corpus.target)):
                for rng in chunks(len(sentences)):
                    enc = tokenizer(
                        [sentences[i] for i in rng], truncation=True, max_length=cfg.max_length
                    )
                    for i, ids in zip(rng, enc["input_ids"], strict=True):
                        features.append(
                            {"sequences": [ids], "example_index": c, "_side": side, "_index": i}
                        )
        return features

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """Pooling of layer ``cfg.layer`` (``None`` = middle, resolved by the model)."""
        cfg = cfg or FeaturizeConfig()
        return HeadSpec("pooling", layer=cfg.layer, pooling=cfg.pooling)

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Retrieval tasks are evaluation-only.

        Raises:
            ConfigError: always.
        """
        raise ConfigError(
            "retrieval tasks have no training loss (they are evaluated zero-shot only)",
            hint="use a retrieval task only as an evaluation target, not in a training chain",
        )

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Per feature: its pooled embedding ``[H]`` as a float32 numpy row."""
        emb = logits.detach().float().cpu().numpy()  # [S, H], S == B
        return list(emb)

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """Per corpus: ``(source_embeddings [n_src, H], target_embeddings [n_tgt, H])``."""
        if not raw:
            return [(np.zeros((0, 0), np.float32),) * 2 for _ in examples]
        dim = int(np.asarray(raw[0]).shape[-1])
        out: list[Embeddings] = [
            (
                np.zeros((len(c.source), dim), np.float32),
                np.zeros((len(c.target), dim), np.float32),
            )
            for c in of_type(examples, RetrievalCorpus)
        ]
        for feat, row in zip(features, raw, strict=True):
            out[feat["example_index"]][feat["_side"]][feat["_index"]] = row
        return out

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """BUCC ``precision/recall/f1/threshold`` or Tatoeba ``accuracy`` (percent).

        Several corpora for one language are scored separately and averaged, weighted by
        their number of gold pairs.
        """
        corpora = of_type(examples, RetrievalCorpus)
        results = [_score_corpus(c, e, spec) for c, e in zip(corpora, predictions, strict=True)]
        if len(results) == 1:
            return results[0]
        weights = [max(len(c.gold), 1) for c in corpora]
        total = sum(weights)
        return {
            key: sum(w * r[key] for w, r in zip(weights, results, strict=True)) / total
            for key in results[0]
        }

    def language_score(self, spec: TaskSpec, lang: str, scores: Mapping[str, float]) -> float:
        """Mining: F1; search: accuracy."""
        from xstilts.metrics.xtreme_score import metric_value

        return metric_value(lang, scores, "f1" if spec.retrieval == "mining" else "accuracy")

    def scored_count(self, examples: Sequence[Example]) -> int:
        """Gold pairs over the language's corpora (Tatoeba: its sentences)."""
        return sum(len(c.gold) for c in of_type(examples, RetrievalCorpus))

    def eval_extra(self, cfg: FeaturizeConfig) -> dict[str, Any]:
        """The pooling and layer that produced the embeddings."""
        return {"pooling": cfg.pooling, "layer": cfg.layer}

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """Mining reuses the language's ``threshold`` score; search needs none."""
        corpora = of_type(examples, RetrievalCorpus)
        if spec.retrieval == "mining":
            return _mining_details(corpora, predictions, scores.get("threshold"))
        return _search_details(corpora, predictions)

    def rescore(self, spec: TaskSpec, pred: Path, gold: Path, lang: str) -> float:
        """Mining: F1 of the ``src<TAB>tgt`` pair sets, as evaluate.py; search: accuracy."""
        if spec.retrieval != "mining":
            return super().rescore(spec, pred, gold, lang)
        from xstilts.metrics.per_example import f1_from_counts, set_counts

        return f1_from_counts(*set_counts(set(read_label(pred)), set(read_label(gold))))


FORMAT = RetrievalFormat()
