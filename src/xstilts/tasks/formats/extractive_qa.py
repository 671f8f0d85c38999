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

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import Example, QAExample, of_type
from xstilts.tasks.formats.base import FeaturizeConfig, HeadSpec, Spell, TaskTypeBase
from xstilts.tasks.formats.classification import chunks, require_fast, where
from xstilts.tasks.readers.squad import original_ids
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch

Span = tuple[int, int]
REIDENTIFIED_WHY = (
    "the source file repeats question ids, so every question was scored under "
    "'<id>#<0-based position in the file>'"
)


def qa_scores(
    spec: TaskSpec, predictions: Sequence[str], references: Sequence[Sequence[str]], lang: str
) -> dict[str, float]:
    """Exact match and F1 (percent) under the task's answer normalisation (the one place
    ``spec.answer_normalization`` is read: scoring, per-example records and re-scoring)."""
    if spec.answer_normalization == "mlqa":
        from xstilts.metrics.mlqa import mlqa_scores

        scores = mlqa_scores(list(predictions), list(references), lang)
    else:  # "squad": TaskSpec admits no other value
        from xstilts.metrics.squad import squad_scores

        scores = squad_scores(list(predictions), list(references))
    return {k: float(v) for k, v in scores.items()}


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
    # (token index, char span) of the context tokens: one contiguous run of the window.
    ctx = [(i, o) for i, o in enumerate(offsets) if o is not None]
    if not (ctx and ctx[0][1][0] <= start_char and ctx[-1][1][1] >= end_char):
        return 0, 0
    k = 0  # first context token starting after start_char (k >= 1: ctx[0] starts before it)
    while k < len(ctx) and ctx[k][1][0] <= start_char:
        k += 1
    j = len(ctx) - 1  # last context token ending before end_char (j < len - 1, as above)
    while j >= 0 and ctx[j][1][1] >= end_char:
        j -= 1
    return ctx[k - 1][0], ctx[j + 1][0]


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
            first, last = offsets[int(starts[s_pos, 0])], offsets[int(ends[0, e_pos])]
            assert first is not None and last is not None  # `valid` keeps context tokens only
            best = (score, (first[0], last[1]))
    return None if best is None else best[1]


class ExtractiveQAFormat(TaskTypeBase):
    """The extractive-QA task type (see module doc)."""

    task_type = TaskType.EXTRACTIVE_QA
    export_suffix = "json"
    degenerate_check = "near_zero"

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

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """Per-token linear H->2 (start, end)."""
        return HeadSpec("token", 2)

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Mean of start and end cross-entropy over each sequence's tokens.

        Args:
            logits: ``[N, 2]`` per-token start/end logits.
            batch: Packed batch with ``labels["start"]`` / ``labels["end"]`` ``[B]``.
        """
        import torch.nn.functional as F

        from xstilts.packing import pad_tokens

        padded = pad_tokens(logits.float(), batch, fill=float("-inf"))  # [S, T, 2]
        start_loss = F.cross_entropy(padded[..., 0], batch.labels["start"])
        end_loss = F.cross_entropy(padded[..., 1], batch.labels["end"])
        return (start_loss + end_loss) / 2

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Per feature: its ``[T_i, 2]`` float32 logits as a numpy array."""
        import torch

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
        for i, ex in enumerate(of_type(examples, QAExample)):
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
        questions = of_type(examples, QAExample)
        unlabelled = [ex for ex in questions if not ex.answers]
        if len(unlabelled) == len(questions):
            return {}
        if unlabelled:
            raise DataError(
                f"{len(unlabelled)} of {len(questions)} examples have no gold answer "
                f"(guid {unlabelled[0].guid!r})",
                file=where(unlabelled[0]),
            )
        refs = [[a.text for a in ex.answers] for ex in questions]
        return qa_scores(spec, [str(p) for p in predictions], refs, lang)

    def selection_metric(self, spec: TaskSpec) -> str:
        """F1 when declared (SQuAD practice), else the first declared metric."""
        return "f1" if "f1" in spec.metrics else spec.metrics[0]

    def language_score(self, spec: TaskSpec, lang: str, scores: Mapping[str, float]) -> float:
        """``(exact_match + f1) / 2``, as XTREME averages QA."""
        from xstilts.metrics.xtreme_score import qa_value

        return qa_value(lang, scores)

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """Answer strings, all gold answers, ``(EM + F1) / 2`` per question (``"mean"``)."""
        from xstilts.metrics.per_example import record

        questions = of_type(examples, QAExample)
        ids, answers = [ex.guid for ex in questions], [str(p) for p in predictions]
        if not all(ex.answers for ex in questions):
            # Unlabelled set (TyDiQA-GoldP dev as XTREME ships it): nothing to score.
            return record(ids, "mean", None, answers, None)
        golds = [[a.text for a in ex.answers] for ex in questions]
        per = [qa_scores(spec, [p], [g], lang) for p, g in zip(answers, golds, strict=True)]
        stats = [(s["exact_match"] + s["f1"]) / 2 for s in per]
        return record(ids, "mean", stats, answers, golds)

    def prediction_file(self, rec: Mapping[str, Any], spell: Spell) -> str:
        """``{question id: answer text}`` JSON."""
        return json.dumps(dict(zip(rec["ids"], rec["pred"], strict=True)), ensure_ascii=False)

    def gold_file(self, rec: Mapping[str, Any], spell: Spell) -> str | None:
        """SQuAD v1.1 JSON with the gold answers (``None`` for an unlabelled set)."""
        if rec.get("gold") is None:
            return None
        qas = [
            {"id": i, "answers": [{"text": t} for t in golds]}
            for i, golds in zip(rec["ids"], rec["gold"], strict=True)
        ]
        data = {"version": "1.1", "data": [{"paragraphs": [{"qas": qas}]}]}
        return json.dumps(data, ensure_ascii=False)

    def rescore(self, spec: TaskSpec, pred: Path, gold: Path, lang: str) -> float:
        """``(EM + F1) / 2`` of an answer file against a SQuAD-format gold file."""
        answers = json.loads(pred.read_text(encoding="utf-8"))
        gold_data = json.loads(gold.read_text(encoding="utf-8"))["data"]
        qas = [qa for art in gold_data for par in art["paragraphs"] for qa in par["qas"]]
        preds = [answers.get(qa["id"], "") for qa in qas]
        refs = [[a["text"] for a in qa["answers"]] for qa in qas]
        s = qa_scores(spec, preds, refs, lang)
        return (s["exact_match"] + s["f1"]) / 2

    def export_note(self, rec: Mapping[str, Any]) -> dict[str, Any] | None:
        """The ``old id -> new ids`` map of a record scored under re-identified ids."""
        old = original_ids(rec["ids"])
        if old is None:
            return None
        mapping: dict[str, list[str]] = {}
        for before, after in zip(old, rec["ids"], strict=True):
            mapping.setdefault(before, []).append(after)
        return {"why": REIDENTIFIED_WHY, "old_to_new": mapping}


FORMAT = ExtractiveQAFormat()
