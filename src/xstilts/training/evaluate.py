"""Zero-shot evaluation: every language of a task in ONE length-sorted pass, scored per language.

All languages' features are concatenated, sorted by length and batched by a token budget, so the
GPU sees full, nearly unpadded batches even for languages with few examples. Raw predictions are
moved to CPU as they come (nothing of size ``[num_examples, ...]`` stays on the GPU), then split
back per language for the task type's ``postprocess`` and ``score``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from xstilts.packing import Feature, pack
from xstilts.settings import (
    EvaluationSettings,
    FeaturizeSettings,
    RetrievalSettings,
    default,
    field_of,
    keys,
)
from xstilts.tasks.examples import Example
from xstilts.tasks.formats import FeaturizeConfig, TaskFormat, get_format
from xstilts.tasks.spec import TaskSpec
from xstilts.training.batching import make_batches

EVAL_SCHEMA = 2  # bumped when the evaluation cache's identity or file layout changes


@dataclass(frozen=True)
class EvalSettings:
    """How evaluation runs; deliberately NOT part of the stage id (see the stage contract).

    Attributes:
        max_eval_examples: Per-language cap on examples (first N in file order; ``None`` = all).
        max_tokens: Padded-token budget of one evaluation batch.
        retrieval_pooling: ``"mean"`` or ``"cls"`` pooling for retrieval tasks.
        retrieval_layer: Encoder layer pooled for retrieval (``None`` = middle layer).
        retrieval_max_sentences: Mining (BUCC): sentences kept per side, gold pairs first
            (``None`` = all); Tatoeba ignores it (``max_eval_examples`` caps its rows).
        languages: Task -> languages to evaluate (missing or ``None`` = every language present).
        precision: ``"auto"`` (bf16 autocast on CUDA, fp32 elsewhere), ``"bf16"`` or ``"fp32"``.
        featurize: Task -> featurization settings of a task evaluated without a trained head
            (retrieval: ``overrides.<task>.max_length``); a trained head brings its own.
    """

    # Defaults from the schema (xstilts.settings); an experiment passes its resolved values.
    max_eval_examples: int | None = default(EvaluationSettings, "max_eval_examples")
    max_tokens: int = default(EvaluationSettings, "max_tokens")
    retrieval_pooling: str = default(RetrievalSettings, "pooling")
    retrieval_layer: int | None = default(RetrievalSettings, "layer")
    retrieval_max_sentences: int | None = default(RetrievalSettings, "max_sentences")
    languages: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    precision: str = default(EvaluationSettings, "precision")
    featurize: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def languages_for(self, task: str) -> tuple[str, ...] | None:
        """Languages requested for ``task`` (``None`` = all present on disk)."""
        langs = self.languages.get(task)
        return tuple(langs) if langs is not None else None


def effective_precision(precision: str, device: torch.device) -> str:
    """What :func:`autocast_context` will run: ``"bf16"`` or ``"fp32"`` (``auto`` resolved)."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return "bf16" if bf16 else "fp32"


def eval_identity(
    task: TaskSpec,
    settings: EvalSettings,
    featurize_cfg: FeaturizeConfig,
    languages: Sequence[str],
    files: Mapping[str, str],
    device: torch.device,
) -> dict[str, Any]:
    """Everything that can change one task's scores on one stage (the stage fixes the model).

    ``max_tokens`` and the device are left out: they change batching and float rounding, not
    which predictions are made. ``files`` (relative path -> size and sha256, from
    :func:`xstilts.tasks.data.data_files`) pins the exact evaluation data; with
    ``max_eval_examples`` it pins the rows scored.
    A mining task's ``retrieval_max_sentences`` enters only when set, so the keys of
    evaluations cached before it existed stay valid.
    """
    identity = {
        "schema": EVAL_SCHEMA,
        "task": task.name,
        "task_version": task.version,
        "split": task.eval_split,
        "languages": list(languages),
        "max_eval_examples": settings.max_eval_examples,
        "featurize": featurize_identity(featurize_cfg),
        "precision": effective_precision(settings.precision, device),
        "files": dict(sorted(files.items())),
    }
    if task.retrieval == "mining" and settings.retrieval_max_sentences is not None:
        identity["max_sentences"] = settings.retrieval_max_sentences
    return identity


def featurize_identity(cfg: FeaturizeConfig) -> dict[str, Any]:
    """``cfg`` as an identity: a sparse setting left at its default is left out.

    Sparse settings (``head_pooling``) were added after evaluations were cached; leaving their
    defaults out keeps those caches' keys, as it keeps stage ids.
    """
    out = asdict(cfg)
    for name in keys(FeaturizeSettings):
        sparse = field_of(FeaturizeSettings, name).metadata["sparse"]
        if sparse and out.get(name) == default(FeaturizeSettings, name):
            out.pop(name, None)
    return out


def eval_key(identity: Mapping[str, Any]) -> str:
    """Hash of an :func:`eval_identity` (16 hex chars): the cache file name's suffix."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class EvalSummary:
    """What one task's evaluation on one stage covered (recorded in the results store).

    Attributes:
        task: Task name.
        task_version: Its version.
        key: The evaluation's :func:`eval_key` (names ``eval/``, ``examples/`` files).
        status: ``"evaluated"`` (scored now) or ``"cached"`` (identical identity found).
        reason: Why it was scored now (``""`` when cached), e.g. what data changed.
        languages: Language -> examples scored.
        unlabelled: Languages whose data has no gold labels (predictions only, no score).
        not_scored: Files or languages on disk that were not scored -> why.
        files: Relative path -> size and sha256 of every file read.
        data_dir: The data root the files were read from.
    """

    task: str
    task_version: str
    key: str
    status: str
    reason: str = ""
    languages: dict[str, int] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    not_scored: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    data_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


class EvalResults(list["EvalRecord"]):  # (defined below)
    """Evaluation records (a plain list of :class:`EvalRecord`) plus one summary per task.

    A list, so callers that only want records need nothing new; ``summaries`` travels with it
    (also through Ray) to the driver that writes the results store.
    """

    def __init__(self, records: Sequence[EvalRecord] = (), summaries: Sequence[EvalSummary] = ()):
        super().__init__(records)
        self.summaries: list[EvalSummary] = list(summaries)


@dataclass
class EvalRecord:
    """One score: a metric of one task in one language."""

    task: str
    task_version: str
    language: str
    split: str
    metric: str
    value: float
    n_examples: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))


def selection_metric(spec: TaskSpec) -> str:
    """The metric used for model selection, as the task type chooses it (QA: ``f1``)."""
    return get_format(spec.type).selection_metric(spec)


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when ``precision`` asks for it ("auto" = only on CUDA), else a no-op."""
    if effective_precision(precision, device) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def predict_task(
    model: nn.Module,
    head: str,
    fmt: TaskFormat,
    features: Sequence[Feature],
    settings: EvalSettings,
    device: torch.device,
    *,
    padding_idx: int = 1,
) -> list[Any]:
    """Raw per-feature predictions, in the order of ``features``.

    Args:
        model: An ``XstiltsModel`` (``model(batch, head) -> logits``).
        head: Name of the head to run.
        fmt: The task type (its ``predict`` turns logits into compact CPU predictions).
        features: Features of any number of languages, concatenated.
        settings: Token budget and precision.
        device: Where the model lives.
        padding_idx: The model's padding index (positions start after it).
    """
    if not features:
        return []
    batches = make_batches(
        features, batch_size=settings.max_tokens, max_tokens=settings.max_tokens, shuffle=False
    )
    out: list[Any] = [None] * len(features)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(device, settings.precision):
            for idx in batches:
                batch = pack([features[i] for i in idx], padding_idx, feature_indices=idx)
                logits = model(batch.to(device), head)
                for i, pred in zip(idx, fmt.predict(logits, batch), strict=True):
                    out[i] = pred
    finally:
        model.train(was_training)
    return out


def _split(items: Sequence[Any], sizes: Sequence[int]) -> Iterator[list[Any]]:
    start = 0
    for size in sizes:
        yield list(items[start : start + size])
        start += size


def evaluate_featurized(
    model: nn.Module,
    spec: TaskSpec,
    head: str,
    featurized: Mapping[str, tuple[Sequence[Example], Sequence[Feature]]],
    featurize_cfg: FeaturizeConfig,
    settings: EvalSettings,
    device: torch.device,
    *,
    padding_idx: int = 1,
) -> dict[str, tuple[dict[str, float], list[Any]]]:
    """Score already-featurized examples of several languages in one pass.

    Returns:
        Language -> (metric scores, one prediction per example).
    """
    fmt = get_format(spec.type)
    langs = list(featurized)
    all_features = [f for lang in langs for f in featurized[lang][1]]
    raw = predict_task(model, head, fmt, all_features, settings, device, padding_idx=padding_idx)
    results: dict[str, tuple[dict[str, float], list[Any]]] = {}
    sizes = [len(featurized[lang][1]) for lang in langs]
    for lang, lang_raw in zip(langs, _split(raw, sizes), strict=True):
        examples, features = featurized[lang]
        preds = fmt.postprocess(examples, features, lang_raw, spec, featurize_cfg)
        results[lang] = (fmt.score(examples, preds, spec, lang), preds)
    return results


def evaluate_task(
    model: nn.Module,
    spec: TaskSpec,
    examples_by_lang: Mapping[str, Sequence[Example]],
    tokenizer: PreTrainedTokenizerBase,
    featurize_cfg: FeaturizeConfig,
    settings: EvalSettings,
    device: torch.device,
    *,
    head: str | None = None,
    predictions_out: dict[str, list[Any]] | None = None,
    details_out: dict[str, dict[str, Any]] | None = None,
) -> list[EvalRecord]:
    """Featurize, predict (one pass over all languages), postprocess and score per language.

    Args:
        model: An ``XstiltsModel`` holding the task's head (or a retrieval pooling head).
        spec: The task.
        examples_by_lang: Language -> evaluation examples.
        tokenizer: The stage's tokenizer.
        featurize_cfg: Featurization settings (the ones the head was trained with).
        settings: Evaluation settings.
        device: Where the model lives.
        head: Head name (default ``spec.head``).
        predictions_out: If given, filled with language -> per-example predictions.
        details_out: If given, filled with language -> per-example ids, predictions, gold and
            metric statistics (the task type's ``details``; :mod:`xstilts.metrics.per_example`).

    Returns:
        One record per (language, metric in ``spec.metrics``); other score keys (e.g. a
        retrieval threshold) go into ``extra``.
    """
    fmt = get_format(spec.type)
    featurized = {
        lang: (examples, fmt.featurize(examples, tokenizer, spec, featurize_cfg))
        for lang, examples in examples_by_lang.items()
    }
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1
    results = evaluate_featurized(
        model, spec, head or spec.head, featurized, featurize_cfg, settings, device, padding_idx=pad
    )
    records: list[EvalRecord] = []
    for lang, (scores, preds) in results.items():
        if predictions_out is not None:
            predictions_out[lang] = preds
        if details_out is not None:
            details_out[lang] = fmt.details(spec, examples_by_lang[lang], preds, scores, lang)
        extra: dict[str, Any] = {k: v for k, v in scores.items() if k not in spec.metrics}
        extra.update(fmt.eval_extra(featurize_cfg))  # e.g. retrieval: pooling and layer
        n_examples = fmt.scored_count(examples_by_lang[lang])
        records.extend(
            EvalRecord(
                task=spec.name,
                task_version=spec.version,
                language=lang,
                split=spec.eval_split,
                metric=metric,
                value=float(scores[metric]),
                n_examples=n_examples,
                extra=extra,
            )
            for metric in spec.metrics
            if metric in scores
        )
    return records
