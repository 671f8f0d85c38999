"""Per-task averages over languages and the overall XTREME score.

A task's score is the unweighted mean over its languages of one number per language:
accuracy (classification, multiple choice, Tatoeba), F1 (tagging, BUCC) or, for QA,
``(exact_match + f1) / 2``. The XTREME score is the mean of the nine task scores and is only
defined when all nine are present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from xstilts.errors import DataError
from xstilts.tasks.spec import TaskType

XTREME_TASKS = ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba")


def _metric(name: str) -> Callable[[str, Mapping[str, float]], float]:
    def pick(lang: str, scores: Mapping[str, float]) -> float:
        if name not in scores:
            raise DataError(
                f"language {lang!r} has no {name!r} score (has {sorted(scores)})", key=lang
            )
        return float(scores[name])

    return pick


def _qa(lang: str, scores: Mapping[str, float]) -> float:
    return (_metric("exact_match")(lang, scores) + _metric("f1")(lang, scores)) / 2


def _retrieval(lang: str, scores: Mapping[str, float]) -> float:
    # BUCC reports F1, Tatoeba accuracy; both are the retrieval type.
    return _metric("f1" if "f1" in scores else "accuracy")(lang, scores)


_PER_LANGUAGE: dict[TaskType, Callable[[str, Mapping[str, float]], float]] = {
    TaskType.CLASSIFICATION: _metric("accuracy"),
    TaskType.MULTIPLE_CHOICE: _metric("accuracy"),
    TaskType.TAGGING: _metric("f1"),
    TaskType.EXTRACTIVE_QA: _qa,
    TaskType.RETRIEVAL: _retrieval,
}


def task_score(
    metrics_by_lang: Mapping[str, Mapping[str, float]], task_type: TaskType | str
) -> float:
    """Unweighted mean over languages of the task type's headline number.

    Args:
        metrics_by_lang: Language -> metric name -> value (percent).
        task_type: A :class:`TaskType` (or its string value) selecting the headline number.

    Returns:
        The task score in percent.

    Raises:
        DataError: If there are no languages or a language lacks the needed metric.
        ValueError: If ``task_type`` is not a task type name.
    """
    per_language = _PER_LANGUAGE[TaskType(task_type)]
    if not metrics_by_lang:
        raise DataError(f"no languages to average for a {TaskType(task_type).value} task")
    values = [per_language(lang, scores) for lang, scores in metrics_by_lang.items()]
    return sum(values) / len(values)


def xtreme_score(task_scores: Mapping[str, float]) -> tuple[float | None, list[str]]:
    """Mean of the nine XTREME task scores.

    Args:
        task_scores: Task name -> task score; names outside :data:`XTREME_TASKS` are ignored.

    Returns:
        ``(score, [])`` when all nine are present, else ``(None, missing task names)``.
    """
    missing = [name for name in XTREME_TASKS if name not in task_scores]
    if missing:
        return None, missing
    return sum(float(task_scores[name]) for name in XTREME_TASKS) / len(XTREME_TASKS), []
