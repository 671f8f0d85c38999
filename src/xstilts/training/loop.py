"""The training loop: one or several tasks, one shared encoder, per-task heads.

Reading order: configuration and result types, then :func:`train` (top to bottom: set-up,
the step loop, the end), then one small helper per concern (batch streams, one optimizer step,
dev evaluation, best-state tracking).

Determinism: on CPU the same seed gives identical weights and metrics (torch RNG seeded once,
batch order and task sampling from seeded :class:`random.Random` instances); ``deterministic``
extends that to GPUs. With a ``checkpoint_dir`` it checkpoints every ``checkpoint_every`` steps
(default: each dev evaluation), at the end and on SIGTERM, and resumes bit-identically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.errors import StageInterrupted, TrainingError
from xstilts.packing import Feature, PackedBatch, pack
from xstilts.settings import EvaluationSettings, MixtureSettings, TrainSettings, default
from xstilts.tasks.examples import Example
from xstilts.tasks.formats import FeaturizeConfig, TaskFormat
from xstilts.tasks.spec import TaskSpec
from xstilts.training import checkpointing, distributed
from xstilts.training.batching import BatchStream, make_batches
from xstilts.training.best_state import BestState
from xstilts.training.evaluate import (
    EvalSettings,
    autocast_context,
    evaluate_featurized,
    selection_metric,
)
from xstilts.training.mixture import MixtureSampler
from xstilts.training.optim import build_optimizer, linear_schedule, optimizer_kind
from xstilts.training.sparse_rows import KIND as SPARSE_KIND
from xstilts.training.sparse_rows import SparseRowAdamW, sparse_rows
from xstilts.training.speed import freeze_parameters, training_attention
from xstilts.training.train_state import TrainState


@dataclass
class TrainTask:
    """One task trained in a stage: its data (already featurized) and the head it trains."""

    name: str
    spec: TaskSpec
    head: str
    format: TaskFormat
    train_features: list[Feature]
    dev_examples: list[Example]
    dev_features: list[Feature]
    featurize: FeaturizeConfig


@dataclass
class TrainConfig(TrainSettings):
    """Training hyper-parameters: the schema's ``train`` settings plus what a stage adds.

    The settings' fields and defaults are :class:`xstilts.settings.TrainSettings`'s (the
    resolved ``StageSpec.train`` keys); the fields below come from the stage, the mixture and
    the evaluation settings.
    """

    seed: int = 0
    sampling: str = default(MixtureSettings, "sampling")
    temperature: float = default(MixtureSettings, "temperature")
    padding_idx: int = 1  # the tokenizer's pad id, set from the stage's tokenizer
    eval_max_tokens: int = default(EvaluationSettings, "max_tokens")

    @classmethod
    def from_stage(
        cls, train: Mapping[str, Any], mixture: Mapping[str, Any], seed: int, padding_idx: int = 1
    ) -> TrainConfig:
        """Build from a resolved ``StageSpec.train`` / ``.mixture`` (unknown keys ignored)."""
        known = {f for f in cls.__dataclass_fields__ if f not in ("seed", "padding_idx")}
        kwargs = {k: v for k, v in train.items() if k in known}
        for name in ("sampling", "temperature"):  # a single-task stage has no mixture settings
            kwargs[name] = mixture.get(name, default(MixtureSettings, name))
        kwargs["temperature"] = float(kwargs["temperature"])
        return cls(**kwargs, seed=seed, padding_idx=padding_idx)


@dataclass
class Progress:
    """What a progress callback receives after every optimizer step."""

    step: int
    total_steps: int
    examples_seen: int
    examples_per_second: float
    loss: float
    dev_metric: float | None


@dataclass
class TrainResult:
    """Outcome of :func:`train` (also the basis of a stage's ``metrics.json``)."""

    steps: int
    best_metric: float | None
    best_step: int | None
    curve: list[dict[str, Any]]
    real_tokens: int
    processed_tokens: int
    seconds: float
    examples_passes: int
    train_examples: dict[str, int]
    stopped_early: bool = False
    epochs: float = 0.0
    attention: str = ""  # the attention path (xstilts.models.packed.attention_path)
    optimizer: str = ""  # e.g. adamw-fused

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form plus derived rates."""
        out = asdict(self)
        out["padding_efficiency"] = (
            self.real_tokens / self.processed_tokens if self.processed_tokens else 1.0
        )
        out["tokens_per_second"] = self.real_tokens / self.seconds if self.seconds > 0 else 0.0
        return out


@dataclass
class _Counters:
    real_tokens: int = 0
    processed_tokens: int = 0
    examples: int = 0
    # Losses stay device tensors: a float() per micro-batch would synchronise the GPU.
    loss_sum: torch.Tensor | float = 0.0
    loss_steps: int = 0
    last_loss: torch.Tensor | float = 0.0
    step_loss: torch.Tensor | float = 0.0  # summed over the current step's micro-batches

    def mean_loss(self) -> float:
        """Mean micro-batch loss since the last reset (else the last loss)."""
        if self.loss_steps:
            return float(self.loss_sum) / self.loss_steps
        return float(self.last_loss)


def train(
    model: nn.Module,
    tasks: Sequence[TrainTask],
    cfg: TrainConfig,
    *,
    device: torch.device,
    progress: Callable[[Progress], None] | None = None,
    auxiliary: Any = None,
    checkpoint_dir: Path | None = None,
) -> TrainResult:
    """Train ``model`` on ``tasks`` (a mixture when several) and restore the best dev state.

    Args:
        model: An ``XstiltsModel`` holding every task's head (``model(batch, head) -> logits``).
        tasks: Tasks with featurized train and dev data.
        cfg: Hyper-parameters.
        device: Where to train.
        progress: Optional callback after each optimizer step (e.g. a rich progress bar).
        auxiliary: Optional extra objective with ``weight`` and ``loss(model, device)``
            (the MLM auxiliary of :mod:`xstilts.training.mlm`), added at every micro-batch.
        checkpoint_dir: Mid-stage checkpoints go (and are resumed from) here; ``None``: none.

    Returns:
        Steps, dev curve, best metric, token counts and timing.

    Raises:
        TrainingError: a non-finite loss (that step is not applied; checkpoints are kept).
        StageInterrupted: SIGTERM arrived (a checkpoint of the last finished step was written).
    """
    checkpointing.set_deterministic(cfg.deterministic)
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    freeze_parameters(model, cfg.freeze)  # before DDP and the optimizer see the parameters
    # Several processes: each trains a share of every batch, all resume from rank 0's checkpoint.
    par, checkpoint_dir = distributed.prepare(model, cfg.seed, checkpoint_dir)
    streams = [
        BatchStream(t.train_features, cfg.batch_size, cfg.max_tokens, seed=cfg.seed + 7919 * i)
        for i, t in enumerate(tasks)
    ]
    sampler = MixtureSampler(
        [len(t.train_features) for t in tasks], cfg.sampling, cfg.temperature, seed=cfg.seed
    )
    total_steps, eval_every = _plan_steps(tasks, cfg)
    sizes = {t.name: len(t.train_features) for t in tasks}
    result = TrainResult(
        steps=0, best_metric=None, best_step=None, curve=[], real_tokens=0, processed_tokens=0,
        seconds=0.0, examples_passes=0, train_examples=sizes,
    )  # fmt: skip
    if total_steps == 0:
        return result

    # embedding_update: sparse gives the word table its own row-wise AdamW (training.sparse_rows).
    rows = sparse_rows(model, cfg.embedding_update, cfg.weight_decay)
    optimizer = build_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay, device=device,
                                exclude=[rows.weight] if rows is not None else [])  # fmt: skip
    result.optimizer = optimizer_kind(optimizer) + (f" + {SPARSE_KIND}" if rows is not None else "")
    result.attention = training_attention(model, device, cfg.precision)
    scheduler = linear_schedule(optimizer, round(cfg.warmup_ratio * total_steps), total_steps)
    forward = torch.compile(model, dynamic=True) if cfg.compile else model
    best = BestState(cfg.patience)
    counters = _Counters()
    state = TrainState(model, optimizer, scheduler, streams, sampler, counters, best,
                       result.curve, total_steps, auxiliary, rows)  # fmt: skip
    saver = (
        checkpointing.Checkpointer(checkpoint_dir, cfg.keep_checkpoints) if checkpoint_dir else None
    )
    first = (state.resume(saver) if saver else 0) + 1
    result.steps = first - 1
    with checkpointing.sigterm_flag() as sigterm:
        for step in range(first, 1 if state.finished else total_steps + 1):
            checkpointing.kill_hook(f"step:{step}")
            for _ in range(cfg.grad_accum):
                t = sampler.next()
                idx, weight = par.split(streams[t].next())  # this rank's rows (maybe none)
                if idx:
                    batch = pack([tasks[t].train_features[i] for i in idx], cfg.padding_idx, idx)
                    _micro_step(forward, tasks[t], batch, cfg, device, counters, auxiliary, weight)
            par.sync_gradients(model, counters)
            _optimizer_step(model, optimizer, rows, scheduler, cfg, counters, step)
            result.steps = step
            metric = None
            if step % eval_every == 0 or step == total_steps:
                metric = par.on_main(_evaluate_dev, model, tasks, cfg, device, step, counters,
                                     result.curve)  # fmt: skip
                best.update(step, metric, model)
            # Reading the loss synchronises the GPU: report every ``log_every`` steps, not each one.
            if progress is not None and (
                step % cfg.log_every == 0 or metric is not None or step == total_steps
            ):
                progress(_progress(step, total_steps, counters, state.started, metric))
            state.stopped_early = best.should_stop and step < total_steps
            state.finished = best.should_stop or step == total_steps
            due = step % cfg.checkpoint_every == 0 if cfg.checkpoint_every else metric is not None
            if saver is not None and par.is_main and (due or state.finished or sigterm.requested):
                state.save(saver, step)
            if sigterm.requested:
                raise StageInterrupted(
                    f"SIGTERM at step {step}: checkpoint written", file=checkpoint_dir,
                    hint="run the experiment again to resume this stage",
                )  # fmt: skip
            if best.should_stop:
                break

    best.restore(model)
    result.seconds, result.stopped_early = state.seconds(), state.stopped_early
    result.best_metric, result.best_step = best.metric, best.step
    par.gather_counters(counters)
    result.real_tokens, result.processed_tokens = counters.real_tokens, counters.processed_tokens
    result.examples_passes = counters.examples
    result.epochs = counters.examples / max(sum(result.train_examples.values()), 1)
    return result


def _progress(
    step: int, total: int, counters: _Counters, start: float, metric: float | None
) -> Progress:
    """Snapshot for the progress callback (mean loss since the last evaluation)."""
    elapsed = max(time.perf_counter() - start, 1e-9)
    loss = counters.mean_loss()
    return Progress(step, total, counters.examples, counters.examples / elapsed, loss, metric)


def _plan_steps(tasks: Sequence[TrainTask], cfg: TrainConfig) -> tuple[int, int]:
    """(total optimizer steps, steps between dev evaluations).

    One epoch = as many micro-batches as one pass over every task's data takes.
    """
    if any(not t.train_features for t in tasks) or not tasks:
        empty = [t.name for t in tasks if not t.train_features]
        raise ValueError(f"no training features for tasks {empty}")
    micro = sum(
        len(make_batches(t.train_features, batch_size=cfg.batch_size, max_tokens=cfg.max_tokens))
        for t in tasks
    )
    steps_per_epoch = max(1, math.ceil(micro / cfg.grad_accum))
    by_epochs = math.ceil(cfg.epochs * steps_per_epoch)
    total = cfg.max_steps if cfg.max_steps is not None else by_epochs
    eval_every = cfg.eval_every or steps_per_epoch
    return total, max(1, eval_every)


def _micro_step(
    forward: Callable[..., torch.Tensor],
    task: TrainTask,
    batch: PackedBatch,
    cfg: TrainConfig,
    device: torch.device,
    counters: _Counters,
    auxiliary: Any,
    weight: float = 1.0,
) -> None:
    """Forward + backward of one micro-batch; loss x ``weight`` (rank's share) / grad_accum."""
    on_device = batch.to(device)
    with autocast_context(device, cfg.precision):
        logits = forward(on_device, task.head)
        loss = task.format.loss(logits, on_device)
        if auxiliary is not None:
            loss = loss + auxiliary.weight * auxiliary.loss(forward, device)
    (loss * weight / cfg.grad_accum).backward()
    counters.real_tokens += batch.num_tokens
    counters.processed_tokens += batch.num_sequences * batch.max_seqlen
    counters.examples += batch.num_features
    counters.last_loss = loss.detach()
    counters.step_loss = counters.step_loss + counters.last_loss
    counters.loss_sum = counters.loss_sum + counters.last_loss
    counters.loss_steps += 1


def _optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rows: SparseRowAdamW | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    counters: _Counters,
    step: int,
) -> None:
    """Check the loss is finite, clip, step (``rows``: the word table too), advance, clear."""
    # One device sync per step: a NaN must stop training before it reaches the weights.
    loss, counters.step_loss = float(counters.step_loss), 0.0
    if not math.isfinite(loss):
        raise TrainingError(
            f"training loss is {loss} at step {step}; stopped before applying it", step=step,
            hint="lower lr or check the data; the stage's last good checkpoint is kept",
        )  # fmt: skip
    if cfg.max_grad_norm and cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    if rows is not None:
        rows.step_like(optimizer)  # at this step's lr: before the schedule advances
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _evaluate_dev(
    model: nn.Module,
    tasks: Sequence[TrainTask],
    cfg: TrainConfig,
    device: torch.device,
    step: int,
    counters: _Counters,
    curve: list[dict[str, Any]],
) -> float | None:
    """Selection metric on the English dev sets (mean over tasks); appends to ``curve``."""
    settings = EvalSettings(max_tokens=cfg.eval_max_tokens, precision=cfg.precision)
    per_task: dict[str, float] = {}
    for task in tasks:
        if not task.dev_features:
            continue
        featurized = {task.spec.train_language: (task.dev_examples, task.dev_features)}
        results = evaluate_featurized(
            model, task.spec, task.head, featurized, task.featurize, settings, device,
            padding_idx=cfg.padding_idx,
        )  # fmt: skip
        scores, _ = results[task.spec.train_language]
        name = selection_metric(task.spec)
        # An unlabelled dev set (TyDiQA-GoldP dev as XTREME distributes it) scores as {}:
        # it cannot select a checkpoint, so this task does not vote.
        if name in scores:
            per_task[task.name] = float(scores[name])
    metric = sum(per_task.values()) / len(per_task) if per_task else None
    loss = counters.mean_loss()
    curve.append({"step": step, "metric": metric, "per_task": per_task, "train_loss": loss})
    counters.last_loss, counters.loss_sum, counters.loss_steps = loss, 0.0, 0  # progress shows it
    return metric
