"""The best dev state of a training run: metric, step, CPU weights and early stopping."""

from __future__ import annotations

import torch
from torch import nn


class BestState:
    """Best dev metric so far, its weights (on CPU) and the early-stopping counter."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.metric: float | None = None
        self.step: int | None = None
        self.state: dict[str, torch.Tensor] | None = None
        self.bad_evals = 0

    def update(self, step: int, metric: float | None, model: nn.Module) -> None:
        """Record an evaluation; snapshot the weights when it improves."""
        if metric is None:
            return
        if self.metric is None or metric > self.metric:
            self.metric, self.step, self.bad_evals = metric, step, 0
            # CPU copies: the best state must not cost GPU memory during training.
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_evals += 1

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` evaluations in a row brought no improvement."""
        return self.patience is not None and self.bad_evals >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights back (no-op when nothing was evaluated)."""
        if self.state is not None:
            model.load_state_dict(self.state)
