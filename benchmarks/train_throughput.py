"""Benchmark: xstilts training throughput vs the Hugging Face Trainer, on real length distributions.

For each length distribution (``nli``: MNLI pairs, max 128; ``squad``: question + context
windows, max 384; see :mod:`lengths`), ``--steps x --batch-size`` synthetic examples (real
lengths, random ids) are trained for one timed epoch, after an untimed warm-up epoch on
``--warmup x --batch-size`` other examples of the same distribution, by:

(a) ``hf_default``: the Trainer as ``run_xnli.py`` runs it (padding to max_length, fp32);
(b) ``hf_best``: the Trainer with its best flags (bf16, sdpa, length grouping, fused AdamW,
    dynamic padding); see :mod:`hf_baselines`;
(c) ``xstilts``: packed unpadded batches (:func:`xstilts.batch.pack`), length-grouped
    :func:`~xstilts.training.batching.make_batches`, ``XstiltsModel`` + classification head,
    :func:`~xstilts.training.optim.build_optimizer` (fused AdamW on CUDA), bf16 autocast on CUDA,
    optional ``--compile``.

All three start from the same random weights and train on exactly the same examples, so they
process the same real tokens (xstilts may form a few more, smaller batches). Reported per
method: real (non-padding) tokens/s over the timed epoch, padding fraction (share of processed
positions that are padding), MFU (formula in :mod:`bench_common`), peak memory, and the ratios
(c)/(a), (c)/(b). A same-loss check trains (c) and the Trainer with (b)'s settings in fp32,
dropout off, on identical batches in identical order (a sequential sampler over the examples
laid out in xstilts' batch order, since the Trainer's own length grouping orders differently),
and reports the largest loss difference.

GPU (XLM-R Large shape, random init)::

    PYTHONPATH=src python benchmarks/train_throughput.py --device cuda --config large --steps 30

CPU (small config; figures for harness correctness, not speed)::

    PYTHONPATH=src python benchmarks/train_throughput.py --device cpu --config small --steps 8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import bench_common as bc
import lengths as lengths_mod
from hf_baselines import build_hf_model, run_hf
from xstilts.batch import pack
from xstilts.models.model import XstiltsModel
from xstilts.models.packed import attention_path
from xstilts.tasks.formats.classification import FORMAT
from xstilts.training.batching import make_batches
from xstilts.training.evaluate import autocast_context
from xstilts.training.optim import build_optimizer, linear_schedule

HEAD = "cls"
METHODS = ("hf_default", "hf_best", "xstilts")
FOOTNOTE = (
    "MFU = useful FLOPs / s / peak; FLOPs = 6 N_enc T + 6 N_head S + 12 L H sum(len^2) (see"
    " benchmarks/bench_common.py); padding fraction = 1 - real / (S x T) over the timed epoch"
    " (xstilts: S x T of the attention view; with FlashAttention varlen nothing is padded);"
    " CPU peak memory = growth of ru_maxrss (lower bound: 0 when an earlier run went higher)."
)


@dataclass
class Row:
    """One method on one distribution."""

    distribution: str
    method: str
    seconds: float
    real_tokens: int
    padded_tokens: int
    tokens_per_second: float
    padding_fraction: float
    mfu: float | None
    peak_memory_mib: float
    notes: str = ""


def build_xstilts_model(config: Any, seed: int) -> XstiltsModel:
    """The xstilts model with the exact initial weights of :func:`build_hf_model`."""
    hf = build_hf_model(config, seed)
    head = FORMAT.make_head(_spec_stub(), config.hidden_size, None)
    head.load_state_dict(hf.classifier.state_dict())
    # ClassificationHead's dropout is fixed at 0.1; follow the config (0 in the loss check).
    head.dropout.p = config.hidden_dropout_prob
    return XstiltsModel(hf.roberta, {HEAD: head})


def _spec_stub() -> Any:
    """The one thing ``FORMAT.make_head`` reads from a TaskSpec: its labels."""
    return type("Spec", (), {"labels": tuple(range(bc.NUM_LABELS))})()


@dataclass
class XstiltsRun:
    """Timing and token counts of one xstilts run."""

    seconds: float
    real_tokens: int
    padded_tokens: int
    seq_lens: list[int]
    losses: list[float]
    attn_implementation: str


def run_xstilts(
    config: Any,
    examples: Sequence[bc.Example],
    *,
    device: torch.device,
    batch_size: int,
    warmup_examples: Sequence[bc.Example] = (),
    precision: str = "auto",
    compile_model: bool = False,
    batches: list[list[int]] | None = None,
    lr: float = 2e-5,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> XstiltsRun:
    """One timed epoch over ``examples`` (after an untimed one over ``warmup_examples``).

    Args:
        config: Model config.
        examples: The timed training set (length-grouped batches, one pass).
        device: Where to train.
        batch_size: Maximum examples per batch.
        warmup_examples: Trained first, untimed, on the same model (kernels, allocator,
            ``torch.compile`` graphs); empty = no warm-up.
        precision: ``auto`` (bf16 autocast on CUDA) or ``fp32``.
        compile_model: ``torch.compile(model, dynamic=True)``.
        batches: Batch order to use (default: ``make_batches(shuffle=True, seed=seed)``).
        lr: Learning rate (linear decay to 0, no warm-up: same as the Trainer runs).
        weight_decay: AdamW weight decay (not on biases and LayerNorms).
        seed: Model initialisation and batch order seed.
    """
    model = build_xstilts_model(config, seed).to(device).train()
    forward = torch.compile(model, dynamic=True) if compile_model else model
    opts = {"lr": lr, "weight_decay": weight_decay, "precision": precision, "seed": seed}
    if warmup_examples:
        _epoch(model, forward, warmup_examples, None, device, batch_size, **opts)
    return _epoch(model, forward, examples, batches, device, batch_size, **opts)


def _epoch(
    model: XstiltsModel, forward: Any, examples: Sequence[bc.Example],
    batches: list[list[int]] | None, device: torch.device, batch_size: int, *, lr: float,
    weight_decay: float, precision: str, seed: int,
) -> XstiltsRun:  # fmt: skip
    """One pass with a fresh optimizer, timed from before the first step to after the last."""
    features = bc.features_of(examples)
    if batches is None:
        batches = make_batches(features, batch_size=batch_size, shuffle=True, seed=seed)
    optimizer = build_optimizer(model, lr=lr, weight_decay=weight_decay, device=device)
    scheduler = linear_schedule(optimizer, 0, len(batches))
    stopwatch = bc.Stopwatch(device, 0, len(batches))
    losses: list[torch.Tensor] = []
    real = padded = 0
    stopwatch.step_done(0)
    for step, idx in enumerate(batches, start=1):
        batch = pack([features[i] for i in idx], model.padding_idx, idx).to(device)
        with autocast_context(device, precision):
            loss = FORMAT.loss(forward(batch, HEAD), batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        real += batch.num_tokens
        # Attention works on the [S, T] view (SDPA) or exactly N tokens (FlashAttention).
        padded += batch.num_sequences * batch.max_seqlen
        stopwatch.step_done(step)
    seq_lens = [len(f["sequences"][0]) for f in features]
    attention = "packed+flash-varlen" if _uses_flash(device, precision) else "packed+sdpa"
    return XstiltsRun(
        stopwatch.seconds, real, padded, seq_lens, [float(x) for x in losses], attention
    )


def _uses_flash(device: torch.device, precision: str) -> bool:
    """Whether :func:`~xstilts.models.packed.encode_packed` takes the FlashAttention path."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return device.type == "cuda" and bf16 and _flash_varlen() is not None


def same_loss_check(
    config_name: str, lengths: Sequence[int], device: torch.device, steps: int, batch_size: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Train the Trainer (hf_best settings, fp32) and xstilts on identical batches; compare.

    Returns:
        ``{"steps", "hf_losses", "xstilts_losses", "max_abs_diff", "max_rel_diff", "order"}``.
    """
    config = bc.model_config(config_name, dropout=0.0)
    examples = bc.synthetic_examples(lengths, steps * batch_size, config.vocab_size, seed + 1)
    # One megabatch and a multiple of batch_size examples: every batch is full, so the
    # Trainer's sequential batches of batch_size are exactly xstilts' batches.
    batches = make_batches(bc.features_of(examples), batch_size=batch_size, seed=seed)
    assert all(len(b) == batch_size for b in batches), "loss check needs full batches"
    ordered = [examples[i] for b in batches for i in b]
    hf = run_hf(
        "hf_check", config, ordered, device=device, batch_size=batch_size, max_length=0,
        seed=seed,
    )  # fmt: skip
    xs = run_xstilts(
        config, examples, device=device, batch_size=batch_size, precision="fp32",
        batches=batches, seed=seed,
    )  # fmt: skip
    diffs = [abs(a - b) for a, b in zip(hf.losses, xs.losses, strict=True)]
    rel = [d / max(abs(a), 1e-12) for d, a in zip(diffs, hf.losses, strict=True)]
    return {
        "steps": steps,
        "hf_losses": hf.losses,
        "xstilts_losses": xs.losses,
        "max_abs_diff": max(diffs),
        "max_rel_diff": max(rel),
        "order": "identical batches: Trainer with a sequential sampler over xstilts' batch order",
    }


def _row(dist: str, method: str, run: Any, config: Any, peak: float | None, mem: float) -> Row:
    flops = bc.useful_flops(config, run.seq_lens, train=True)
    tps = run.real_tokens / run.seconds
    mfu = flops / run.seconds / (peak * 1e12) if peak else None
    return Row(
        distribution=dist, method=method, seconds=run.seconds, real_tokens=run.real_tokens,
        padded_tokens=run.padded_tokens, tokens_per_second=tps,
        padding_fraction=1.0 - run.real_tokens / run.padded_tokens, mfu=mfu,
        peak_memory_mib=mem, notes=getattr(run, "attn_implementation", ""),
    )  # fmt: skip


def benchmark_distribution(
    name: str, lengths: Sequence[int], max_length: int, args: argparse.Namespace,
    device: torch.device,
) -> list[Row]:  # fmt: skip
    """Run the selected methods on one length distribution."""
    config = bc.model_config(args.config)
    # Every method trains on exactly these examples (same real tokens), after warming up on
    # different ones from the same distribution.
    examples = bc.synthetic_examples(
        lengths, args.steps * args.batch_size, config.vocab_size, args.seed
    )
    warm = bc.synthetic_examples(
        lengths, args.warmup * args.batch_size, config.vocab_size, args.seed + 1000
    )
    peak = bc.default_peak_tflops(device, args.peak_tflops)
    precision = "auto" if args.precision == "auto" else "fp32"
    rows = []
    for method in args.methods:
        with bc.PeakMemory(device) as mem:
            if method == "xstilts":
                run: Any = run_xstilts(
                    config, examples, device=device, batch_size=args.batch_size,
                    warmup_examples=warm, precision=precision, compile_model=args.compile,
                    seed=args.seed,
                )  # fmt: skip
            else:
                run = run_hf(
                    method, config, examples, device=device, batch_size=args.batch_size,
                    warmup_examples=warm, max_length=max_length, seed=args.seed,
                )  # fmt: skip
        rows.append(_row(name, method, run, config, peak, mem.mib))
        print(f"  {name} {method}: {rows[-1].tokens_per_second:,.0f} real tokens/s", flush=True)
    return rows


def ratios(rows: Sequence[Row]) -> dict[str, float]:
    """``xstilts/hf_default`` and ``xstilts/hf_best`` tokens/s ratios per distribution."""
    out: dict[str, float] = {}
    by = {(r.distribution, r.method): r.tokens_per_second for r in rows}
    for dist in dict.fromkeys(r.distribution for r in rows):
        for base in ("hf_default", "hf_best"):
            if (dist, base) in by and (dist, "xstilts") in by:
                out[f"{dist}: xstilts/{base}"] = by[dist, "xstilts"] / by[dist, base]
    return out


def render(payload: dict[str, Any]) -> str:
    """The markdown results report."""
    env = payload["environment"]
    headers = ["distribution", "method", "real tokens/s", "padding fraction", "MFU",
               "peak memory MiB", "timed s", "real tokens", "attention"]  # fmt: skip
    table = bc.markdown_table(
        headers,
        [[r["distribution"], r["method"], r["tokens_per_second"], r["padding_fraction"], r["mfu"],
          r["peak_memory_mib"], r["seconds"], r["real_tokens"], r["notes"]]
         for r in payload["rows"]],
    )  # fmt: skip
    lines = [
        "# Training throughput: xstilts vs HF Trainer", "",
        f"- command: `{env['command']}`", f"- device: {env['device']}",
        f"- torch {env['torch']}, transformers {env['transformers']}, python {env['python']}",
        f"- date: {env['date']}", f"- settings: {payload['settings']}",
        f"- length distributions: {payload['distributions']}", "", table, "",
        "Ratios (real tokens/s): "
        + ", ".join(f"{k} = {v:.2f}x" for k, v in payload["ratios"].items()),
    ]  # fmt: skip
    check = payload.get("same_loss_check")
    if check:
        lines += [
            "", f"Same-loss check ({check['steps']} steps, fp32, dropout off, {check['order']}): "
            f"max |loss diff| = {check['max_abs_diff']:.2e} "
            f"(relative {check['max_rel_diff']:.2e}).",
        ]  # fmt: skip
    lines += ["", FOOTNOTE]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--config", default="small", choices=bc.CONFIG_NAMES)
    p.add_argument("--distributions", default="nli,squad")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=30, help="timed steps (of the HF runs)")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps first")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32"])
    p.add_argument("--compile", action="store_true", help="torch.compile the xstilts model")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--loss-check-steps", type=int, default=3, help="0 = skip the check")
    p.add_argument("--tokenizer", default="xlmr", choices=lengths_mod.TOKENIZERS)
    p.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    p.add_argument("--length-limit", type=int, default=None, help="rows read per data file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results .md (default results/train_throughput_<device>.md)",
    )
    args = p.parse_args(argv)
    args.distributions = [d for d in args.distributions.split(",") if d]
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write ``.md`` + ``.json`` results.

    Returns:
        The results payload (also written as JSON).
    """
    args = parse_args(argv)
    device = bc.resolve_device(args.device)
    torch.manual_seed(args.seed)
    rows: list[Row] = []
    dists: dict[str, Any] = {}
    check = None
    for name in args.distributions:
        lens, max_length = lengths_mod.distribution(
            name, args.data_dir, args.tokenizer, args.length_limit
        )
        dists[name] = {
            **lengths_mod.summary(lens),
            "max_length": max_length,
            "tokenizer": args.tokenizer,
        }
        print(f"{name}: {dists[name]}", flush=True)
        rows += benchmark_distribution(name, lens, max_length, args, device)
        if check is None and args.loss_check_steps > 0:
            check = same_loss_check(
                args.config, lens, device, args.loss_check_steps, args.batch_size, args.seed
            )
    settings = {k: v for k, v in vars(args).items() if k not in ("data_dir", "out")}
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    payload = {
        "environment": bc.environment(device, ["benchmarks/train_throughput.py", *argv_list]),
        "settings": settings, "distributions": dists,
        "rows": [r.__dict__ for r in rows], "ratios": ratios(rows), "same_loss_check": check,
    }  # fmt: skip
    markdown = render(payload)
    print(markdown)
    out = args.out or bc.RESULTS_DIR / f"train_throughput_{device.type}.md"
    bc.write_results(out, markdown, payload)
    return payload


if __name__ == "__main__":
    main()
