"""Benchmark: real tokens/s of a whole CPU machine, e5-small fine-tuning, then vs now.

Issue 14 asked for twice "today's" real-weights training throughput per machine. *Then* is how
xstilts trained e5-small when that was written: fp32, every parameter trained, one stage using
both cores (2 torch threads). *Now* is the recipe of ``configs/demo.yaml`` as the local executor
runs it with ``--workers 2``: bf16 autocast (on a CPU with native bf16), embeddings and layers
0-5 frozen, two single-thread stages at once. Both run ``train_throughput.py``'s real
``loop.train`` on the same e5-small-shaped model (random weights: speed does not depend on the
values) and the same MNLI-length batches. The fused AdamW of today's code is used in both rows
(*then* used the slower foreach kernel), so the ratio understates the gain. Repetitions are
interleaved (then, now, then, now, ...); each figure is the median over repetitions, and *now*
is the sum of its two concurrent processes' tokens/s::

    python benchmarks/machine_throughput.py --repeats 3 --steps 100 \\
        --out benchmarks/results/machine_throughput_cpu_e5small.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc

HERE = Path(__file__).resolve().parent
# (label, train_throughput method, precision, threads per process, concurrent processes)
SETUPS = (
    ("then: fp32, all trained, 1 stage x 2 threads", "xstilts", "fp32", 2, 1),
    ("now: bf16, emb + layers 0-5 frozen, 2 stages x 1 thread", "xstilts_freeze_half", "bf16",
     1, 2),
)  # fmt: skip


def _one(method: str, precision: str, threads: int, procs: int, args: argparse.Namespace,
         tmp: Path) -> tuple[float, float]:  # fmt: skip
    """Start ``procs`` benchmark processes at once; (summed tokens/s, summed CPU s)."""
    running = []
    for i in range(procs):
        out = tmp / f"{method}-{i}-{time.monotonic_ns()}.md"
        cmd = [sys.executable, str(HERE / "train_throughput.py"), "--device", "cpu",
               "--config", "e5small", "--distributions", "nli", "--batch-size", "16",
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--repeats", "1",
               "--threads", str(threads), "--precision", precision, "--methods", method,
               "--loss-check-steps", "0", "--seed", str(i), "--out", str(out)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        running.append((subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL), out))
    tps = cpu = 0.0
    for proc, out in running:
        if proc.wait() != 0:
            raise SystemExit(f"{method} exited with {proc.returncode}")
        (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
        tps += row["tokens_per_second"]
        cpu += row["cpu_seconds"]
    return tps, cpu


def main() -> None:
    """Run the interleaved repetitions, print and write the table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    load0 = bc.machine_load()
    results: dict[str, list[tuple[float, float]]] = {s[0]: [] for s in SETUPS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for label, method, precision, threads, procs in SETUPS:
                results[label].append(_one(method, precision, threads, procs, args, Path(tmp)))
    load1 = bc.machine_load()
    med = {k: statistics.median(t for t, _ in v) for k, v in results.items()}
    then, now = (med[s[0]] for s in SETUPS)
    ratios = [n[0] / t[0] for t, n in zip(*results.values(), strict=True)]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [
        "# Machine throughput: e5-small fine-tuning on CPU, then vs now",
        "",
        f"- command: `python benchmarks/machine_throughput.py --repeats {args.repeats} --steps "
        f"{args.steps} --warmup {args.warmup}`",
        f"- machine: {bc._cpu_model()}, {os.cpu_count()} logical "
        f"CPUs; load average (1/5/15 min) at start {load0}, at end {load1}",
        f"- python {platform.python_version()}; {when} UTC",
        f"- each run: {args.steps} timed steps after {args.warmup} warm-up, batch 16, MNLI lengths",
        "",
        "| setup | machine real tokens/s (median) | per repetition | CPU s per repetition |",
        "|---|---:|---|---|",
    ]
    for label, runs in results.items():
        reps = ", ".join(f"{t:,.0f}" for t, _ in runs)
        cpus = ", ".join(f"{c:.0f}" for _, c in runs)
        lines.append(f"| {label} | {med[label]:,.0f} | {reps} | {cpus} |")
    lines += ["", f"now / then = {now / then:.2f}x (per repetition "
              f"{min(ratios):.2f}-{max(ratios):.2f}x)"]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
