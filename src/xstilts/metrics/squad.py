"""SQuAD v1.1 exact match and token F1 (official ``evaluate-v1.1.py`` rules), in percent.

XTREME scores SQuAD, XQuAD and TyDiQA-GoldP with these English rules in every language:
lower-case, drop ``string.punctuation``, drop the words a/an/the, collapse whitespace.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from xstilts.errors import DataError

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower-case, strip ASCII punctuation and English articles, collapse whitespace."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(pred: str, gold: str) -> bool:
    """Whether prediction and gold answer are equal after :func:`normalize_answer`."""
    return normalize_answer(pred) == normalize_answer(gold)


def token_f1(pred_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    """Bag-of-tokens F1 (0-1) between two token lists; 0 when nothing overlaps."""
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(pred: str, gold: str) -> float:
    """Token F1 (0-1) of two answers after :func:`normalize_answer`, whitespace tokens."""
    return token_f1(normalize_answer(pred).split(), normalize_answer(gold).split())


def aggregate(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    em_fn: Callable[[str, str], bool],
    f1_fn: Callable[[str, str], float],
) -> dict[str, float]:
    """Max over gold answers, mean over questions, in percent (shared by SQuAD and MLQA).

    Raises:
        DataError: If the sequences differ in length, are empty, or a question has no gold
            answer (the official scripts would crash on it).
    """
    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} predictions for {len(references)} questions")
    if not references:
        raise DataError("cannot score zero questions")
    em_total = f1_total = 0.0
    for i, (pred, golds) in enumerate(zip(predictions, references, strict=True)):
        if not golds:
            raise DataError(f"question {i} has no gold answer", line=i + 1)
        em_total += max(float(em_fn(pred, gold)) for gold in golds)
        f1_total += max(f1_fn(pred, gold) for gold in golds)
    n = len(references)
    return {"exact_match": 100.0 * em_total / n, "f1": 100.0 * f1_total / n}


def squad_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Official SQuAD v1.1 scores.

    Args:
        predictions: One predicted answer string per question.
        references: All gold answer strings of each question, aligned with ``predictions``.

    Returns:
        ``{"exact_match", "f1"}`` in percent (best gold answer per question, mean over questions).

    Raises:
        DataError: On misaligned input or a question without gold answers.
    """
    return aggregate(predictions, references, exact_match, f1)
