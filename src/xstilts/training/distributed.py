"""Data parallelism for one stage: several processes (GPUs, or CPU processes with gloo) train it.

Launch with ``xstilts run EXP --nproc-per-node N`` (which re-executes itself under
``torch.distributed.run``), ``torchrun --nproc-per-node N -m xstilts run EXP`` or
``accelerate launch --num_processes N -m xstilts run EXP``: all of them set ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``, which :func:`init_from_env` reads.

How one optimizer step is split: every rank draws the *same* global micro-batches (same seeds,
same length-grouped streams, same task sampler) and trains on its disjoint share of each
(``indices[rank::world_size]``). Each rank scales its mean loss by ``len(share) / len(batch)``
and the gradients are **summed** across ranks, so the step sees exactly the gradient of the
single-process run with the same global batch (up to float summation order; per-token losses
such as tagging are weighted by examples, not tokens). Gradients are all-reduced explicitly,
once per optimizer step, instead of wrapping the model in ``DistributedDataParallel``: a
multi-head model leaves different heads unused on different ranks, a rank may get an empty
share of a small batch, and the MLM auxiliary runs a second forward pass, all of which DDP's
per-backward hooks handle badly. The effect is the same: identical weights on every rank.

Rank 0 alone evaluates on dev (the metric is broadcast so early stopping agrees), writes stage
directories, checkpoints and the results store; the token/example counters are summed over
ranks at the end. Other ranks follow rank 0 through the plan
(:func:`xstilts.pipelines.executor_ranks.follow_plan`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# Rank 0 evaluates a stage while the others wait in a collective: allow for long evaluations.
TIMEOUT_ENV = "XSTILTS_DIST_TIMEOUT_S"
_DEFAULT_TIMEOUT_S = 4 * 3600
# Parameters all-reduced per collective call (~64 MB in fp32): bounds the extra memory.
_BUCKET_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Parallel:
    """This process's place in the group; ``world_size == 1`` makes every method a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that evaluates and writes files."""
        return self.rank == 0

    def shard(self, indices: Sequence[int]) -> list[int]:
        """This rank's disjoint share of one global micro-batch (all of it when alone)."""
        return list(indices[self.rank :: self.world_size])

    def split(self, indices: Sequence[int]) -> tuple[list[int], float]:
        """This rank's share of a global micro-batch and its weight ``len(share) / len(batch)``.

        Each rank scales its mean loss by the weight and gradients are summed over ranks, so
        the step gets the gradient of the mean over the whole global micro-batch.
        """
        share = self.shard(indices)
        return share, len(share) / max(len(indices), 1)

    def on_main(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` run on rank 0 only; every rank returns rank 0's (picklable) result.

        Dev evaluation goes through here: one rank evaluates, and the metric every rank sees is
        the same, so best-state snapshots and early stopping agree.
        """
        return self.broadcast_object(fn(*args) if self.is_main else None)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (any picklable value)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def prepare(self, model: nn.Module, seed: int) -> None:
        """Give every rank rank 0's weights; seed dropout differently on each rank."""
        if not self.active:
            return
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)
        if self.rank > 0:  # rank 0 keeps the single-process random stream
            torch.manual_seed(seed + 1_000_003 * self.rank)

    def sync_gradients(self, model: nn.Module, counters: Any) -> None:
        """Sum gradients over ranks (see the module doc) and share the step's loss.

        A parameter no rank used keeps ``grad = None`` (the optimizer then skips it, exactly as
        in a single process); one used elsewhere gets zeros here before the sum. The step loss
        (``counters.step_loss``) becomes the mean over ranks, so a non-finite loss on any rank
        stops every rank at the same step.
        """
        if not self.active:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        device = params[0].device
        used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
        loss = torch.as_tensor(counters.step_loss, dtype=torch.float32, device=device)
        # One small collective for the used flags and the loss: [P + 1]
        flags = torch.cat([used.to(device), loss.reshape(1)])
        dist.all_reduce(flags)
        counters.step_loss = flags[-1] / self.world_size
        live = [p for p, n in zip(params, flags[:-1].tolist(), strict=True) if n > 0]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(live):
            grads = [p.grad for p in bucket if p.grad is not None]  # all set just above
            flat = torch.cat([g.reshape(-1) for g in grads])  # [sum of sizes]
            dist.all_reduce(flat)
            offset = 0
            for g in grads:
                n = g.numel()
                g.copy_(flat[offset : offset + n].view_as(g))
                offset += n

    def gather_counters(self, counters: Any) -> None:
        """Sum the token and example counters over ranks (rank 0 reports the total)."""
        if not self.active:
            return
        names = ("real_tokens", "processed_tokens", "examples")
        values = torch.tensor([int(getattr(counters, n)) for n in names], dtype=torch.int64)
        values = values.to(_collective_device())
        dist.all_reduce(values)
        for name, value in zip(names, values.tolist(), strict=True):
            setattr(counters, name, int(value))


def _buckets(params: Sequence[nn.Parameter]) -> list[list[nn.Parameter]]:
    """Parameters grouped by dtype and device into buckets of at most ``_BUCKET_ELEMENTS``."""
    out: list[list[nn.Parameter]] = []
    current: list[nn.Parameter] = []
    size = 0
    for p in params:
        if current and (
            size + p.numel() > _BUCKET_ELEMENTS
            or p.dtype != current[0].dtype
            or p.device != current[0].device
        ):
            out.append(current)
            current, size = [], 0
        current.append(p)
        size += p.numel()
    if current:
        out.append(current)
    return out


def _collective_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo CPU ones."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def prepare(model: nn.Module, seed: int, checkpoint_dir: Path | None) -> tuple[Parallel, Any]:
    """Start of a training run: the context, with rank 0's weights and checkpoint dir everywhere.

    Every rank resumes from rank 0's checkpoints (only rank 0 writes them), so all ranks
    continue from the same step.

    Returns:
        ``(context, checkpoint_dir)``; a single process gets its own arguments back.
    """
    par = context()
    par.prepare(model, seed)
    return par, par.broadcast_object(checkpoint_dir)


def context() -> Parallel:
    """The current process group as a :class:`Parallel` (single process when none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Parallel()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return Parallel(dist.get_rank(), dist.get_world_size(), local)


def init_from_env() -> Parallel:
    """Join the process group described by ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    NCCL on GPUs (each rank takes GPU ``LOCAL_RANK``), gloo on CPU. Without those variables
    (or with ``WORLD_SIZE=1``) nothing happens and a single-process context is returned.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return context()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    timeout = timedelta(seconds=int(os.environ.get(TIMEOUT_ENV, _DEFAULT_TIMEOUT_S)))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return context()


def shutdown() -> None:
    """Leave the process group (if joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def relaunch_command(argv: Sequence[str], nproc: int) -> list[str]:
    """``python -m torch.distributed.run`` running ``xstilts ARGV`` on ``nproc`` processes.

    ``--nproc-per-node`` is removed from ``argv`` (the children see ``WORLD_SIZE`` instead).
    """
    rest: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc-per-node":
            skip = True
            continue
        if not arg.startswith("--nproc-per-node="):
            rest.append(arg)
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "xstilts", *rest,
    ]  # fmt: skip
