"""Extractive QA (SQuAD, XQuAD, MLQA, TyDiQA-GoldP), windowed as in HF ``run_qa.py``.

Featurize: ``(question, context)`` pairs, question truncated to ``cfg.max_query_length``
tokens, context split into windows of ``cfg.max_length`` tokens overlapping by ``cfg.stride``
(``truncation="only_second"`` + overflowing tokens). Each window is a feature with ``start`` /
``end`` token indices of the first gold answer (0 = ``<s>`` when the answer is not fully
inside the window, or the example is unlabelled), ``_offsets`` (character span per context
token, ``None`` elsewhere; leading whitespace trimmed so spans are exact for SentencePiece
tokenizers, whose pieces carry the preceding space) and ``example_index``.

Predict keeps each window's full ``[T, 2]`` logits (``predict`` has no config, so the n-best
cut happens in ``postprocess``, which searches spans across all windows of an example).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from xstilts.errors import ConfigError, DataError
from xstilts.models.heads import TokenHead
from xstilts.packing import Feature, PackedBatch, pad_tokens
from xstilts.tasks.examples import Example, QAExample
from xstilts.tasks.formats.base import FeaturizeConfig
from xstilts.tasks.formats.classification import chunks, require_fast, where
from xstilts.tasks.spec import TaskSpec, TaskType

Span = tuple[int, int]


def truncate_questions(
    questions: list[str], tokenizer: PreTrainedTokenizerBase, max_tokens: int
) -> list[str]:
    """Cut each question after its ``max_tokens``-th token (character-exact, via offsets)."""
    questions = [q.lstrip() for q in questions]  # run_qa.py: leading spaces waste tokens
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for q, ids, offsets in zip(questions, enc["input_ids"], enc["offset_mapping"], strict=True):
        out.append(q if len(ids) <= max_tokens else q[: offsets[max_tokens - 1][1]])
    return out


def context_offsets(
    context: str, offsets: Sequence[Span], sequence_ids: Sequence[int | None]
) -> list[Span | None]:
    """Character spans of context tokens (``None`` for question/special tokens).

    Leading whitespace is trimmed from each span: Metaspace pieces like ``▁word`` map onto
    the preceding space, which would otherwise leak into predicted answers.
    """
    out: list[Span | None] = []
    for (a, b), sid in zip(offsets, sequence_ids, strict=True):
        if sid != 1:
            out.append(None)
            continue
        while a < b and context[a].isspace():
            a += 1
        out.append((a, b))
    return out


def gold_positions(offsets: Sequence[Span | None], start_char: int, end_char: int) -> Span:
    """Token ``(start, end)`` of the character span, or ``(0, 0)`` if not fully in the window."""
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx:
        return 0, 0
    first, last = ctx[0], ctx[-1]
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def _check_answer(example: QAExample) -> None:
    """The first answer must be the context substring at its offset."""
    ans = example.answers[0]
    if example.context[ans.start : ans.start + len(ans.text)] != ans.text:
        raise DataError(
            f"answer {ans.text!r} is not at character {ans.start} of the context "
            f"(guid {example.guid!r})",
            file=where(example),
        )


def best_span(
    windows: Sequence[tuple[np.ndarray, Sequence[Span | None]]],
    n_best: int,
    max_answer_length: int,
) -> Span | None:
    """Highest ``start_logit + end_logit`` valid span over all windows of one example.

    Args:
        windows: ``(logits [T, 2], offsets)`` per window.
        n_best: Start and end candidates considered per window.
        max_answer_length: Longest span, in tokens.

    Returns:
        The character span, or ``None`` if no window has a valid span.
    """
    best: tuple[float, Span] | None = None
    for logits, offsets in windows:
        in_context = np.array([o is not None for o in offsets])  # [T]
        starts = np.argsort(-logits[:, 0], kind="stable")[:n_best][:, None]  # [n, 1]
        ends = np.argsort(-logits[:, 1], kind="stable")[:n_best][None, :]  # [1, n]
        valid = in_context[starts] & in_context[ends]
        valid &= (ends >= starts) & (ends - starts + 1 <= max_answer_length)  # [n, n]
        if not valid.any():
            continue
        scores = np.where(valid, logits[starts, 0] + logits[ends, 1], -np.inf)  # [n, n]
        s_pos, e_pos = np.unravel_index(int(np.argmax(scores)), scores.shape)
        score = float(scores[s_pos, e_pos])
        if best is None or score > best[0]:
            s, e = int(starts[s_pos, 0]), int(ends[0, e_pos])
            best = (score, (offsets[s][0], offsets[e][1]))
    return None if best is None else best[1]


class ExtractiveQAFormat:
    """The extractive-QA task type (see module doc)."""

    task_type = TaskType.EXTRACTIVE_QA

    def featurize(
        self,
        examples: Sequence[QAExample],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """One feature per context window (several per long example)."""
        require_fast(tokenizer, self.task_type)
        features: list[Feature] = []
        n_special = tokenizer.num_special_tokens_to_add(pair=True)
        for rng in chunks(len(examples)):
            batch = [examples[i] for i in rng]
            questions = truncate_questions(
                [ex.question for ex in batch], tokenizer, cfg.max_query_length
            )
            self._check_budget(questions, tokenizer, cfg, n_special)
            enc = tokenizer(
                questions,
                [ex.context for ex in batch],
                truncation="only_second",
                max_length=cfg.max_length,
                stride=cfg.stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            for w, local in enumerate(enc["overflow_to_sample_mapping"]):
                features.append(self._window(enc, w, batch[local], rng[local]))
        return features

    @staticmethod
    def _check_budget(
        questions: list[str],
        tokenizer: PreTrainedTokenizerBase,
        cfg: FeaturizeConfig,
        n_special: int,
    ) -> None:
        """Fail clearly when the stride leaves no room for new context in a window."""
        q_len = max(len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"])
        budget = cfg.max_length - q_len - n_special
        if budget <= cfg.stride:
            raise ConfigError(
                f"max_length={cfg.max_length} leaves {budget} context tokens per window after a "
                f"{q_len}-token question, not more than stride={cfg.stride}",
                key="stride",
                hint="raise max_length or lower stride / max_query_length",
            )

    @staticmethod
    def _window(enc: Any, w: int, example: QAExample, index: int) -> Feature:
        """The feature for window ``w`` of ``enc`` (an example of index ``index``)."""
        offsets = context_offsets(example.context, enc["offset_mapping"][w], enc.sequence_ids(w))
        start, end = 0, 0
        if example.answers:
            _check_answer(example)
            ans = example.answers[0]
            start, end = gold_positions(offsets, ans.start, ans.start + len(ans.text))
        return {
            "sequences": [enc["input_ids"][w]],
            "start": start,
            "end": end,
            "example_index": index,
            "_offsets": offsets,
        }

    def make_head(self, spec: TaskSpec, hidden_size: int, cfg: FeaturizeConfig) -> nn.Module:
        """Per-token linear H->2 (start, end)."""
        return TokenHead(hidden_size, 2)

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Mean of start and end cross-entropy over each sequence's tokens.

        Args:
            logits: ``[N, 2]`` per-token start/end logits.
            batch: Packed batch with ``labels["start"]`` / ``labels["end"]`` ``[B]``.
        """
        padded = pad_tokens(logits.float(), batch, fill=float("-inf"))  # [S, T, 2]
        start_loss = F.cross_entropy(padded[..., 0], batch.labels["start"])
        end_loss = F.cross_entropy(padded[..., 1], batch.labels["end"])
        return (start_loss + end_loss) / 2

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Per feature: its ``[T_i, 2]`` float32 logits as a numpy array."""
        flat = logits.detach().float().cpu()  # [N, 2]
        lens = batch.seq_lens.cpu().tolist()
        return [part.numpy() for part in torch.split(flat, lens)]

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """The answer text per example (``""`` when no window holds a valid span)."""
        windows: dict[int, list[tuple[np.ndarray, Sequence[Span | None]]]] = defaultdict(list)
        for feat, logits in zip(features, raw, strict=True):
            windows[feat["example_index"]].append((np.asarray(logits), feat["_offsets"]))
        answers: list[str] = []
        for i, ex in enumerate(examples):
            span = best_span(windows.get(i, []), cfg.n_best, cfg.max_answer_length)
            answers.append("" if span is None else ex.context[span[0] : span[1]])
        return answers

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """Exact match and F1 (percent) with the spec's answer normalisation.

        Returns ``{}`` when no example has gold answers (e.g. TyDiQA-GoldP dev as distributed
        by XTREME): such sets are *unlabelled*, not scoreable, and the evaluator reports them
        so. A mix of labelled and unlabelled examples is a :class:`DataError`.
        """
        unlabelled = [ex for ex in examples if not ex.answers]
        if len(unlabelled) == len(examples):
            return {}
        if unlabelled:
            raise DataError(
                f"{len(unlabelled)} of {len(examples)} examples have no gold answer "
                f"(guid {unlabelled[0].guid!r})",
                file=where(unlabelled[0]),
            )
        refs = [[a.text for a in ex.answers] for ex in examples]
        preds = [str(p) for p in predictions]
        if spec.answer_normalization == "mlqa":
            from xstilts.metrics.mlqa import mlqa_scores

            scores = mlqa_scores(preds, refs, lang)
        elif spec.answer_normalization == "squad":
            from xstilts.metrics.squad import squad_scores

            scores = squad_scores(preds, refs)
        else:
            raise ConfigError(
                f"unknown answer_normalization {spec.answer_normalization!r}",
                key=f"{spec.name}.answer_normalization",
                hint="use 'squad' or 'mlqa'",
            )
        return {k: float(v) for k, v in scores.items()}


FORMAT = ExtractiveQAFormat()
