"""The Hugging Face ``Trainer`` baselines of the training benchmark.

* ``hf_default``: what transformers' ``examples/pytorch/text-classification/run_xnli.py`` does
  by default: ``XLMRobertaForSequenceClassification``, every example padded to ``max_length``
  (``pad_to_max_length=True`` + ``default_data_collator``), fp32, ``optim="adamw_torch"``, random
  sampling, ``TrainingArguments`` defaults otherwise.
* ``hf_best``: the same Trainer with its best speed flags: bf16 on CUDA,
  ``attn_implementation="sdpa"``, length-grouped sampling (``group_by_length`` /
  ``train_sampling_strategy="group_by_length"``), ``optim="adamw_torch_fused"`` on CUDA,
  dynamic padding (to a multiple of 8 on CUDA) and no per-step NaN/inf loss check (that check
  synchronises the GPU every step).

Timing: an untimed Trainer first trains the model on warm-up examples; then a fresh Trainer (same
model) trains one epoch over the timed examples, and a :class:`~transformers.TrainerCallback`
marks ``on_train_begin`` and the end of the last step (GPU synchronised only there). Tokens are
counted by the collator.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import (
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

from bench_common import Example, Stopwatch

PAD_ID = 1


def build_hf_model(config: XLMRobertaConfig, seed: int) -> XLMRobertaForSequenceClassification:
    """A random XLM-R classifier, identical for identical ``(config, seed)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return XLMRobertaForSequenceClassification(config)


@dataclass
class Collator:
    """Pads a batch (to ``fixed_length`` or the batch max) and records its token counts.

    Attributes:
        fixed_length: Pad every batch to this length (``None``: dynamic padding).
        multiple_of: Round the dynamic length up to a multiple of this.
        real: Real tokens per batch, in the order batches were collated.
        padded: Tokens processed (``S * T``) per batch.
        seq_lens: Real sequence lengths per batch (for the FLOPs count).
    """

    fixed_length: int | None = None
    multiple_of: int = 1
    real: list[int] = field(default_factory=list)
    padded: list[int] = field(default_factory=list)
    seq_lens: list[list[int]] = field(default_factory=list)

    def __call__(self, records: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lens = [len(r["input_ids"]) for r in records]
        width = self.fixed_length or -(-max(lens) // self.multiple_of) * self.multiple_of
        ids = torch.full((len(records), width), PAD_ID, dtype=torch.long)  # [S, T]
        mask = torch.zeros((len(records), width), dtype=torch.long)  # [S, T]
        for row, rec in enumerate(records):
            n = len(rec["input_ids"])
            ids[row, :n] = torch.tensor(rec["input_ids"])
            mask[row, :n] = 1
        self.real.append(sum(lens))
        self.padded.append(ids.numel())
        self.seq_lens.append(lens)
        labels = torch.tensor([r["labels"] for r in records], dtype=torch.long)  # [S]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class _StepCallback(TrainerCallback):
    """Forwards ``on_step_end`` to a :class:`Stopwatch`."""

    def __init__(self, stopwatch: Stopwatch) -> None:
        self.stopwatch = stopwatch

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stopwatch.step_done(0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stopwatch.step_done(state.global_step)


class _LossRecordingTrainer(Trainer):
    """A Trainer that keeps every micro-batch loss (as a tensor: no GPU sync per step)."""

    losses: list[torch.Tensor]
    sequential: bool = False

    def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().compute_loss(model, inputs, *args, **kwargs)
        loss = out[0] if isinstance(out, tuple) else out
        self.losses.append(loss.detach())
        return out

    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
        # The same-loss check feeds batches in a given order (one sampler API, both versions).
        if self.sequential:
            return SequentialSampler(self.train_dataset)
        return super()._get_train_sampler(*args, **kwargs)


@dataclass
class HFRunResult:
    """Timing and token counts of one Trainer run."""

    seconds: float
    real_tokens: int
    padded_tokens: int
    seq_lens: list[int]
    losses: list[float]
    attn_implementation: str


def _length_grouping_kwargs() -> dict[str, Any]:
    """``group_by_length=True`` under its name in the installed transformers version."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:  # transformers >= 5.2x
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def training_arguments(
    mode: str, device: torch.device, out_dir: str, batch_size: int, max_steps: int,
    lr: float, weight_decay: float, seed: int,
) -> TrainingArguments:  # fmt: skip
    """``TrainingArguments`` of ``hf_default`` or ``hf_best`` (module doc); ``hf_check`` is
    ``hf_best`` in fp32 with sequential order (the same-loss check)."""
    cuda = device.type == "cuda"
    common: dict[str, Any] = {
        "output_dir": out_dir, "per_device_train_batch_size": batch_size,
        "max_steps": max_steps, "seed": seed, "report_to": "none", "save_strategy": "no",
        "logging_strategy": "no", "disable_tqdm": True, "use_cpu": not cuda,
        "dataloader_num_workers": 0, "remove_unused_columns": False,
    }  # fmt: skip
    if mode == "hf_default":
        return TrainingArguments(**common, optim="adamw_torch")
    best: dict[str, Any] = {
        "learning_rate": lr, "weight_decay": weight_decay, "warmup_steps": 0,
        "lr_scheduler_type": "linear", "max_grad_norm": 1.0, "logging_nan_inf_filter": False,
        "optim": "adamw_torch_fused" if cuda else "adamw_torch",
    }  # fmt: skip
    if mode == "hf_best":
        return TrainingArguments(**common, **best, bf16=cuda, **_length_grouping_kwargs())
    return TrainingArguments(**common, **best)  # hf_check: fp32, order set by the sampler


def run_hf(
    mode: str,
    config: XLMRobertaConfig,
    examples: Sequence[Example],
    *,
    device: torch.device,
    batch_size: int,
    max_length: int,
    warmup_examples: Sequence[Example] = (),
    lr: float = 2e-5,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> HFRunResult:
    """One timed Trainer epoch over ``examples`` (after an untimed one over ``warmup_examples``).

    Args:
        mode: ``hf_default``, ``hf_best`` or ``hf_check`` (examples used in the given order).
        config: Model config (``attn_implementation`` is forced to sdpa except in hf_default).
        examples: The timed training set, a multiple of ``batch_size`` (one pass). Its size
            matters: the length-grouping sampler uses megabatches of ``min(n / 4, 50)`` batches.
        device: Where to train.
        batch_size: Examples per step.
        max_length: ``hf_default`` pads every example to this length.
        warmup_examples: Trained first by a separate, untimed Trainer on the same model (CUDA
            context, kernels, allocator); empty = no warm-up.
        lr: Learning rate (hf_best / hf_check; hf_default keeps the Trainer default).
        weight_decay: Weight decay (same).
        seed: Model initialisation and Trainer seed.
    """
    if mode != "hf_default":
        config = XLMRobertaConfig.from_dict({**config.to_dict(), "attn_implementation": "sdpa"})
    model = build_hf_model(config, seed)
    if len(warmup_examples) >= batch_size:
        _train(mode, model, warmup_examples, device, batch_size, max_length, lr, weight_decay, seed)
    trainer, collator, stopwatch = _train(
        mode, model, examples, device, batch_size, max_length, lr, weight_decay, seed
    )
    return HFRunResult(
        seconds=stopwatch.seconds,
        real_tokens=sum(collator.real),
        padded_tokens=sum(collator.padded),
        seq_lens=[n for lens in collator.seq_lens for n in lens],
        losses=[float(x) for x in trainer.losses],
        attn_implementation=str(model.config._attn_implementation),
    )


def _train(
    mode: str, model: XLMRobertaForSequenceClassification, examples: Sequence[Example],
    device: torch.device, batch_size: int, max_length: int, lr: float, weight_decay: float,
    seed: int,
) -> tuple[_LossRecordingTrainer, Collator, Stopwatch]:  # fmt: skip
    """One Trainer pass over ``examples``, timed from ``on_train_begin`` to the last step."""
    steps = len(examples) // batch_size
    if steps < 1 or steps * batch_size != len(examples):
        raise ValueError(f"need a positive multiple of {batch_size} examples, got {len(examples)}")
    records = [{"input_ids": ex.ids, "labels": ex.label} for ex in examples]
    collator = (
        Collator(fixed_length=max_length)
        if mode == "hf_default"
        else Collator(multiple_of=8 if device.type == "cuda" else 1)
    )
    stopwatch = Stopwatch(device, 0, steps)
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(mode, device, tmp, batch_size, steps, lr, weight_decay, seed)
        trainer = _LossRecordingTrainer(
            model=model, args=args, train_dataset=records, data_collator=collator,
            callbacks=[_StepCallback(stopwatch)],
        )  # fmt: skip
        # PrinterCallback would print the final metrics dict of every run.
        trainer.remove_callback(PrinterCallback)
        trainer.losses = []
        trainer.sequential = mode == "hf_check"
        trainer.train()
    return trainer, collator, stopwatch
