"""Sequence tagging (PAN-X NER, UD-POS): one tag per word, predicted on its first sub-token.

Words are tokenised with ``is_split_into_words=True`` and truncated to ``cfg.max_length``.
``token_labels`` (aligned with the sequence) carries the word's tag on its FIRST sub-token and
-100 on later sub-tokens and special tokens. ``_word_starts`` maps each word to that token
(-1 when the word has no token: truncated away, or a word the tokenizer reduces to nothing).

Such words still need a prediction for scoring: they get the ``"O"`` tag (class 0 when the
label set has no ``"O"``), as XTREME's ``run_tag.py`` does for words beyond ``max_length``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import Example, TaggingExample, of_type
from xstilts.tasks.formats.base import (
    FeaturizeConfig,
    HeadSpec,
    Spell,
    TaskTypeBase,
    read_tag,
)
from xstilts.tasks.formats.classification import check_label, chunks, require_fast, where
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch

# Label of tokens the loss ignores (``xstilts.packing.IGNORE_INDEX``, torch's default; repeated
# here so the task type imports without torch).
IGNORE_INDEX = -100
ENTITY_METRICS = ("f1", "precision", "recall")


def fallback_tag(spec: TaskSpec) -> int:
    """Tag predicted for words without a token: ``"O"`` if the label set has it, else 0."""
    return spec.label_to_id.get("O", 0)


def align_labels(
    word_ids: Sequence[int | None], tags: Sequence[int], num_words: int
) -> tuple[list[int], list[int]]:
    """Per-token labels (tag on first sub-token, -100 elsewhere) and each word's first token.

    Returns:
        ``(token_labels, word_starts)``; ``word_starts[w] == -1`` when word ``w`` has no token.
    """
    token_labels: list[int] = []
    word_starts = [-1] * num_words
    for pos, word in enumerate(word_ids):
        if word is None or word_starts[word] != -1:
            token_labels.append(IGNORE_INDEX)
            continue
        word_starts[word] = pos
        token_labels.append(tags[word])
    return token_labels, word_starts


def word_accuracy(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> float:
    """Percentage of words whose predicted tag equals the gold tag."""
    pairs = [
        (r, h) for ref, hyp in zip(refs, hyps, strict=True) for r, h in zip(ref, hyp, strict=True)
    ]
    return 100.0 * sum(r == h for r, h in pairs) / max(len(pairs), 1)


class TaggingFormat(TaskTypeBase):
    """The tagging task type (see module doc)."""

    task_type = TaskType.TAGGING
    degenerate_check = "near_zero"

    def featurize(
        self,
        examples: Sequence[TaggingExample],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """One feature per sentence, truncated to ``cfg.max_length`` tokens."""
        require_fast(tokenizer, self.task_type)
        features: list[Feature] = []
        for rng in chunks(len(examples)):
            batch = [examples[i] for i in rng]
            for ex in batch:
                self._check(ex, len(spec.labels))
            enc = tokenizer(
                [list(ex.tokens) for ex in batch],
                is_split_into_words=True,
                truncation=True,
                max_length=cfg.max_length,
            )
            for j, (i, ex) in enumerate(zip(rng, batch, strict=True)):
                labels, starts = align_labels(enc.word_ids(j), ex.tags, len(ex.tokens))
                features.append(
                    {
                        "sequences": [enc["input_ids"][j]],
                        "token_labels": labels,
                        "example_index": i,
                        "_word_starts": starts,
                    }
                )
        return features

    @staticmethod
    def _check(example: TaggingExample, num_labels: int) -> None:
        """One tag per word, each a valid class index."""
        if len(example.tags) != len(example.tokens):
            raise DataError(
                f"{len(example.tokens)} words but {len(example.tags)} tags (guid {example.guid!r})",
                file=where(example),
            )
        for tag in example.tags:
            check_label(example, tag, num_labels, what="tag")

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """Per-token linear H->C."""
        return HeadSpec("token", len(spec.labels))

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Cross-entropy over first sub-tokens (``logits [N, C]``, labels ``[N]``)."""
        import torch.nn.functional as F

        labels = batch.labels["token_labels"]  # [N]
        if not bool((labels != IGNORE_INDEX).any()):
            # All-ignored batch (e.g. only empty sentences): CE would be NaN.
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX)

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Per feature: argmax tag of every token, an int16 numpy array ``[T_i]``."""
        import torch

        tags = logits.detach().argmax(dim=-1).to(torch.int16).cpu()  # [N]
        lens = batch.seq_lens.cpu().tolist()
        return [part.numpy() for part in torch.split(tags, lens)]

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """A tag index per word, read at its first sub-token (fallback tag when it has none)."""
        default = fallback_tag(spec)
        sentences = of_type(examples, TaggingExample)
        preds: list[list[int]] = [[default] * len(ex.tokens) for ex in sentences]
        for feat, token_tags in zip(features, raw, strict=True):
            token_tags = np.asarray(token_tags)
            words = preds[feat["example_index"]]
            for w, pos in enumerate(feat["_word_starts"]):
                if pos >= 0:
                    words[w] = int(token_tags[pos])
        return preds

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """seqeval entity precision/recall/F1 over tag names (+ word accuracy if requested)."""
        from xstilts.metrics.seqeval import entity_scores

        names = spec.labels
        refs = [[names[t] for t in ex.tags] for ex in of_type(examples, TaggingExample)]
        hyps = [[names[t] for t in pred] for pred in predictions]
        out = {k: float(v) for k, v in entity_scores(refs, hyps).items()}
        for metric in spec.metrics:
            if metric == "accuracy":
                out["accuracy"] = word_accuracy(refs, hyps)
            elif metric not in ENTITY_METRICS:
                raise ConfigError(f"metric {metric!r} is not available for tagging tasks")
        return out

    def language_score(self, spec: TaskSpec, lang: str, scores: Mapping[str, float]) -> float:
        """Entity F1."""
        from xstilts.metrics.xtreme_score import metric_value

        return metric_value(lang, scores, "f1")

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """Tag names per word; per sentence ``[tp, predicted, gold]`` entity counts (``"f1"``)."""
        from xstilts.metrics.per_example import record, set_counts
        from xstilts.metrics.seqeval import get_entities

        names = spec.labels
        gold = [[names[t] for t in ex.tags] for ex in of_type(examples, TaggingExample)]
        hyp = [[names[int(t)] for t in p] for p in predictions]
        stats = [
            set_counts(set(get_entities(h)), set(get_entities(g)))
            for g, h in zip(gold, hyp, strict=True)
        ]
        return record([ex.guid for ex in examples], "f1", stats, hyp, gold)

    def prediction_file(self, rec: Mapping[str, Any], spell: Spell) -> str:
        """One tag per line, a blank line between sentences."""
        return _tag_lines(rec["pred"], spell)

    def gold_file(self, rec: Mapping[str, Any], spell: Spell) -> str | None:
        """Gold tags, laid out as the predictions."""
        return None if rec.get("gold") is None else _tag_lines(rec["gold"], spell)

    def rescore(self, spec: TaskSpec, pred: Path, gold: Path, lang: str) -> float:
        """seqeval entity F1 of the two tag files."""
        from xstilts.metrics.seqeval import entity_scores

        return entity_scores(read_tag(gold), read_tag(pred))["f1"]


def _tag_lines(sentences: Sequence[Sequence[Any]], spell: Spell) -> str:
    return "\n\n".join("\n".join(spell(t) for t in sent) for sent in sentences) + "\n"


FORMAT = TaggingFormat()
