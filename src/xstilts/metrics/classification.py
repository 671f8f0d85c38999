"""Accuracy, in percent, as the XTREME scripts report it for XNLI and PAWS-X."""

from __future__ import annotations

from collections.abc import Sequence

from xstilts.errors import DataError


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Share of predictions equal to their reference label, in percent (0-100).

    Args:
        predictions: Predicted class ids, one per example.
        references: Gold class ids, aligned with ``predictions``.

    Returns:
        ``100 * correct / total``.

    Raises:
        DataError: If the two sequences differ in length or are empty.
    """
    if len(predictions) != len(references):
        raise DataError(
            f"{len(predictions)} predictions for {len(references)} references",
            hint="predictions and references must be aligned one-to-one",
        )
    if not references:
        # An empty evaluation set has no accuracy; 0 or 100 would both be silently wrong.
        raise DataError("cannot compute accuracy over zero examples")
    correct = sum(int(p) == int(r) for p, r in zip(predictions, references, strict=True))
    return 100.0 * correct / len(references)
