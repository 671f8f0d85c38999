"""The Hugging Face ``Trainer`` baselines of the training benchmark.

* ``hf_default``: what transformers' ``examples/pytorch/text-classification/run_xnli.py`` does
  by default: ``XLMRobertaForSequenceClassification``, every example padded to ``max_length``
  (``pad_to_max_length=True`` + ``default_data_collator``), fp32, random sampling, and
  ``TrainingArguments`` defaults otherwise (the optimizer is the installed version's default:
  ``adamw_torch_fused`` with torch >= 2.8 in transformers 5.x; each row records it).
* ``hf_best``: the same Trainer with its best speed flags for the device: bf16 and TF32 on CUDA
  (bf16 on a CPU too with ``--precision bf16``, for CPUs with native bf16: AMX / AVX512-BF16),
  ``attn_implementation="sdpa"``, ``optim="adamw_torch_fused"`` (CUDA and CPU), dynamic padding
  (to a multiple of 8 on CUDA), no per-step NaN/inf loss check (it synchronises the GPU), and
  length grouping by HF's own ``get_length_grouped_indices`` with a lookahead (megabatch) of
  :data:`~xstilts.training.batching.MEGABATCH_BATCHES` batches, xstilts' sort window. (Stock
  ``group_by_length`` uses ``min(n / (4 x batch), 50)`` batches: only 2-7 batches on short runs.)
* ``hf_compile``: ``hf_best`` plus ``torch_compile=True``.
* ``hf_same``: ``hf_best`` fed xstilts' exact batches in xstilts' order (a sequential sampler
  over the examples laid out batch by batch): the control row that isolates model and optimizer
  speed from batching.
* ``hf_check``: ``hf_same`` in fp32 (the same-loss and same-gradient check).

Timing: one Trainer epoch over all examples; a :class:`~bench_common.Stopwatch` marks the end
of step ``warmup_steps`` and of the last step, so Trainer set-up, the first (compiling,
allocating) steps and the end of training are outside the timed span. Tokens are counted by the
collator, batch by batch, so the timed steps' real tokens are known exactly.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Sampler
from transformers import (
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)
from transformers.trainer_pt_utils import get_length_grouped_indices

from bench_common import Example, Stopwatch
from xstilts.training.batching import MEGABATCH_BATCHES

PAD_ID = 1
MODES = ("hf_default", "hf_best", "hf_compile", "hf_same", "hf_check")


@functools.cache
def _initial_state(config_json: str, seed: int) -> dict[str, torch.Tensor]:
    """The random initial weights of ``(config, seed)``, built once per process on the CPU."""
    config = XLMRobertaConfig.from_dict(json.loads(config_json))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XLMRobertaForSequenceClassification(config)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def build_hf_model(
    config: XLMRobertaConfig, seed: int, device: torch.device | str = "cpu"
) -> XLMRobertaForSequenceClassification:
    """A random XLM-R classifier on ``device``, identical for identical ``(config, seed)``.

    The weights are drawn once on the CPU (device-independent) and copied into a model built
    directly on ``device`` (fast there), so every method and repetition starts from them.
    """
    # Dropout changes no weight: one initialisation serves every dropout setting.
    shape = {**config.to_dict(), "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    state = _initial_state(XLMRobertaConfig.from_dict(shape).to_json_string(), seed)
    with torch.device(device), torch.random.fork_rng(devices=[]):
        model = XLMRobertaForSequenceClassification(config)
    model.load_state_dict(state)
    return model


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


class _FixedOrder(Sampler[int]):
    """Yields a precomputed index order (length grouping or xstilts' batch order)."""

    def __init__(self, order: Sequence[int]) -> None:
        self.order = list(order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class _StepCallback(TrainerCallback):
    """Marks steps on a :class:`Stopwatch`; optionally hands gradients to ``grad_hook``."""

    def __init__(
        self, stopwatch: Stopwatch, model: Any, grad_hook: Callable[[int, Any], None] | None
    ) -> None:
        self.stopwatch, self.model, self.grad_hook = stopwatch, model, grad_hook

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stopwatch.step_done(0)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # After clipping, before the update: the gradients the optimizer is about to apply.
        if self.grad_hook is not None:
            self.grad_hook(state.global_step + 1, self.model)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.stopwatch.step_done(state.global_step)


class _RecordingTrainer(Trainer):
    """A Trainer that keeps every micro-batch loss (as a tensor: no GPU sync per step) and
    samples in a given order when ``order`` is set."""

    losses: list[torch.Tensor]
    order: Sequence[int] | None = None

    def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().compute_loss(model, inputs, *args, **kwargs)
        loss = out[0] if isinstance(out, tuple) else out
        self.losses.append(loss.detach())
        return out

    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
        # One override for both sampler APIs (transformers 4.x and 5.x).
        if self.order is not None:
            return _FixedOrder(self.order)
        return super()._get_train_sampler(*args, **kwargs)


@dataclass
class HFRunResult:
    """Timing and token counts of the timed steps of one Trainer run."""

    seconds: float
    cpu_seconds: float
    steps: int
    real_tokens: int
    padded_tokens: int
    seq_lens: list[int]
    losses: list[float]
    notes: str


def length_grouped_order(
    examples: Sequence[Example], batch_size: int, seed: int, megabatch: int = MEGABATCH_BATCHES
) -> list[int]:
    """HF's ``get_length_grouped_indices`` with a ``megabatch``-batch lookahead."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ex.ids) for ex in examples]
    return list(get_length_grouped_indices(lengths, batch_size, megabatch, generator))


def training_arguments(
    mode: str, device: torch.device, out_dir: str, batch_size: int, max_steps: int,
    lr: float, weight_decay: float, seed: int, bf16: bool | None = None,
) -> TrainingArguments:  # fmt: skip
    """``TrainingArguments`` of a mode (module doc); ``bf16=None``: bf16 on CUDA only."""
    cuda = device.type == "cuda"
    common: dict[str, Any] = {
        "output_dir": out_dir, "per_device_train_batch_size": batch_size,
        "max_steps": max_steps, "seed": seed, "report_to": "none", "save_strategy": "no",
        "logging_strategy": "no", "disable_tqdm": True, "use_cpu": not cuda,
        "dataloader_num_workers": 0, "remove_unused_columns": False,
    }  # fmt: skip
    if mode == "hf_default":
        return TrainingArguments(**common)
    best: dict[str, Any] = {
        "learning_rate": lr, "weight_decay": weight_decay, "warmup_steps": 0,
        "lr_scheduler_type": "linear", "max_grad_norm": 1.0, "logging_nan_inf_filter": False,
        "optim": "adamw_torch_fused",
    }  # fmt: skip
    if mode == "hf_check":
        return TrainingArguments(**common, **best)  # fp32; order set by the sampler
    if cuda:
        best.update(tf32=True)
    # A CPU with native bf16 (AMX / AVX512-BF16): a knowledgeable user passes --bf16 there too.
    best.update(bf16=cuda if bf16 is None else bf16)
    return TrainingArguments(**common, **best, torch_compile=mode == "hf_compile")


def run_hf(
    mode: str,
    config: XLMRobertaConfig,
    examples: Sequence[Example],
    *,
    device: torch.device,
    batch_size: int,
    max_length: int,
    warmup_steps: int,
    order: Sequence[int] | None = None,
    lr: float = 2e-5,
    weight_decay: float = 0.01,
    seed: int = 0,
    grad_hook: Callable[[int, Any], None] | None = None,
    bf16: bool | None = None,
) -> HFRunResult:
    """One Trainer epoch over ``examples``; the steps after ``warmup_steps`` are timed.

    Args:
        mode: One of :data:`MODES`.
        config: Model config (``attn_implementation`` is forced to sdpa except in hf_default).
        examples: The training set, a multiple of ``batch_size`` (one pass).
        device: Where to train.
        batch_size: Examples per step.
        max_length: ``hf_default`` pads every example to this length.
        warmup_steps: Untimed steps first (kernels, allocator, ``torch.compile``).
        order: Example order for ``hf_same``/``hf_check`` (xstilts' batches, flattened).
        lr: Learning rate (not hf_default, which keeps the Trainer default).
        weight_decay: Weight decay (same).
        seed: Model initialisation and Trainer seed.
        grad_hook: Called as ``hook(step, model)`` before each optimizer step (gradient check).
        bf16: bf16 autocast (not hf_default or hf_check); ``None``: on CUDA only.
    """
    if mode not in MODES:
        raise ValueError(f"unknown Trainer mode {mode!r}")
    if mode != "hf_default":
        config = XLMRobertaConfig.from_dict({**config.to_dict(), "attn_implementation": "sdpa"})
    model = build_hf_model(config, seed, device)
    steps = len(examples) // batch_size
    if steps <= warmup_steps or steps * batch_size != len(examples):
        raise ValueError(f"need a multiple of {batch_size} examples, more than the warm-up")
    if mode in ("hf_best", "hf_compile"):
        order = length_grouped_order(examples, batch_size, seed)
    elif mode in ("hf_same", "hf_check") and order is None:
        raise ValueError(f"{mode} needs the example order of xstilts' batches")
    records = [{"input_ids": ex.ids, "labels": ex.label} for ex in examples]
    collator = (
        Collator(fixed_length=max_length)
        if mode == "hf_default"
        else Collator(multiple_of=8 if device.type == "cuda" else 1)
    )
    stopwatch = Stopwatch(device, warmup_steps, steps)
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(
            mode, device, tmp, batch_size, steps, lr, weight_decay, seed, bf16=bf16
        )
        trainer = _RecordingTrainer(
            model=model, args=args, train_dataset=records, data_collator=collator,
            callbacks=[_StepCallback(stopwatch, model, grad_hook)],
        )  # fmt: skip
        # PrinterCallback would print the final metrics dict of every run.
        trainer.remove_callback(PrinterCallback)
        trainer.losses = []
        trainer.order = None if mode == "hf_default" else order
        trainer.train()
    timed = slice(warmup_steps, steps)
    notes = f"{model.config._attn_implementation}, {_optimizer_name(trainer)}"
    if args.bf16:
        notes += ", bf16"
    if mode == "hf_compile":
        notes += ", torch_compile"
    return HFRunResult(
        seconds=stopwatch.seconds,
        cpu_seconds=stopwatch.cpu_seconds,
        steps=steps - warmup_steps,
        real_tokens=sum(collator.real[timed]),
        padded_tokens=sum(collator.padded[timed]),
        seq_lens=[n for lens in collator.seq_lens[timed] for n in lens],
        losses=[float(x) for x in trainer.losses],
        notes=notes,
    )


def _optimizer_name(trainer: Trainer) -> str:
    """``optim`` as the Trainer resolved it (e.g. ``adamw_torch_fused``)."""
    optim = trainer.args.optim
    return str(getattr(optim, "value", optim))
