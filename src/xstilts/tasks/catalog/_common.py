"""Shared constants for catalog modules: label sets and the Phang et al. (2020) defaults.

Defaults follow "English intermediate-task training improves zero-shot cross-lingual transfer
too" (Phang et al., 2020): learning rate 1e-5 throughout, max length 256 (384 with stride 128
for extractive QA), 2-3 epochs for intermediate tasks, and XTREME's epoch counts for targets.
"""

from __future__ import annotations

from typing import Any

NLI_LABELS = ("entailment", "neutral", "contradiction")
LR = 1e-5
MAX_LENGTH = 256


def defaults(epochs: float, **extra: Any) -> dict[str, Any]:
    """Training defaults for a sequence/tagging task (``lr``, ``epochs``, ``max_length``)."""
    return {"lr": LR, "epochs": epochs, "max_length": MAX_LENGTH, **extra}


def qa_defaults(epochs: float = 2) -> dict[str, Any]:
    """Extractive-QA defaults: 384-token windows with a 128-token stride (SQuAD/XTREME)."""
    return {
        "lr": LR,
        "epochs": epochs,
        "max_length": 384,
        "stride": 128,
        "max_query_length": 64,
        "max_answer_length": 30,
    }


def xtreme_hint(task: str) -> str:
    """Download hint for an XTREME task folder."""
    return (
        "run google-research/xtreme scripts/download_data.sh and copy its "
        f"download/{task}/ folder to <data_dir>/xtreme/{task}/"
    )
