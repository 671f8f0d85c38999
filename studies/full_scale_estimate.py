"""GPU-hour estimate for the full XTREME-STILTs grid (studies/full_xstilts.yaml), from the plan.

The plan (stage DAG, prefix sharing) comes from xstilts itself with example counting off (the
full datasets are not on this machine); example counts are the official train-split sizes and
token lengths are the means measured on the shared slices with XLM-R's tokenizer, both listed
below. Every number printed is an ESTIMATE.

    python studies/full_scale_estimate.py [--mfu 0.4] [--peak-tflops 800]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xstilts.pipelines.experiment import load_experiment
from xstilts.pipelines.plan import build_plan

# Official train-split sizes (examples; QA: questions, tagging: sentences).
TRAIN_SIZE: dict[str, int] = {
    "anli_plus": 1_104_934,  # ANLI R1-3 + MNLI + SNLI
    "mnli": 392_702,
    "qqp": 363_846,
    "sst2": 67_349,
    "squad": 87_599,
    "ccg": 38_015,
    "hellaswag": 39_905,
    "cosmosqa": 25_262,
    "commonsenseqa": 9_741,
    "xnli": 392_702,  # XNLI's training data is MNLI
    "pawsx": 49_401,
    "udpos": 12_543,  # UD English-EWT train
    "panx": 20_000,
    "xquad": 87_599,  # SQuAD v1.1
    "mlqa": 87_599,  # SQuAD v1.1
    "tydiqa": 3_696,
}
# Real (unpadded) tokens per training example. NLI and SQuAD means are measured on the shared
# slices (benchmarks/results/train_throughput_cpu_{nli,squad}.md: 45.4 and 190.3; max 128 / 384);
# the others are rough estimates (multiple choice: all choices, ~4-5 x 60-100 tokens).
TOKENS: dict[str, float] = {
    "anli_plus": 45, "mnli": 45, "qqp": 30, "sst2": 15, "squad": 190, "ccg": 35,
    "hellaswag": 4 * 90, "cosmosqa": 4 * 100, "commonsenseqa": 5 * 25,
    "xnli": 45, "pawsx": 60, "udpos": 25, "panx": 20, "xquad": 190, "mlqa": 190, "tydiqa": 190,
}  # fmt: skip
GFLOP_PER_TOKEN = 1.81  # 6 N for XLM-R Large's 302 M encoder parameters (issue #4)


def stage_tokens(tasks: tuple[str, ...], epochs: float) -> float:
    """Training tokens of one stage (a mixture trains on the sum of its tasks once)."""
    return sum(TRAIN_SIZE[t] * TOKENS[t] for t in tasks) * epochs


def main() -> None:
    """Print the markdown table of stages, tokens and GPU-hours."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(Path(__file__).with_name("full_xstilts.yaml")))
    ap.add_argument("--mfu", type=float, default=0.40, help="assumed model FLOP utilisation")
    ap.add_argument("--peak-tflops", type=float, default=800.0, help="measured H100 bf16 peak")
    args = ap.parse_args()
    exp = load_experiment(Path(args.config), [], check_data=False)
    plan = build_plan(exp, count_examples=False)
    tokens = {
        s.stage_id: stage_tokens(s.spec.tasks, float(s.spec.train["epochs"]))
        for s in plan.stages
        if s.spec.kind == "train"
    }
    shared = sum(tokens.values())
    alone = sum(tokens.get(i, 0.0) for c in plan.chains for i in c.stage_ids)
    by_hand = sum(tokens[i] for i in plan.by_hand_stage_ids())
    inter = [s for s in plan.stages if s.spec.role == "intermediate"]
    target = [s for s in plan.stages if s.spec.role == "target"]
    flops_per_s = args.peak_tflops * 1e12 * args.mfu

    def hours(tok: float) -> float:
        return tok * GFLOP_PER_TOKEN * 1e9 / flops_per_s / 3600

    print(f"options {len(exp.options)}, targets {len(exp.targets)}, seeds {len(exp.seeds)}")
    print(f"chains {len(plan.chains)}; distinct train stages {len(tokens)} ")
    print(f"(intermediate {len(inter)}, target {len(target)})\n")
    print("| accounting | training tokens | GPU-hours (H100, MFU %.0f%%) |" % (100 * args.mfu))
    print("|---|---|---|")
    print(f"| every chain run alone | {alone:.3g} | {hours(alone):,.0f} |")
    print(f"| each option's intermediates once, by hand | {by_hand:.3g} | {hours(by_hand):,.0f} |")
    print(f"| shared prefixes (xstilts) | {shared:.3g} | {hours(shared):,.0f} |")
    inter_tok = sum(tokens[s.stage_id] for s in inter)
    target_tok = sum(tokens[s.stage_id] for s in target)
    print(f"| of which intermediate stages | {inter_tok:.3g} | {hours(inter_tok):,.0f} |")
    print(f"| of which target stages | {target_tok:.3g} | {hours(target_tok):,.0f} |")
    print(f"\nsavings from prefix sharing: {1 - shared / alone:.1%} of training tokens vs every")
    print(f"chain alone, {1 - shared / by_hand:.1%} vs each option's intermediates once by hand")


if __name__ == "__main__":
    main()
