"""Task types: one module each; :func:`get_format` picks the implementation for a spec."""

from __future__ import annotations

from xstilts.tasks.formats.base import FeaturizeConfig, TaskFormat
from xstilts.tasks.spec import TaskType


def get_format(task_type: TaskType | str) -> TaskFormat:
    """The implementation of ``task_type`` (a module-level singleton)."""
    from xstilts.tasks.formats import (
        classification,
        extractive_qa,
        multiple_choice,
        retrieval,
        tagging,
    )

    formats: dict[TaskType, TaskFormat] = {
        TaskType.CLASSIFICATION: classification.FORMAT,
        TaskType.MULTIPLE_CHOICE: multiple_choice.FORMAT,
        TaskType.EXTRACTIVE_QA: extractive_qa.FORMAT,
        TaskType.TAGGING: tagging.FORMAT,
        TaskType.RETRIEVAL: retrieval.FORMAT,
    }
    return formats[TaskType(task_type)]


__all__ = ["FeaturizeConfig", "TaskFormat", "get_format"]
