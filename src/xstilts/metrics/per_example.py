"""Per-example predictions, gold and metric contributions: what bootstrap and export need.

A language's score is either a mean of per-example values (accuracy, QA ``(EM + F1) / 2``,
Tatoeba) or an F1 over summed counts (seqeval entity F1, BUCC). Each example therefore gets
*sufficient statistics* (``kind = "mean"``: one value in percent; ``kind = "f1"``:
``[true positives, predicted, gold]``), so a resample of examples re-scores exactly like the
official scorer scores the resampled set. Entity chunks never cross sentences (seqeval puts an
``"O"`` between sentences), so per-sentence counts sum to the corpus counts.

The record of one language (``details``) is plain JSON::

    {"ids": [...], "kind": "mean" | "f1", "stats": [...] | None, "pred": [...], "gold": [...]}

``pred``/``gold`` are export-ready: label names, tag names per word, answer strings (gold: all
gold answers), the retrieved target index (Tatoeba) or ``"src_id\\ttgt_id"`` lines (BUCC,
``pred`` per mined pair, not per example). ``stats is None`` when the set has no gold.

Each task type builds its record (``details`` of :mod:`xstilts.tasks.formats`) from the metric
functions; this module holds the arithmetic every record shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def f1_from_counts(tp: float, n_pred: float, n_gold: float) -> float:
    """Entity/pair F1 in percent from summed counts (0 when nothing was predicted or gold)."""
    denom = n_pred + n_gold
    return 200.0 * tp / denom if denom else 0.0


def set_counts(found: set[Any], gold: set[Any]) -> list[int]:
    """``[true positives, predicted, gold]`` of one example's predicted and gold sets."""
    return [len(found & gold), len(found), len(gold)]


def score_from_stats(kind: str, stats: Sequence[Any]) -> float:
    """The language score (percent) that ``stats`` of all its examples give."""
    arr = np.asarray(stats, dtype=np.float64)
    if kind == "mean":
        return float(arr.mean()) if arr.size else 0.0
    total = arr.reshape(-1, 3).sum(axis=0)
    return f1_from_counts(*total)


def record(
    ids: Sequence[Any], kind: str, stats: Sequence[Any] | None, pred: Sequence[Any], gold: Any
) -> dict[str, Any]:
    """The JSON record of one language in the layout above."""
    return {"ids": list(ids), "kind": kind, "stats": stats, "pred": list(pred), "gold": gold}
