"""Accuracy (and stage time) of the word-embedding remedies on the main job's XNLI recipe.

Runs ``benchmarks/embedding_update.yaml`` three times with ``xstilts run`` (two paired seeds,
``--workers 2``), changing only the word table's training: ``frozen`` (``freeze: [embeddings,
layers.0-5]``, the recipe), ``dense`` (``freeze: [layers.0-5]``: the table trains with dense
AdamW) and ``sparse`` (the same plus ``embedding_update: sparse``). Each variant is its own
experiment under ``runs/embedding_update/<variant>``, so reruns reuse finished stages. Then it
prints, per variant, XNLI accuracy (English and the 15-language average) per seed and the paired
difference from ``dense`` with its 95 % interval (the report's test: paired bootstrap over items
plus seed variance), and the training seconds of each stage (two stages ran at once: indicative).

    python benchmarks/embedding_update.py [--out benchmarks/results/embedding_update_cpu.md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from xstilts.reporting.collect import load_experiment_data
from xstilts.reporting.deltas import _blocks
from xstilts.reporting.significance import paired_test

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "embedding_update.yaml"
VARIANTS = {
    "frozen": [],
    "dense": ["train.freeze=[layers.0-5]"],
    "sparse": ["train.freeze=[layers.0-5]", "train.embedding_update=sparse"],
}


def main() -> None:
    """Train what is missing, then print (and optionally write) the comparison."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--data-dir", default=None, help="data_dir override (default: the YAML's)")
    args = p.parse_args()
    root = HERE.parent / "runs" / "embedding_update"
    data = {}
    for name, overrides in VARIANTS.items():
        out = root / name
        extra = [f"name=embedding_update_{name}", f"output_dir={out}", *overrides]
        if args.data_dir:
            extra.append(f"data_dir={args.data_dir}")
        cmd = ["xstilts", "run", str(CONFIG), *extra, "--workers", "2", "--no-progress"]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        data[name] = load_experiment_data(out / "results.sqlite")
    lines = _table(data)
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _table(data: dict) -> list[str]:
    """Markdown rows: each seed, then each variant's mean and paired Δ vs dense."""
    ref = data["dense"].runs_of("none", "xnli")
    lines = [
        "| variant | seed | XNLI en | XNLI avg (15) | train s | tokens/s "
        "| Δ avg vs dense [95% CI] |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, exp in data.items():
        runs = exp.runs_of("none", "xnli")
        metrics = {s["stage_id"]: s.get("metrics") or {} for s in exp.stages}
        for run in runs:
            m = metrics.get(run.stage_id, {})
            lines.append(
                f"| {name} | {run.seed} | {run.lang_scores['en']:.1f} | {run.score:.1f} | "
                f"{m.get('train_seconds', float('nan')):.0f} | "
                f"{m.get('tokens_per_second', float('nan')):,.0f} | |"
            )
        mean = float(np.mean([r.score for r in runs]))
        delta = "reference"
        if name != "dense":
            t = paired_test(_blocks(runs, ref, "xnli"), n_boot=1000)
            delta = f"{t.delta:+.1f} [{t.ci_low:+.1f}, {t.ci_high:+.1f}] p={t.p:.3f}"
        lines.append(f"| {name} | mean | | {mean:.1f} | | | {delta} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
