"""Benchmark: xstilts training throughput vs the Hugging Face Trainer, on real length distributions.

For each length distribution (``nli``: MNLI pairs, max 128; ``squad``: question + context
windows, max 384; see :mod:`lengths`), ``(--warmup + --steps) x --batch-size`` synthetic
examples (real lengths, random ids) are trained for one epoch by every method; the steps after
the first ``--warmup`` are timed. Methods (``--methods``):

* Trainer rows (:mod:`hf_baselines`): ``hf_default`` (``run_xnli.py`` defaults), ``hf_best``
  (its best flags for the device, length grouping over xstilts' sort window), ``hf_compile``
  (``hf_best`` + ``torch_compile``), ``hf_same`` (``hf_best`` on xstilts' exact batches);
* xstilts rows (:mod:`xstilts_runs`, the real ``loop.train``): ``xstilts``,
  ``xstilts_compile``, ``xstilts_freeze``, ``xstilts_freeze_half``, ``xstilts_sparse``,
  ``xstilts_varlen``.

All start from the same random weights and see the same examples. ``--repeats`` repetitions
run interleaved (repetition 1 of every method, then repetition 2, ...), so slow drifts of a
shared machine's load hit every method alike; each figure is the median over repetitions, and
each ratio is the ratio of medians with the range of the per-repetition ratios beside it.
Reported per method: real (non-padding) tokens/s, wall and process CPU seconds of the timed
steps, padding fraction, MFU (formula in :mod:`bench_common`), peak GPU memory. A same-loss
check trains the Trainer (``hf_check``: fp32, dropout off) and ``loop.train`` (fp32) on identical
batches in identical order and compares the losses and the clipped gradients at every step.

GPU (XLM-R Large shape, random init): see ``benchmarks/gpu_check.sh``. CPU (small config)::

    PYTHONPATH=src python benchmarks/train_throughput.py --device cpu --config small \\
        --batch-size 8 --steps 200 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import bench_common as bc
import lengths as lengths_mod
from hf_baselines import MODES as HF_MODES
from hf_baselines import run_hf
from xstilts_runs import MODES as XSTILTS_MODES
from xstilts_runs import run_xstilts, xstilts_batches

METHODS = (*(m for m in HF_MODES if m != "hf_check"), *XSTILTS_MODES)
DEFAULT_METHODS = ("hf_default", "hf_best", "hf_compile", "hf_same", "xstilts", "xstilts_freeze")
# Ratios reported: (numerator, denominator).
_VARIANTS = ("xstilts_compile", "xstilts_freeze", "xstilts_freeze_half", "xstilts_sparse")
RATIOS = [("xstilts", b) for b in ("hf_default", "hf_best", "hf_compile", "hf_same")] + [
    (m, "xstilts") for m in (*_VARIANTS, "xstilts_varlen")
]
FOOTNOTE = (
    "MFU = useful FLOPs / s / peak; FLOPs = 6 N_enc T + 6 N_head S + 12 L H sum(len^2) (see"
    " benchmarks/bench_common.py). Padding fraction = 1 - real / processed over the timed steps"
    " (xstilts: the [S, T] attention view of padded SDPA; varlen attention processes no padding,"
    " and xstilts' linear layers never do). CPU s = process CPU time of all threads during the"
    " timed steps (CPU s / wall s below the thread count means the process waited, e.g. for a"
    " core taken by another job)."
)


def run_method(
    method: str, config: Any, examples: Sequence[bc.Example], max_length: int,
    args: argparse.Namespace, device: torch.device, order: Sequence[int],
) -> Any:  # fmt: skip
    """One run of one method (see the module doc)."""
    common = {"device": device, "batch_size": args.batch_size, "seed": args.seed}
    if method in XSTILTS_MODES:
        return run_xstilts(
            method, config, examples, warmup_steps=args.warmup, precision=args.precision, **common
        )
    # Both sides in the same precision: "auto" is bf16 on CUDA only, for xstilts and the Trainer.
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    return run_hf(
        method, config, examples, max_length=max_length, warmup_steps=args.warmup,
        order=order if method == "hf_same" else None, bf16=bf16, **common,
    )  # fmt: skip


def _run_row(
    dist: str, method: str, run: Any, config: Any, peak: float | None, mem: float | None
) -> dict[str, Any]:
    flops = bc.useful_flops(config, run.seq_lens, train=True)
    return {
        "distribution": dist, "method": method, "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds, "real_tokens": run.real_tokens,
        "padded_tokens": run.padded_tokens, "tokens_per_second": run.real_tokens / run.seconds,
        "padding_fraction": 1.0 - run.real_tokens / run.padded_tokens,
        "mfu": flops / run.seconds / (peak * 1e12) if peak else None, "peak_memory_mib": mem,
        "steps": run.steps, "notes": run.notes, "load_avg": bc.machine_load(),
    }  # fmt: skip


def run_schedule(
    dists: dict[str, tuple[list[int], int]], args: argparse.Namespace, device: torch.device,
    *, deadline: float | None = None, estimates: Sequence[dict[str, Any]] = (),
    first_repetition: int = 1,
) -> tuple[list[dict[str, Any]], list[str]]:  # fmt: skip
    """Every method on every distribution, ``args.repeats`` interleaved repetitions.

    Args:
        dists: name -> (lengths, max_length).
        args: Parsed options.
        device: Where to train.
        deadline: A ``time.perf_counter()`` value: a run whose earlier duration (this call's or
            ``estimates``') says it would end after it is left out and listed.
        estimates: Earlier runs (their ``run_seconds``) to estimate durations from.
        first_repetition: Number of the first repetition (labels only).

    Returns:
        ``(runs, skipped)``: one dict per run; a line per run left out (the time budget, or a
        failure with its error, whose traceback goes to stderr).
    """
    config = bc.model_config(args.config)
    peak = bc.default_peak_tflops(device, args.peak_tflops)
    data = {}
    for name, (lens, max_length) in dists.items():
        n = (args.warmup + args.steps) * args.batch_size
        examples = bc.synthetic_examples(lens, n, config.vocab_size, args.seed)
        batches = xstilts_batches(bc.features_of(examples), args.batch_size, args.seed)
        data[name] = (examples, max_length, [i for b in batches for i in b])
    runs: list[dict[str, Any]] = []
    skipped: list[str] = []
    last = {(r["distribution"], r["method"]): r["run_seconds"] for r in estimates}
    for rep in range(first_repetition, first_repetition + args.repeats):
        for name, (examples, max_length, order) in data.items():
            for method in args.methods:
                key = (name, method)
                known = deadline is not None and key in last
                if known and time.perf_counter() + last[key] > deadline:
                    skipped.append(f"{name} {method} repetition {rep}: time budget")
                    continue
                start = time.perf_counter()
                try:
                    with bc.PeakMemory(device) as mem:
                        run = run_method(method, config, examples, max_length, args, device, order)
                except Exception as exc:  # an unattended run keeps going
                    traceback.print_exc()
                    skipped.append(f"{name} {method} repetition {rep}: failed: "
                                   f"{type(exc).__name__}: {str(exc)[:300]}")  # fmt: skip
                    continue
                last[key] = time.perf_counter() - start
                row = _run_row(name, method, run, config, peak, mem.mib)
                runs.append({**row, "repetition": rep, "run_seconds": last[key]})
                print(f"  rep {rep} {name} {method}: {row['tokens_per_second']:,.0f} real "
                      f"tokens/s ({row['notes']})", flush=True)  # fmt: skip
    return runs, skipped


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (distribution, method): medians over repetitions, and the range."""
    rows = []
    for key in dict.fromkeys((r["distribution"], r["method"]) for r in runs):
        mine = [r for r in runs if (r["distribution"], r["method"]) == key]
        tps = [r["tokens_per_second"] for r in mine]
        mfus = [r["mfu"] for r in mine if r["mfu"] is not None]
        mems = [r["peak_memory_mib"] for r in mine if r["peak_memory_mib"] is not None]
        rows.append({
            "distribution": key[0], "method": key[1], "runs": len(mine),
            "tokens_per_second": bc.median(tps), "tps_min": min(tps), "tps_max": max(tps),
            "seconds": bc.median([r["seconds"] for r in mine]),
            "cpu_seconds": bc.median([r["cpu_seconds"] for r in mine]),
            "padding_fraction": bc.median([r["padding_fraction"] for r in mine]),
            "mfu": bc.median(mfus) if mfus else None,
            "peak_memory_mib": max(mems) if mems else None, "steps": mine[0]["steps"],
            "real_tokens": mine[0]["real_tokens"], "notes": mine[0]["notes"],
        })  # fmt: skip
    return rows


def ratios(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Ratio of median tokens/s, and the range of per-repetition ratios, per distribution."""
    by = {(r["distribution"], r["method"], r["repetition"]): r["tokens_per_second"] for r in runs}
    out: dict[str, dict[str, float]] = {}
    for dist in dict.fromkeys(r["distribution"] for r in runs):
        for num, den in RATIOS:
            a = [v for (d, m, _), v in by.items() if (d, m) == (dist, num)]
            b = [v for (d, m, _), v in by.items() if (d, m) == (dist, den)]
            if not a or not b:
                continue
            paired = [
                by[dist, num, rep] / by[dist, den, rep]
                for (d, m, rep) in by
                if (d, m) == (dist, num) and (dist, den, rep) in by
            ]
            out[f"{dist}: {num}/{den}"] = {
                "ratio": bc.median(a) / bc.median(b),
                "min": min(paired, default=float("nan")),
                "max": max(paired, default=float("nan")),
            }
    return out


def same_loss_check(
    config_name: str, lengths: Sequence[int], device: torch.device, steps: int, batch_size: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Trainer (fp32, dropout off) and ``loop.train`` (fp32) on identical batches: compare.

    Returns:
        Losses of both, the largest absolute and relative loss difference, and per step the
        relative L2 difference of all clipped gradients together (``||g_x - g_h|| / ||g_h||``)
        and the largest such difference of a single tensor.
    """
    config = bc.model_config(config_name, dropout=0.0)
    examples = bc.synthetic_examples(lengths, steps * batch_size, config.vocab_size, seed + 1)
    batches = xstilts_batches(bc.features_of(examples), batch_size, seed)
    # One megabatch and a multiple of batch_size examples: every batch is full, so the
    # Trainer's sequential batches of batch_size are exactly loop.train's batches.
    if not all(len(b) == batch_size for b in batches):
        raise RuntimeError("the loss check needs full batches")
    order = [i for b in batches for i in b]
    hf_grads: dict[int, dict[str, torch.Tensor]] = {}
    grad_diffs: list[dict[str, float]] = []

    def keep_hf(step: int, model: Any) -> None:
        hf_grads[step] = {_xstilts_name(n): p.grad.detach().clone()
                          for n, p in model.named_parameters() if p.grad is not None}  # fmt: skip

    def compare(step: int, model: Any) -> None:
        ref = hf_grads[step]
        ours = {n: p.grad.detach() for n, p in model.named_parameters() if p.grad is not None}
        if ours.keys() != ref.keys():
            raise RuntimeError(f"gradient sets differ: {sorted(ours.keys() ^ ref.keys())[:5]}")
        num = sum(float((ours[n] - ref[n]).double().pow(2).sum()) for n in ref) ** 0.5
        den = sum(float(ref[n].double().pow(2).sum()) for n in ref) ** 0.5
        # Tensors whose true gradient is zero (attention key biases: softmax ignores a constant
        # added to every score of a row) hold only rounding noise; their relative error means
        # nothing, so tensors below 1e-6 of the total norm are left out of the per-tensor max.
        live = [n for n in ref if float(ref[n].norm()) >= 1e-6 * den]
        worst = max(float((ours[n] - ref[n]).norm() / ref[n].norm()) for n in live)
        grad_diffs.append({
            "step": step, "global_rel_l2": num / den, "worst_tensor_rel_l2": worst,
            "tensors_compared": len(live), "near_zero_tensors": len(ref) - len(live),
        })  # fmt: skip

    common = {"device": device, "batch_size": batch_size, "warmup_steps": 0, "seed": seed}
    hf = run_hf("hf_check", config, [examples[i] for i in order], max_length=0,
                order=range(len(order)), grad_hook=keep_hf, **common)  # fmt: skip
    xs = run_xstilts("xstilts", config, examples, precision="fp32", grad_hook=compare, **common)
    diffs = [abs(a - b) for a, b in zip(hf.losses, xs.losses, strict=True)]
    rel = [d / max(abs(a), 1e-12) for d, a in zip(diffs, hf.losses, strict=True)]
    return {
        "steps": steps, "hf_losses": hf.losses, "xstilts_losses": xs.losses,
        "max_abs_diff": max(diffs), "max_rel_diff": max(rel), "gradients": grad_diffs,
        "max_grad_rel_l2": max(g["global_rel_l2"] for g in grad_diffs),
        "order": "identical batches: Trainer with a sequential sampler over loop.train's order",
    }  # fmt: skip


def _xstilts_name(hf_name: str) -> str:
    """HF classifier parameter name -> the XstiltsModel name of the same tensor."""
    if hf_name.startswith("roberta."):
        return "encoder." + hf_name.removeprefix("roberta.")
    return "heads.cls." + hf_name.removeprefix("classifier.")


def render(payload: dict[str, Any], header: bool = True) -> str:
    """The markdown results report (``header=False``: without title and environment)."""
    headers = ["distribution", "method", "real tokens/s (median)", "range", "wall s", "CPU s",
               "padding fraction", "MFU", "peak GPU MiB", "runs", "notes"]  # fmt: skip
    table = bc.markdown_table(headers, [
        [r["distribution"], r["method"], r["tokens_per_second"],
         f"{r['tps_min']:,.0f}-{r['tps_max']:,.0f}", r["seconds"], r["cpu_seconds"],
         r["padding_fraction"], r["mfu"], r["peak_memory_mib"], r["runs"], r["notes"]]
        for r in payload["rows"]
    ])  # fmt: skip
    ratio_lines = [
        f"- {k} = {v['ratio']:.2f}x (per-repetition {v['min']:.2f}-{v['max']:.2f})"
        for k, v in payload["ratios"].items()
    ]
    lines = [
        "# Training throughput: xstilts vs HF Trainer", "",
        *bc.environment_lines(payload["environment"]), f"- settings: {payload['settings']}",
    ] if header else []  # fmt: skip
    lines += [
        f"- length distributions: {payload['distributions']}", "", table, "",
        "Ratios of median real tokens/s:", *ratio_lines,
    ]  # fmt: skip
    if payload.get("skipped"):
        lines += ["", "Left out: " + "; ".join(payload["skipped"])]
    check = payload.get("same_loss_check")
    if check:
        lines += [
            "", f"Same-loss check ({check['steps']} steps, fp32, dropout off, {check['order']}): "
            f"max |loss diff| = {check['max_abs_diff']:.2e} (relative {check['max_rel_diff']:.2e});"
            f" clipped gradients, relative L2 difference of all tensors together: max "
            f"{check['max_grad_rel_l2']:.2e} over the steps (worst single tensor "
            f"{max(g['worst_tensor_rel_l2'] for g in check['gradients']):.2e}; tensors whose "
            "gradient is zero up to rounding, the attention key biases, left out of that max).",
        ]  # fmt: skip
    lines += ["", FOOTNOTE]
    return "\n".join(lines) + "\n"


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options shared with ``gpu_check.py``."""
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--config", default="small", choices=bc.CONFIG_NAMES)
    p.add_argument("--steps", type=int, default=200, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first, same run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repetitions")
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"],
        help="auto: bf16 autocast on CUDA, fp32 on CPU; bf16: also on CPU (native bf16 CPUs)",
    )  # fmt: skip
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--loss-check-steps", type=int, default=3, help="0 = skip the check")
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    p.add_argument("--tokenizer", default="xlmr", choices=lengths_mod.TOKENIZERS)
    p.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    p.add_argument("--lengths-file", type=Path, default=None, help="a length pack instead")
    p.add_argument("--length-limit", type=int, default=None, help="rows read per data file")
    p.add_argument("--seed", type=int, default=0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_common_args(p)
    p.add_argument("--distributions", default="nli,squad")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--out", type=Path, default=None, help="results .md (default: by device)")
    args = p.parse_args(argv)
    args.distributions = [d for d in args.distributions.split(",") if d]
    args.methods = [m for m in args.methods.split(",") if m]
    if unknown := sorted(set(args.methods) - set(METHODS)):
        p.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    return args


def load_distributions(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """name -> (lengths, max_length), from ``--lengths-file`` or the shared data."""
    pack = lengths_mod.load_pack(args.lengths_file) if args.lengths_file else None
    return {
        name: lengths_mod.distribution(
            name, args.data_dir, args.tokenizer, args.length_limit, pack=pack
        )
        for name in names
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and write ``.md`` + ``.json`` results.

    Returns:
        The results payload (also written as JSON).
    """
    args = parse_args(argv)
    device = bc.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    env = bc.environment(device, ["benchmarks/train_throughput.py", *argv_list])
    dists = load_distributions(args, args.distributions)
    summary = {n: {**lengths_mod.summary(lens), "max_length": m} for n, (lens, m) in dists.items()}
    runs, skipped = run_schedule(dists, args, device)
    check = None
    if args.loss_check_steps > 0:
        first = next(iter(dists.values()))[0]
        check = same_loss_check(
            args.config, first, device, args.loss_check_steps, args.batch_size, args.seed
        )
    settings = {k: v for k, v in vars(args).items() if k not in ("data_dir", "out")}
    settings["lengths_file"] = str(args.lengths_file) if args.lengths_file else None
    payload = {
        "environment": bc.finish_environment(env), "settings": settings,
        "distributions": summary, "rows": summarize(runs), "runs": runs,
        "ratios": ratios(runs), "skipped": skipped, "same_loss_check": check,
    }  # fmt: skip
    markdown = render(payload)
    print(markdown)
    out = args.out or bc.RESULTS_DIR / f"train_throughput_{device.type}.md"
    bc.write_results(out, markdown, payload)
    return payload


if __name__ == "__main__":
    main()
