"""The xstilts rows of the training benchmark: the real training loop, as a stage runs it.

Every xstilts row calls :func:`xstilts.training.loop.train` (packed batches from its own
length-grouped ``BatchStream``, ``XstiltsModel`` + classification head, fused AdamW, bf16
autocast on CUDA, one loss check per step), so the figures are what a stage gets, per-step
overheads included. Modes:

* ``xstilts``: the stage defaults;
* ``xstilts_compile``: ``train.compile: true`` (``torch.compile(model, dynamic=True)``);
* ``xstilts_freeze``: ``train.freeze: [embeddings]`` (no gradient, no AdamW update for the
  embedding layer; a different training recipe, so its accuracy cost is a separate question);
* ``xstilts_freeze_half``: ``train.freeze: [embeddings, layers.0-(L/2-1)]`` (the lower half of
  the layers too: no backward pass below the middle; again a different recipe);
* ``xstilts_sparse``: ``train.embedding_update: sparse`` (every parameter trained; the word
  table gets the row-wise AdamW of :mod:`xstilts.training.sparse_rows`, not the dense step);
* ``xstilts_varlen``: the model with attention-probability dropout 0, so that training can take
  the ``torch-varlen`` attention path on CUDA (``varlen_attn`` has no dropout); also a different
  recipe from the HF rows, which keep XLM-R's attention dropout of 0.1.

Timing uses global optimizer step hooks (``torch.optim.optimizer``), so the loop itself is run
unchanged: the stopwatch marks the end of step ``warmup_steps`` and of the last step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from transformers import XLMRobertaConfig

import bench_common as bc
from hf_baselines import build_hf_model
from xstilts.models.model import XstiltsModel
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.tasks.formats.classification import FORMAT
from xstilts.tasks.spec import SplitSource, TaskSpec
from xstilts.training import loop
from xstilts.training.batching import make_batches

HEAD = "cls"
MODES = (
    "xstilts", "xstilts_compile", "xstilts_freeze", "xstilts_freeze_half", "xstilts_sparse",
    "xstilts_varlen",
)  # fmt: skip


def _spec() -> TaskSpec:
    labels = tuple(str(i) for i in range(bc.NUM_LABELS))
    return TaskSpec(
        name="bench", type="classification", version="1", splits={"train": SplitSource("x")},
        labels=labels,
    )  # fmt: skip


def build_xstilts_model(
    config: XLMRobertaConfig, seed: int, device: torch.device | str = "cpu"
) -> XstiltsModel:
    """The xstilts model with the exact initial weights of :func:`build_hf_model`."""
    hf = build_hf_model(config, seed, device)
    head = FORMAT.make_head(_spec(), config.hidden_size, None).to(device)
    head.load_state_dict(hf.classifier.state_dict())
    # ClassificationHead's dropout is fixed at 0.1; follow the config (0 in the loss check).
    head.dropout.p = config.hidden_dropout_prob
    return XstiltsModel(hf.roberta, {HEAD: head})


def xstilts_batches(features: Sequence[dict[str, Any]], batch_size: int, seed: int) -> list:
    """The batches ``loop.train`` forms in its first epoch (its ``BatchStream`` of task 0)."""
    return make_batches(features, batch_size=batch_size, shuffle=True, seed=seed, epoch=0)


class _LossRecorder:
    """The classification task format, keeping each micro-batch loss (a tensor: no sync)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def loss(self, logits: torch.Tensor, batch: Any) -> torch.Tensor:
        out = FORMAT.loss(logits, batch)
        self.losses.append(out.detach())
        return out


def _freeze(mode: str, layers: int) -> tuple[str, ...]:
    """``train.freeze`` of a mode: embeddings, plus the lower half of the layers for ``_half``."""
    if mode == "xstilts_freeze":
        return ("embeddings",)
    if mode == "xstilts_freeze_half":
        return ("embeddings", f"layers.0-{layers // 2 - 1}")
    return ()


@dataclass
class XstiltsRunResult:
    """Timing and token counts of the timed steps of one xstilts run."""

    seconds: float
    cpu_seconds: float
    steps: int
    real_tokens: int
    padded_tokens: int
    seq_lens: list[int]
    losses: list[float]
    notes: str


def run_xstilts(
    mode: str,
    config: XLMRobertaConfig,
    examples: Sequence[bc.Example],
    *,
    device: torch.device,
    batch_size: int,
    warmup_steps: int,
    precision: str = "auto",
    lr: float = 2e-5,
    weight_decay: float = 0.01,
    seed: int = 0,
    grad_hook: Callable[[int, XstiltsModel], None] | None = None,
) -> XstiltsRunResult:
    """One epoch of ``loop.train`` over ``examples``; steps after ``warmup_steps`` are timed.

    Args:
        mode: One of :data:`MODES`.
        config: Model config.
        examples: The training set (one pass, length-grouped batches).
        device: Where to train.
        batch_size: Maximum examples per batch.
        warmup_steps: Untimed steps first.
        precision: ``auto`` (bf16 autocast on CUDA), ``bf16`` (also on CPU) or ``fp32``.
        lr: Peak learning rate (linear decay to 0, no warm-up, as the Trainer rows).
        weight_decay: AdamW weight decay.
        seed: Initialisation and batch-order seed.
        grad_hook: Called as ``hook(step, model)`` before each optimizer step (after clipping).
    """
    if mode not in MODES:
        raise ValueError(f"unknown xstilts mode {mode!r}")
    if mode == "xstilts_varlen":
        config = XLMRobertaConfig.from_dict({**config.to_dict(), "attention_probs_dropout_prob": 0})
    model = build_xstilts_model(config, seed, device)
    features = bc.features_of(examples)
    batches = xstilts_batches(features, batch_size, seed)
    if len(batches) <= warmup_steps:
        raise ValueError(f"{len(batches)} batches: not more than the {warmup_steps} warm-up steps")
    cfg = loop.TrainConfig(
        lr=lr, weight_decay=weight_decay, warmup_ratio=0.0, max_steps=len(batches),
        batch_size=batch_size, max_grad_norm=1.0, precision=precision,
        compile=mode == "xstilts_compile", seed=seed, padding_idx=model.padding_idx,
        log_every=10**9, freeze=_freeze(mode, config.num_hidden_layers),
        embedding_update="sparse" if mode == "xstilts_sparse" else "dense",
    )  # fmt: skip
    recorder = _LossRecorder()
    task = loop.TrainTask("bench", _spec(), HEAD, recorder, features, [], [], FeaturizeConfig())
    stopwatch = bc.Stopwatch(device, warmup_steps, len(batches))
    done = [0]

    def after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        done[0] += 1
        stopwatch.step_done(done[0])

    def before_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        if grad_hook is not None:
            grad_hook(done[0] + 1, model)

    stopwatch.step_done(0)
    handles = [register_optimizer_step_post_hook(after_step)]
    handles.append(register_optimizer_step_pre_hook(before_step))
    try:
        result = loop.train(model, [task], cfg, device=device)
    finally:
        for handle in handles:
            handle.remove()
    if result.steps != len(batches):
        raise RuntimeError(f"loop.train ran {result.steps} steps, expected {len(batches)}")
    timed = batches[warmup_steps:]
    lens = [[len(features[i]["sequences"][0]) for i in b] for b in timed]
    real = sum(sum(x) for x in lens)
    # Varlen kernels attend over exactly the real tokens; SDPA over the [S, T] view.
    unpadded = result.attention in ("torch-varlen", "flash-attn-varlen")
    notes = f"{result.attention}, {result.optimizer}"
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        notes += ", bf16 autocast"
    if cfg.compile:
        notes += ", compiled"
    if cfg.freeze:
        notes += ", frozen " + " + ".join(cfg.freeze)
    if mode == "xstilts_varlen":
        notes += ", attention dropout 0"
    return XstiltsRunResult(
        seconds=stopwatch.seconds,
        cpu_seconds=stopwatch.cpu_seconds,
        steps=len(timed),
        real_tokens=real,
        padded_tokens=real if unpadded else sum(len(x) * max(x) for x in lens),
        seq_lens=[n for x in lens for n in x],
        losses=[float(x) for x in recorder.losses],
        notes=notes,
    )
