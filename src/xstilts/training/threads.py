"""The torch thread count a stage runs with: explicit, the same on every executor.

CPU float reductions (matmul blocking, layer-norm sums) are split by thread, so the last bits of
a result depend on the intra-op thread count. A stage therefore never inherits the count from
its environment (``OMP_NUM_THREADS``, Ray's one-thread workers, torch's default of every core):
the executor resolves ``train.threads`` and applies it around training and evaluation alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

DEFAULT_THREADS = 1


def resolve_threads(stage_train: Mapping[str, Any], experiment_train: Mapping[str, Any]) -> int:
    """The thread count of a stage: its own ``train.threads``, else the experiment's, else 1.

    Base stages carry no training settings, so they fall back to the experiment's ``train``.
    """
    for source in (stage_train, experiment_train):
        value = source.get("threads")
        if value is not None:
            return int(value)
    return DEFAULT_THREADS


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
