"""Shared fixtures: the real shared-data root (one fixture), a tiny encoder config."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Each test starts with one torch thread, whatever ``OMP_NUM_THREADS`` says (or not).

    pytest-xdist already runs one worker per core: more threads per worker only oversubscribe
    the cores (a 2-thread run was ~7x slower than 1-thread on a loaded 2-core machine), and a
    fixed count keeps float results the same with and without thread variables set.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_encoder(
    vocab: int,
    train_on: Sequence[str],
    max_lines: int,
    *,
    hidden: int = 32,
    layers: int = 2,
    **extra: Any,
) -> dict[str, Any]:
    """The ``encoder:`` section of a test experiment: a tiny random XLM-R and its tokenizer.

    Two attention heads, FFN ``2 * hidden``, seed 0; the tokenizer is trained on ``max_lines``
    lines of each ``train_on`` task with ``vocab`` pieces (the encoder's vocabulary size).
    ``extra`` goes into the encoder config (e.g. dropout probabilities).
    """
    tiny = {
        "vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": 2, "intermediate_size": 2 * hidden, **extra, "seed": 0,
    }  # fmt: skip
    tokenizer = {"train_on": list(train_on), "max_lines": max_lines, "vocab_size": vocab}
    return {"tiny": tiny, "tokenizer": tokenizer}


def split_files(spec: Any, data_dir: Path, split: str, lang: str) -> list[Path]:
    """Files on disk for one split and language of a task, in reading order (may be empty)."""
    assert split in spec.splits, f"{spec.name} declares no {split!r} split"
    return [path for _, path in spec.find_files(Path(data_dir), split, lang)]
