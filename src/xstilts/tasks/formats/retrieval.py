"""Bitext retrieval (BUCC mining, Tatoeba), evaluation only, from pooled encoder states.

Featurize turns each :class:`RetrievalCorpus` into one feature per sentence, source side
first, then target side: ``{"sequences": [ids], "example_index": corpus, "_side": 0|1,
"_index": i}``. The head is a parameter-free :class:`PoolingHead` (``cfg.pooling`` over the
output of layer ``cfg.layer``, ``None`` = the model's middle layer). Scores are floats only:
the pooling and layer that produced them are part of the evaluation config (``cfg``), which
the evaluator records next to the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from xstilts.errors import ConfigError
from xstilts.models.heads import PoolingHead
from xstilts.packing import Feature, PackedBatch
from xstilts.tasks.examples import Example, RetrievalCorpus
from xstilts.tasks.formats.base import FeaturizeConfig
from xstilts.tasks.formats.classification import chunks
from xstilts.tasks.spec import TaskSpec, TaskType

SOURCE, TARGET = 0, 1
# k nearest neighbours for margin scoring, as in XTREME/LASER BUCC mining.
BUCC_NEIGHBOURS = 4

Embeddings = tuple[np.ndarray, np.ndarray]


def _score_corpus(corpus: RetrievalCorpus, emb: Embeddings, spec: TaskSpec) -> dict[str, float]:
    """BUCC F1 at the F1-optimal threshold (``"f1"`` in metrics) or Tatoeba accuracy."""
    from xstilts.metrics import retrieval

    src, tgt = emb
    if "f1" in spec.metrics:
        pairs, scores = retrieval.mine_bucc_pairs(src, tgt, k=BUCC_NEIGHBOURS)
        result = retrieval.bucc_f1(pairs, scores, set(corpus.gold), threshold=None)
        return {k: float(v) for k, v in result.items()}
    # XTREME's Tatoeba queries with the English side (``tgt``) against an index of the other
    # language (``similarity_search(x, y)`` indexes x, searches y): en -> xx, not xx -> en.
    return {"accuracy": float(retrieval.tatoeba_accuracy(tgt, src))}


class RetrievalFormat:
    """The retrieval task type (see module doc)."""

    task_type = TaskType.RETRIEVAL

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

    def make_head(self, spec: TaskSpec, hidden_size: int, cfg: FeaturizeConfig) -> nn.Module:
        """Pooling of layer ``cfg.layer`` (``None`` = middle, resolved by the model)."""
        return PoolingHead(layer=cfg.layer, pooling=cfg.pooling)

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
            for c in examples
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
        results = [_score_corpus(c, e, spec) for c, e in zip(examples, predictions, strict=True)]
        if len(results) == 1:
            return results[0]
        weights = [max(len(c.gold), 1) for c in examples]
        total = sum(weights)
        return {
            key: sum(w * r[key] for w, r in zip(weights, results, strict=True)) / total
            for key in results[0]
        }


FORMAT = RetrievalFormat()
