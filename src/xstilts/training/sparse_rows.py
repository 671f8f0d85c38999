"""``train.embedding_update: sparse``: AdamW on only the word-embedding rows a step touched.

Why it exists. Encoders with XLM-R's vocabulary carry a 250,002-row word table (96 M parameters
in e5-small, 256 M in XLM-R Large), yet a batch uses a few hundred distinct tokens. Dense AdamW
still reads and writes every row of the table, its gradient and both moments at every step: for
XLM-R Large nearly half of the optimizer's memory traffic (by parameter count; issue 15
estimates the optimizer step at 25-60 % of a GPU training step, not measured here). With
``sparse`` the table is left out of the main (fused) AdamW and :class:`SparseRowAdamW` updates
only the rows whose gradient is non-zero.
Measured on CPU (e5-small, bf16, one thread, benchmarks/results/
train_throughput_cpu_e5small_sparse.md) it is 0.92x the dense step's throughput, *not* faster:
the dense gradient is still built, clipped and scanned. Its GPU value is not measured.

What it computes (LazyAdam-style). A touched row gets exactly AdamW's update: decoupled weight
decay, both moments and the bias correction of its *own* step count (the number of steps that
touched it), at the learning rate the main optimizer used this step (so warm-up and decay
apply). A row touched on k steps ends where ``torch.optim.AdamW`` applied to that row alone on
those k steps would. The table keeps its place in gradient clipping (the loop clips all
gradients together, before either optimizer steps) and in the DDP gradient sum.

Not dense AdamW. An untouched row keeps its moments frozen and gets no weight decay, where
dense AdamW keeps moving it with its decaying momentum and decays it. Results therefore differ
slightly, which is why the setting is recorded in the stage spec (and id) and the stage's
``optimizer`` reads ``adamw-fused + sparse-embedding``.

Touched rows are those with a non-zero gradient after clipping: the tokens of every
micro-batch of the step on every rank, MLM inputs included (``nn.Embedding`` gives the padding
row no gradient, so it never moves). Finding them reads the dense gradient once, far less than
the dense step's reads and writes of weights, gradient and two moments.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xstilts.errors import CheckpointError, ConfigError
from xstilts.training.optim import decays

KIND = "sparse-embedding"  # appended to the recorded optimizer kind
KEY = "train.embedding_update"


def word_embedding(model: nn.Module) -> nn.Parameter:
    """The trainable word-embedding table ``model.encoder.embeddings.word_embeddings.weight``.

    Raises:
        ConfigError: at ``train.embedding_update``: the encoder has no such table, or it is
            frozen (``freeze: [embeddings]``: there is nothing to update).
    """
    encoder = getattr(model, "encoder", None)
    table = getattr(getattr(encoder, "embeddings", None), "word_embeddings", None)
    weight = getattr(table, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.ndim != 2:
        raise ConfigError("this encoder has no embeddings.word_embeddings table", key=KEY)
    if not weight.requires_grad:
        raise ConfigError(
            "embedding_update: sparse, but the word embeddings are frozen", key=KEY,
            hint="remove embedding_update, or embeddings from freeze",
        )  # fmt: skip
    return weight


class SparseRowAdamW:
    """AdamW whose moments, step counts and weight decay advance only in touched rows.

    The moments are full-size tensors (as dense AdamW's), but a step reads and writes only the
    touched rows of them and of the weights.

    Args:
        weight: A 2-D parameter (rows are updated independently).
        weight_decay: The decoupled weight decay of the dense optimizer's rule for this tensor.
    """

    def __init__(self, weight: nn.Parameter, weight_decay: float) -> None:
        self.weight = weight
        self.weight_decay = weight_decay if decays(weight) else 0.0
        self.exp_avg = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        self.exp_avg_sq = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        self.steps = torch.zeros(weight.shape[0], dtype=torch.int64, device=weight.device)

    def step_like(self, optimizer: torch.optim.Optimizer) -> None:
        """:meth:`step` with ``optimizer``'s current lr, betas and eps (before its schedule moves).

        The schedule scales every group's lr alike, so the first group's lr is the step's lr.
        """
        group = optimizer.param_groups[0]
        self.step(float(group["lr"]), tuple(group["betas"]), float(group["eps"]))

    @torch.no_grad()
    def step(self, lr: float, betas: tuple[float, float], eps: float) -> None:
        """Update the rows with a non-zero gradient, then clear the gradient.

        Args:
            lr: This step's learning rate.
            betas: AdamW's moment decay rates.
            eps: AdamW's denominator term.
        """
        grad = self.weight.grad
        self.weight.grad = None  # the main optimizer's zero_grad does not see this parameter
        if grad is None:
            return
        rows = grad.ne(0).any(dim=1).nonzero().squeeze(1)  # [R] touched row ids
        if rows.numel() == 0:
            return
        beta1, beta2 = betas
        g = grad.index_select(0, rows)  # [R, H]
        p = self.weight.index_select(0, rows)
        m = self.exp_avg.index_select(0, rows)
        v = self.exp_avg_sq.index_select(0, rows)
        t = self.steps.index_select(0, rows) + 1  # [R] each row's own step count
        # AdamW, in torch.optim.AdamW's order, per row.
        p.mul_(1 - lr * self.weight_decay)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        t64 = t.to(torch.float64)
        step_size = (lr / (1 - beta1**t64)).to(p.dtype).unsqueeze(1)  # [R, 1]
        correction2 = (1 - beta2**t64).sqrt().to(p.dtype).unsqueeze(1)
        p.sub_(m.div(v.sqrt().div_(correction2).add_(eps)).mul_(step_size))
        self.weight.index_copy_(0, rows, p)
        self.exp_avg.index_copy_(0, rows, m)
        self.exp_avg_sq.index_copy_(0, rows, v)
        self.steps.index_copy_(0, rows, t)

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Checkpoint form: ``(json, tensors)`` (moments and per-row step counts)."""
        meta = {"rows": int(self.weight.shape[0]), "weight_decay": self.weight_decay}
        tensors = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}
        return meta, tensors

    def load_state(self, meta: dict[str, Any] | None, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned (in place, on this optimizer's device).

        Raises:
            CheckpointError: the checkpoint has no sparse-embedding state, or one of another
                table.
        """
        names = ("exp_avg", "exp_avg_sq", "steps")
        if meta is None or any(n not in tensors for n in names):
            raise CheckpointError(
                "checkpoint has no state of the sparse word-embedding update",
                hint="delete the stage's .partial-* directory to start over",
            )  # fmt: skip
        if meta["rows"] != self.weight.shape[0]:
            raise CheckpointError(
                f"checkpoint's sparse word-embedding state has {meta['rows']} rows, this "
                f"table {self.weight.shape[0]}",
                hint="delete the stage's .partial-* directory to start over",
            )  # fmt: skip
        for name in names:
            getattr(self, name).copy_(tensors[name])


def sparse_rows(model: nn.Module, update: str, weight_decay: float) -> SparseRowAdamW | None:
    """The word table's own optimizer under ``embedding_update: sparse``; ``None``: dense.

    Call after freezing and before building the main optimizer (which must exclude the table).

    Raises:
        ConfigError: see :func:`word_embedding`.
    """
    if update != "sparse":
        return None
    return SparseRowAdamW(word_embedding(model), weight_decay)
