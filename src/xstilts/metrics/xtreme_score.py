"""Per-task averages over languages and the overall XTREME score.

A task's score is the unweighted mean over its languages of one number per language:
accuracy (classification, multiple choice, Tatoeba), F1 (tagging, BUCC) or, for QA,
``(exact_match + f1) / 2``. The XTREME score is the mean of the nine task scores and is only
defined when all nine are present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from xstilts.errors import DataError

XTREME_TASKS = ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba")

# One language's headline number from its scores (the task type picks it: ``language_score``).
LanguageScore = Callable[[str, Mapping[str, float]], float]


def metric_value(lang: str, scores: Mapping[str, float], name: str) -> float:
    """``scores[name]`` as a float.

    Raises:
        DataError: If the language has no ``name`` score (e.g. an unlabelled set).
    """
    if name not in scores:
        raise DataError(f"language {lang!r} has no {name!r} score (has {sorted(scores)})", key=lang)
    return float(scores[name])


def qa_value(lang: str, scores: Mapping[str, float]) -> float:
    """QA's headline number: ``(exact_match + f1) / 2``."""
    return (metric_value(lang, scores, "exact_match") + metric_value(lang, scores, "f1")) / 2


def task_score(
    metrics_by_lang: Mapping[str, Mapping[str, float]], per_language: LanguageScore
) -> float:
    """Unweighted mean over languages of each language's headline number.

    Args:
        metrics_by_lang: Language -> metric name -> value (percent).
        per_language: ``(lang, scores) -> number``, the task type's ``language_score``.

    Returns:
        The task score in percent.

    Raises:
        DataError: If there are no languages or a language lacks the needed metric.
    """
    if not metrics_by_lang:
        raise DataError("no languages to average for the task")
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
