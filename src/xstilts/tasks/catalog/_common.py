"""Shared constants for catalog modules: label sets and the Phang et al. (2020) defaults.

Defaults follow "English intermediate-task training improves zero-shot cross-lingual transfer
too" (Phang et al., 2020): learning rate 1e-5 throughout, max length 256 (384 with stride 128
for extractive QA), 2-3 epochs for intermediate tasks, and XTREME's epoch counts for targets.
The values shared by every task are the built-in defaults (:mod:`xstilts.settings`); the
catalog states only each task's own (epochs, QA's 384-token windows).
"""

from __future__ import annotations

from typing import Any

NLI_LABELS = ("entailment", "neutral", "contradiction")


def defaults(epochs: float, **extra: Any) -> dict[str, Any]:
    """Training defaults for a sequence/tagging task: its epoch count.

    Learning rate (1e-5) and max length (256) are the built-in defaults of
    :mod:`xstilts.settings`; a task states only what differs.
    """
    return {"epochs": epochs, **extra}


def qa_defaults(epochs: float = 2) -> dict[str, Any]:
    """Extractive-QA defaults: 384-token windows (SQuAD/XTREME; stride etc. are built-in)."""
    return {"epochs": epochs, "max_length": 384}


def xtreme_hint(task: str) -> str:
    """Download hint for an XTREME task folder."""
    return (
        "run google-research/xtreme scripts/download_data.sh and copy its "
        f"download/{task}/ folder to <data_dir>/xtreme/{task}/"
    )
