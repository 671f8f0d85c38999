"""What a checkpoint captures of a running :func:`xstilts.training.loop.train`, and its restore.

Captured: model weights, optimizer moments and hyper-parameters (and the sparse word-embedding
update's moments and per-row step counts), the LR-scheduler state, every
RNG (Python, NumPy, torch CPU/CUDA), each task's batch stream (epoch and position), the task
sampler's RNG, the auxiliary objective's state, token/loss counters, the dev curve, the
early-stopping state and its best weights. Restoring all of it makes the continued run
bit-identical (on CPU) to one that was never interrupted. No gradient scaler exists to save:
training runs in fp32 or bf16 autocast, neither of which scales the loss.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from xstilts.errors import CheckpointError
from xstilts.training import checkpointing as ckpt


@dataclass
class TrainState:
    """The mutable parts of one training run (the loop owns them; this class saves them).

    ``streams`` and ``sampler`` expose ``state() -> json`` and ``load_state(json)``; an
    ``auxiliary`` with state has ``state() -> (json, tensors)`` and
    ``load_state(json, tensors)``; ``counters`` is a dataclass of numbers; ``best`` has
    ``metric``, ``step``, ``bad_evals`` and ``state`` (CPU weights or ``None``).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    streams: Sequence[Any]
    sampler: Any
    counters: Any
    best: Any
    curve: list[dict[str, Any]]
    total_steps: int
    auxiliary: Any = None
    embedding_rows: Any = None  # sparse_rows.SparseRowAdamW (embedding_update: sparse) or None
    finished: bool = False
    stopped_early: bool = False
    prior_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        """Training time over all runs of this stage (the current one included)."""
        return self.prior_seconds + time.perf_counter() - self.started

    def save(self, checkpointer: ckpt.Checkpointer, step: int) -> None:
        """Write checkpoint ``step`` with everything needed to continue after it."""
        meta, tensors = ckpt.rng_state()
        optim_meta, optim_tensors = ckpt.optimizer_state(self.optimizer)
        tensors.update(optim_tensors)
        aux_meta = None
        if self.auxiliary is not None and hasattr(self.auxiliary, "state"):
            aux_meta, aux_tensors = self.auxiliary.state()
            tensors.update({f"aux.{k}": v for k, v in aux_tensors.items()})
        rows_meta = None
        if self.embedding_rows is not None:
            rows_meta, rows_tensors = self.embedding_rows.state()
            tensors.update({f"rows.{k}": v for k, v in rows_tensors.items()})
        counters = {
            k: float(v) if isinstance(v, torch.Tensor) else v
            for k, v in dataclasses.asdict(self.counters).items()
        }
        best_meta = {"metric": self.best.metric, "step": self.best.step}
        meta.update(
            total_steps=self.total_steps,
            finished=self.finished,
            stopped_early=self.stopped_early,
            seconds=self.seconds(),
            optimizer=optim_meta,
            scheduler=self.scheduler.state_dict(),
            streams=[s.state() for s in self.streams],
            sampler=self.sampler.state(),
            auxiliary=aux_meta,
            embedding_rows=rows_meta,
            counters=counters,
            curve=self.curve,
            best={**best_meta, "bad_evals": self.best.bad_evals},
        )
        best = None
        if self.best.state is not None and self.best.step is not None:
            best = (self.best.step, self.best.state)
        checkpointer.save(step, self.model, meta, tensors, best)

    def resume(self, checkpointer: ckpt.Checkpointer) -> int:
        """Load the newest checkpoint, if any; returns the step it ends at (0 = none).

        Raises:
            CheckpointError: the checkpoint is corrupt or belongs to a different run.
        """
        path = checkpointer.latest()
        if path is None:
            return 0
        meta, weights, tensors, best_weights = checkpointer.load(path)
        where = path / "state.json"
        if meta["total_steps"] != self.total_steps or len(meta["streams"]) != len(self.streams):
            raise CheckpointError(
                f"checkpoint is for {meta['total_steps']} steps and {len(meta['streams'])} "
                f"tasks, this run has {self.total_steps} and {len(self.streams)}",
                file=where, hint="delete the stage's .partial-* directory to start over",
            )  # fmt: skip
        try:
            self.model.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(
                f"checkpoint weights do not fit this model: {str(exc).splitlines()[0]}",
                file=path / "model.safetensors",
                hint="delete the stage's .partial-* directory to start over",
            ) from exc
        ckpt.load_optimizer_state(self.optimizer, meta["optimizer"], tensors)
        self.scheduler.load_state_dict(meta["scheduler"])
        for stream, s_meta in zip(self.streams, meta["streams"], strict=True):
            stream.load_state(s_meta)
        self.sampler.load_state(meta["sampler"])
        if self.auxiliary is not None and hasattr(self.auxiliary, "load_state"):
            aux = {k[4:]: v for k, v in tensors.items() if k.startswith("aux.")}
            self.auxiliary.load_state(meta["auxiliary"], aux)
        if self.embedding_rows is not None:
            rows = {k[5:]: v for k, v in tensors.items() if k.startswith("rows.")}
            self.embedding_rows.load_state(meta.get("embedding_rows"), rows)
        for key, value in meta["counters"].items():
            setattr(self.counters, key, value)
        self.curve[:] = meta["curve"]
        self.best.metric = meta["best"]["metric"]
        self.best.step = meta["best"]["step"]
        self.best.bad_evals = meta["best"]["bad_evals"]
        self.best.state = best_weights
        self.finished, self.stopped_early = meta["finished"], meta["stopped_early"]
        self.prior_seconds, self.started = meta["seconds"], time.perf_counter()
        # Last: nothing above may draw random numbers after the RNGs are put back.
        ckpt.set_rng_state(meta, tensors)
        return int(meta["step"])
