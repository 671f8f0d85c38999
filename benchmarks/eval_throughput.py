"""Benchmark: zero-shot XNLI evaluation speed (15 languages x 5,010 examples = 75,150).

Inputs are synthetic ids with the real XNLI length distribution of each language (measured on
the shared dev files with the XLM-R tokenizer, see :mod:`lengths`). Timed end to end, from
features to per-example predictions on the CPU:

* ``xstilts``: :func:`xstilts.training.evaluate.predict_task`, i.e. all languages in ONE
  length-sorted pass, token-budget batches (``--max-tokens``), packed unpadded forward,
  bf16 autocast on CUDA, argmax streamed to CPU.
* ``hf_padded`` (reference, ``--methods``): XTREME-style evaluation, language by language,
  batches of ``--hf-batch-size`` in file order padded to 128, HF's own forward (same precision).

Target: <= 15 s for XLM-R Large on one H100::

    PYTHONPATH=src python benchmarks/eval_throughput.py --device cuda --config large

CPU (small config, fewer examples)::

    PYTHONPATH=src python benchmarks/eval_throughput.py --device cpu --config small \\
        --per-language 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import bench_common as bc
import lengths as lengths_mod
from train_throughput import HEAD, build_xstilts_model
from xstilts.batch import pack, to_padded
from xstilts.tasks.formats.classification import FORMAT
from xstilts.training.batching import make_batches, padding_efficiency
from xstilts.training.evaluate import EvalSettings, autocast_context, predict_task

XNLI_EVAL_SIZE = 5010  # XNLI test examples per language
TARGET_SECONDS = 15.0
METHODS = ("xstilts", "hf_padded")


def eval_features(
    per_language: dict[str, list[int]], n_per_language: int, vocab_size: int, seed: int
) -> list[dict[str, Any]]:
    """``n_per_language`` synthetic features per language, languages concatenated."""
    examples: list[bc.Example] = []
    for i, lang in enumerate(sorted(per_language)):
        examples += bc.synthetic_examples(per_language[lang], n_per_language, vocab_size, seed + i)
    return bc.features_of(examples)


def run_xstilts_eval(
    model: Any, features: list[dict[str, Any]], device: torch.device, max_tokens: int
) -> tuple[float, list[Any]]:
    """Seconds and predictions of one :func:`predict_task` pass (after a short warm-up)."""
    settings = EvalSettings(max_tokens=max_tokens, precision="auto")
    # Warm-up on the longest features (the first batches of the real pass): kernels, allocator.
    longest = sorted(features, key=lambda f: -len(f["sequences"][0]))[: max(1, len(features) // 50)]
    predict_task(model, HEAD, FORMAT, longest, settings, device, padding_idx=model.padding_idx)
    bc.synchronize(device)
    start = time.perf_counter()
    preds = predict_task(
        model, HEAD, FORMAT, features, settings, device, padding_idx=model.padding_idx
    )
    bc.synchronize(device)
    return time.perf_counter() - start, preds


def run_hf_padded_eval(
    model: Any, features: list[dict[str, Any]], device: torch.device, batch_size: int,
    max_length: int,
) -> tuple[float, list[int], int]:  # fmt: skip
    """XTREME-style padded evaluation with HF's forward: seconds, predictions, padded tokens."""
    hf_encoder, head = model.encoder, model.heads[HEAD]
    model.eval()
    preds: list[int] = []
    padded = 0

    def one_pass(feats: Sequence[dict[str, Any]]) -> None:
        nonlocal padded
        for start in range(0, len(feats), batch_size):
            batch = pack(feats[start : start + batch_size])
            ids, mask, _ = to_padded(batch)  # [S, T]
            ids = torch.nn.functional.pad(ids, (0, max_length - ids.shape[1]), value=1)
            mask = torch.nn.functional.pad(mask, (0, max_length - mask.shape[1]), value=0)
            padded += ids.numel()
            out = hf_encoder(input_ids=ids.to(device), attention_mask=mask.to(device))
            cls = out.last_hidden_state[:, 0]  # [S, H]
            logits = head.out_proj(torch.tanh(head.dense(cls)))  # [S, C]
            preds.extend(logits.argmax(-1).cpu().tolist())

    with torch.inference_mode(), autocast_context(device, "auto"):
        one_pass(features[: max(batch_size, len(features) // 50)])  # warm-up
        preds.clear()
        padded = 0
        bc.synchronize(device)
        start = time.perf_counter()
        one_pass(features)
        bc.synchronize(device)
    return time.perf_counter() - start, preds, padded


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--config", default="small", choices=bc.CONFIG_NAMES)
    p.add_argument("--per-language", type=int, default=XNLI_EVAL_SIZE)
    p.add_argument("--max-tokens", type=int, default=16384, help="xstilts eval token budget")
    p.add_argument("--methods", default="xstilts")
    p.add_argument("--hf-batch-size", type=int, default=128)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--tokenizer", default="xlmr", choices=lengths_mod.TOKENIZERS)
    p.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    if set(args.methods) - set(METHODS):
        p.error(f"methods must be among {METHODS}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the evaluation benchmark and write ``results/eval_throughput_<device>.md`` + json."""
    args = parse_args(argv)
    device = bc.resolve_device(args.device)
    config = bc.model_config(args.config)
    per_lang = lengths_mod.xnli_lengths(args.data_dir, lengths_mod.make_counter(args.tokenizer))
    features = eval_features(per_lang, args.per_language, config.vocab_size, args.seed)
    seq_lens = [len(f["sequences"][0]) for f in features]
    flops = bc.useful_flops(config, seq_lens, train=False)
    peak = bc.default_peak_tflops(device, args.peak_tflops)
    model = build_xstilts_model(config, args.seed).to(device).eval()
    rows = []
    preds: dict[str, list[Any]] = {}
    for method in args.methods:
        with bc.PeakMemory(device) as mem:
            if method == "xstilts":
                seconds, preds[method] = run_xstilts_eval(model, features, device, args.max_tokens)
                # The same batches predict_task forms (attention pays S x T per batch).
                batches = make_batches(
                    features, batch_size=args.max_tokens, max_tokens=args.max_tokens, shuffle=False
                )
                real, processed = padding_efficiency(batches, features)
            else:
                seconds, preds[method], processed = run_hf_padded_eval(
                    model, features, device, args.hf_batch_size, 128
                )
                real = sum(seq_lens)
        rows.append({
            "method": method, "examples": len(features), "seconds": seconds,
            "examples_per_second": len(features) / seconds, "tokens_per_second": real / seconds,
            "padding_fraction": 1 - real / processed,
            "mfu": flops / seconds / (peak * 1e12) if peak else None, "peak_memory_mib": mem.mib,
        })  # fmt: skip
        print(f"  {method}: {seconds:.2f} s", flush=True)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    payload = {
        "environment": bc.environment(device, ["benchmarks/eval_throughput.py", *argv_list]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out")},
        "languages": len(per_lang), "rows": rows, "target_seconds": TARGET_SECONDS,
        "length_summary": lengths_mod.summary(seq_lens),
        "prediction_agreement": _agreement(preds),
    }  # fmt: skip
    markdown = render(payload)
    print(markdown)
    bc.write_results(
        args.out or bc.RESULTS_DIR / f"eval_throughput_{device.type}.md", markdown, payload
    )
    return payload


def _agreement(preds: dict[str, list[Any]]) -> float | None:
    """Share of examples where both methods predict the same class (None with one method)."""
    if len(preds) < 2:
        return None
    a, b = preds.values()
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def render(payload: dict[str, Any]) -> str:
    """The markdown results report."""
    env = payload["environment"]
    headers = ["method", "examples", "seconds", "examples/s", "real tokens/s",
               "padding fraction", "MFU", "peak memory MiB"]  # fmt: skip
    keys = ["method", "examples", "seconds", "examples_per_second", "tokens_per_second",
            "padding_fraction", "mfu", "peak_memory_mib"]  # fmt: skip
    table = bc.markdown_table(headers, [[r[k] for k in keys] for r in payload["rows"]])
    return "\n".join([
        "# Zero-shot evaluation throughput (XNLI-shaped, all languages in one pass)", "",
        f"- command: `{env['command']}`", f"- device: {env['device']}",
        f"- torch {env['torch']}, transformers {env['transformers']}, python {env['python']}",
        f"- date: {env['date']}", f"- settings: {payload['settings']}",
        f"- lengths ({payload['languages']} languages): {payload['length_summary']}", "", table, "",
        f"Target (XLM-R Large, one H100, 75,150 examples): <= {payload['target_seconds']:.0f} s "
        f"for xstilts. Prediction agreement between methods: {payload['prediction_agreement']}."
        " MFU uses 2 N_enc T + 2 N_head S + 4 L H sum(len^2) FLOPs.",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
