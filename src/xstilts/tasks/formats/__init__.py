"""Task types: one module each; :func:`get_format` picks the implementation for a spec.

Importing them is light (no torch, no transformers): planning and reporting read their
declarations; torch is imported where a type trains or predicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from xstilts.tasks.formats.base import FeaturizeConfig, HeadSpec, TaskFormat, TaskTypeBase
from xstilts.tasks.spec import TaskSpec, TaskType


def all_formats() -> dict[TaskType, TaskFormat]:
    """Every task type's implementation (module-level singletons), by type."""
    from xstilts.tasks.formats import (
        classification,
        extractive_qa,
        multiple_choice,
        retrieval,
        tagging,
    )

    modules = (classification, multiple_choice, extractive_qa, tagging, retrieval)
    return {m.FORMAT.task_type: m.FORMAT for m in modules}


def get_format(task_type: TaskType | str) -> TaskFormat:
    """The implementation of ``task_type`` (a module-level singleton)."""
    return all_formats()[TaskType(task_type)]


def format_of(spec: TaskSpec) -> TaskFormat:
    """The implementation of ``spec``'s task type."""
    return get_format(spec.type)


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
        The JSON record described in :mod:`xstilts.metrics.per_example`.
    """
    return format_of(spec).details(spec, examples, predictions, scores, lang)


def task_score_of(spec: TaskSpec, metrics_by_lang: Mapping[str, Mapping[str, float]]) -> float:
    """Mean over languages of the task type's headline number (XTREME's task score).

    Raises:
        DataError: If there are no languages or a language lacks the needed metric.
    """
    from xstilts.metrics.xtreme_score import task_score

    return task_score(metrics_by_lang, partial(format_of(spec).language_score, spec))


__all__ = [
    "FeaturizeConfig",
    "HeadSpec",
    "TaskFormat",
    "TaskTypeBase",
    "all_formats",
    "example_details",
    "format_of",
    "get_format",
    "task_score_of",
]
