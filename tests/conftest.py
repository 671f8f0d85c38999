"""Shared fixtures: the real shared-data root (one fixture), a tiny tokenizer and encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XSTILTS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _warnings_once_per_test() -> None:
    """Each test is a run of its own: a warning deduplicated per run may be printed again."""
    from xstilts import notices

    notices.reset()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """``../shared/data``. Under ``CI=true`` missing data is an error, never a silent skip."""
    if not (SHARED_DATA / "xtreme").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"shared data not found at {SHARED_DATA} (CI=true: not skipping)")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
