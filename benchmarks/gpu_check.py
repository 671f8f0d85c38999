"""The unattended GPU check: every GPU figure of issue 15 in one command and one results file.

``prepare`` (on a machine with the shared data and the XLM-R tokenizer) measures the exact
length distributions (NLI, SQuAD windows, XNLI per language) into ``benchmarks/gpu_pack/
lengths.json`` (about 0.2 MB, checksummed; see :func:`lengths.write_pack`). ``run`` needs
nothing else: no data, no tokenizer, no download (XLM-R Large shape, random weights). Sections,
most important first, each written to the results file as soon as it finishes (a time-out keeps
what is done; a failing run or section is recorded with its error and the check goes on):

1. training on the NLI lengths: ``hf_best``, ``hf_same``, ``xstilts``, ``xstilts_freeze``,
   ``xstilts_varlen`` and last ``hf_default`` (repetition 1 only: every batch has the same
   padded shape, and it is the slowest row) (:mod:`train_throughput`): real tokens/s, MFU, peak
   memory, attention path;
2. the 15-language XNLI evaluation, 75,150 examples (:mod:`eval_throughput`);
3. the optimizer step: gradient clipping and fused AdamW timed alone, on the full model and with
   the embedding layer frozen, and their share of the median xstilts training step;
4. training on the SQuAD lengths, as 1;
5. the same-loss and same-gradient check (fp32);
6. training repetitions 2, 3, ... while ``--budget-s`` allows; what did not fit is listed.

Usage (see ``gpu_check.sh``)::

    bash benchmarks/gpu_check.sh prepare
    bash benchmarks/gpu_check.sh                       # cuda, large: results/gpu_check_cuda.md
    bash benchmarks/gpu_check.sh --device cpu --config small --steps 2 --warmup 1 ...  # a test
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

import bench_common as bc
import eval_throughput as ev
import lengths as lengths_mod
import train_throughput as tt
from xstilts.training.optim import build_optimizer
from xstilts.training.speed import freeze_parameters
from xstilts_runs import build_xstilts_model

PACK = Path(__file__).resolve().parent / "gpu_pack" / "lengths.json"
TRAIN_METHODS = ("hf_default", "hf_best", "hf_same", "xstilts", "xstilts_freeze", "xstilts_varlen")
PACK_LIMIT = 64 * 2**20  # what one device call carries


def optimizer_timing(config_name: str, device: torch.device, steps: int) -> dict[str, Any]:
    """Gradient clipping and the fused AdamW step, timed alone (full model; frozen embeddings)."""
    config = bc.model_config(config_name)
    out: dict[str, Any] = {}
    for label, freeze in (("full", ()), ("frozen_embeddings", ("embeddings",))):
        model = build_xstilts_model(config, 0, device).train()
        freeze_parameters(model, freeze)
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        optimizer = build_optimizer(model, lr=2e-5, weight_decay=0.01, device=device)
        timings = {"clip": [], "step": []}
        for i in range(steps + 3):  # 3 untimed steps: kernel selection, optimizer state
            bc.synchronize(device)
            t0 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            bc.synchronize(device)
            t1 = time.perf_counter()
            optimizer.step()
            bc.synchronize(device)
            if i >= 3:
                timings["clip"].append(t1 - t0)
                timings["step"].append(time.perf_counter() - t1)
        n = sum(p.numel() for p in params)
        step_s, clip_s = bc.median(timings["step"]), bc.median(timings["clip"])
        out[label] = {
            "trained_parameters": n, "adamw_step_ms": 1e3 * step_s, "clip_ms": 1e3 * clip_s,
            # fp32 AdamW reads param, grad, exp_avg, exp_avg_sq and writes three of them.
            "adamw_gb_per_s": 28 * n / step_s / 1e9,
        }  # fmt: skip
        del model, optimizer, params
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def optimizer_shares(
    timing: dict[str, Any], rows: Sequence[dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Clip + AdamW step as a share of the median xstilts (and xstilts_freeze) training step."""
    shares = {}
    for row in rows:
        if row["method"] in ("xstilts", "xstilts_freeze"):
            label = "full" if row["method"] == "xstilts" else "frozen_embeddings"
            per_step = row["seconds"] / row["steps"]
            alone = (timing[label]["adamw_step_ms"] + timing[label]["clip_ms"]) / 1e3
            shares[f"{row['distribution']} {row['method']}"] = {
                "train_step_ms": 1e3 * per_step, "clip_plus_step_share": alone / per_step,
            }  # fmt: skip
    return shares


def render(payload: dict[str, Any]) -> str:
    """The one markdown results file."""
    lines = ["# GPU check (issue 15): training, evaluation and optimizer step", "",
             *bc.environment_lines(payload["environment"]),
             f"- settings: {payload['settings']}", f"- status: {payload['status']}"]  # fmt: skip
    for key, error in payload.get("errors", {}).items():
        lines.append(f"- **{key} failed**: {error}")
    train = payload.get("train")
    if train:
        lines += ["", "## Training throughput (XLM-R Large shape unless the settings say else)",
                  "", tt.render(train, header=False)]  # fmt: skip
    evaluation = payload.get("eval")
    if evaluation:
        lines += ["", "## Zero-shot XNLI evaluation, 15 languages", "",
                  f"xstilts attention path: {evaluation['xstilts_attention']}; prediction "
                  f"agreement with xstilts: {evaluation['prediction_agreement']}", "",
                  ev.table(evaluation["rows"])]  # fmt: skip
    opt = payload.get("optimizer")
    if opt:
        lines += ["", "## Optimizer step (fused AdamW + gradient clipping, timed alone)", ""]
        for label in ("full", "frozen_embeddings"):
            o = opt[label]
            lines.append(f"- {label}: {o['trained_parameters']:,} trained parameters, AdamW step "
                         f"{o['adamw_step_ms']:.2f} ms ({o['adamw_gb_per_s']:.0f} GB/s), clip "
                         f"{o['clip_ms']:.2f} ms")  # fmt: skip
        for key, s in opt.get("share_of_train_step", {}).items():
            lines.append(f"- {key}: train step {s['train_step_ms']:.1f} ms, clip + AdamW step "
                         f"= {100 * s['clip_plus_step_share']:.0f} % of it")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """``prepare`` or ``run`` and their options (module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write the length pack")
    prep.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    prep.add_argument("--tokenizer", default="xlmr", choices=lengths_mod.TOKENIZERS)
    prep.add_argument("--pack", type=Path, default=PACK)
    run = sub.add_parser("run", help="run the check")
    tt.add_common_args(run)
    run.set_defaults(device="cuda", config="large", lengths_file=PACK)
    run.add_argument("--methods", default=",".join(TRAIN_METHODS))
    run.add_argument("--once", default="hf_default", help="methods run in repetition 1 only")
    run.add_argument("--per-language", type=int, default=ev.XNLI_EVAL_SIZE)
    run.add_argument("--max-tokens", type=int, default=16384)
    run.add_argument("--hf-batch-size", type=int, default=128)
    run.add_argument("--eval-methods", default=",".join(ev.METHODS))
    run.add_argument("--optimizer-steps", type=int, default=20)
    run.add_argument("--budget-s", type=float, default=400.0, help="measured work, seconds")
    run.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.command == "run":
        args.methods = [m for m in args.methods.split(",") if m]
        args.once = [m for m in args.once.split(",") if m]
        args.eval_methods = [m for m in args.eval_methods.split(",") if m]
        if unknown := sorted(set(args.methods) - set(tt.METHODS)):
            p.error(f"unknown methods {unknown}")
    return args


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Write (or keep, when current) the length pack; refuse one too large to carry."""
    if lengths_mod.pack_is_current(args.pack, args.data_dir, args.tokenizer):
        print(f"{args.pack} is current (same data files and tokenizer)")
    else:
        lengths_mod.write_pack(args.pack, args.data_dir, args.tokenizer)
        print(f"wrote {args.pack}")
    size = args.pack.stat().st_size
    if size > PACK_LIMIT:
        raise SystemExit(f"{args.pack} is {size / 2**20:.1f} MiB: over the 64 MiB a call carries")
    print(f"{size / 2**20:.2f} MiB to carry; nothing else is needed on the GPU machine")
    return lengths_mod.load_pack(args.pack)


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """All sections, in the order of the module doc, each written when done."""
    started = time.perf_counter()
    deadline = started + args.budget_s
    device = bc.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or bc.RESULTS_DIR / f"gpu_check_{device.type}.md"
    env = bc.environment(device, ["benchmarks/gpu_check.py", "run", *argv])
    settings = {k: str(v) for k, v in vars(args).items() if k not in ("data_dir", "out")}
    payload: dict[str, Any] = {"environment": env, "settings": settings, "status": "running"}
    print(f"{env['device']}: torch {env['torch']}, transformers {env['transformers']}, "
          f"python {env['python']}; results go to {out}", flush=True)  # fmt: skip
    pack = lengths_mod.load_pack(args.lengths_file)
    dists = tt.load_distributions(args, ["nli", "squad"])

    summary = {n: lengths_mod.summary(v[0]) for n, v in dists.items()}
    runs: list[dict[str, Any]] = []
    skipped: list[str] = []

    def save(status: str) -> None:
        rows = tt.summarize(runs)
        payload["train"] = {
            "environment": env, "settings": settings, "rows": rows, "runs": runs,
            "ratios": tt.ratios(runs), "skipped": skipped, "distributions": summary,
            "same_loss_check": payload.get("same_loss_check"),
        }  # fmt: skip
        if "optimizer" in payload:
            payload["optimizer"]["share_of_train_step"] = optimizer_shares(
                payload["optimizer"], rows
            )
        payload["status"] = status
        bc.finish_environment(env)
        bc.write_results(out, render(payload), payload)

    all_methods, once, repeats = args.methods, set(args.once), args.repeats
    # The run-once methods (hf_default, the slowest) last, so that a time-out costs them first.
    args.repeats = 1
    args.methods = [m for m in all_methods if m not in once] + [m for m in all_methods if m in once]

    def train(names: Sequence[str], **kwargs: Any) -> None:
        more, left = tt.run_schedule({n: dists[n] for n in names}, args, device, **kwargs)
        runs.extend(more)
        skipped.extend(left)

    per_lang = {k: list(v) for k, v in pack["xnli"].items()}
    eval_args = argparse.Namespace(**{**vars(args), "repeats": 1, "methods": args.eval_methods})
    # Most important first: every section is saved when done, so a time-out keeps the rest.
    sections: dict[str, Callable[[], Any]] = {
        "train_nli": lambda: train(["nli"]),
        "eval": lambda: ev.evaluate_methods(eval_args, device, per_lang),
        "optimizer": lambda: optimizer_timing(args.config, device, args.optimizer_steps),
        "train_squad": lambda: train(["squad"]),
    }
    if args.loss_check_steps > 0:
        sections["same_loss_check"] = lambda: tt.same_loss_check(
            args.config, dists["nli"][0], device, args.loss_check_steps, args.batch_size,
            args.seed,
        )  # fmt: skip
    for key, section in sections.items():
        try:
            result = section()
            if result is not None:
                payload[key] = result
        except Exception as exc:  # an unattended run keeps going
            traceback.print_exc()
            payload.setdefault("errors", {})[key] = f"{type(exc).__name__}: {str(exc)[:500]}"
        save(f"{key} done")
    args.methods = [m for m in all_methods if m not in once]
    for rep in range(2, repeats + 1):
        train(list(dists), deadline=deadline, estimates=list(runs), first_repetition=rep)
        save(f"training repetition {rep} done")
    save(f"complete in {time.perf_counter() - started:.0f} s")
    return payload


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point: ``prepare`` or ``run``."""
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    if args.command == "prepare":
        return prepare(args)
    return run(args, argv[1:])


if __name__ == "__main__":
    main()
