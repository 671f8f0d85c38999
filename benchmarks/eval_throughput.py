"""Benchmark: zero-shot XNLI evaluation speed (15 languages x 5,010 examples = 75,150).

Inputs are synthetic ids with the real XNLI length distribution of each language (measured on
the shared dev files with the XLM-R tokenizer, see :mod:`lengths`). Timed end to end, from
features to per-example predictions on the CPU (``--methods``):

* ``xstilts``: :func:`xstilts.training.evaluate.predict_task`, i.e. all languages in ONE
  length-sorted pass, token-budget batches (``--max-tokens``), packed unpadded forward
  (varlen attention on CUDA), bf16 autocast on CUDA, argmax streamed to CPU.
* ``hf_sorted``: HF's own padded forward on exactly the same sorted token-budget batches, each
  padded to its longest sequence (dynamic padding): what HF users get from length sorting. The
  difference to ``xstilts`` is the packed forward alone.
* ``hf_padded``: XTREME-style evaluation, language by language, batches of
  ``--hf-batch-size`` in file order padded to 128, HF's own forward (same precision).

Each method runs ``--repeats`` times, interleaved; figures are medians. Target: <= 15 s for
XLM-R Large on one H100 (see ``gpu_check.sh``). CPU (small config, fewer examples)::

    PYTHONPATH=src python benchmarks/eval_throughput.py --device cpu --config small \\
        --per-language 200 --threads 1
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
from xstilts.models.packed import attention_path
from xstilts.packing import pack, to_padded
from xstilts.tasks.formats.classification import FORMAT
from xstilts.training.batching import make_batches, padding_efficiency
from xstilts.training.evaluate import EvalSettings, autocast_context, predict_task
from xstilts_runs import HEAD, build_xstilts_model

XNLI_EVAL_SIZE = 5010  # XNLI test examples per language
TARGET_SECONDS = 15.0
METHODS = ("xstilts", "hf_sorted", "hf_padded")
MAX_LENGTH = 128


def eval_features(
    per_language: dict[str, list[int]], n_per_language: int, vocab_size: int, seed: int
) -> list[dict[str, Any]]:
    """``n_per_language`` synthetic features per language, languages concatenated."""
    examples: list[bc.Example] = []
    for i, lang in enumerate(sorted(per_language)):
        examples += bc.synthetic_examples(per_language[lang], n_per_language, vocab_size, seed + i)
    return bc.features_of(examples)


def sorted_batches(features: Sequence[dict[str, Any]], max_tokens: int) -> list[list[int]]:
    """The batches :func:`predict_task` forms: one global length sort, a padded-token budget."""
    return make_batches(features, batch_size=max_tokens, max_tokens=max_tokens, shuffle=False)


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


def run_hf_eval(
    model: Any, features: list[dict[str, Any]], device: torch.device,
    batches: Sequence[Sequence[int]], pad_to: int | None,
) -> tuple[float, list[int], int]:  # fmt: skip
    """HF's padded forward over ``batches``: seconds, predictions, tokens processed.

    Args:
        model: The ``XstiltsModel`` (its HF encoder and head weights are used).
        features: All features.
        device: Where the model lives.
        batches: Feature indices per batch, in the order they run.
        pad_to: Pad every batch to this length (``None``: to its longest sequence).
    """
    hf_encoder, head = model.encoder, model.heads[HEAD]
    model.eval()
    preds: list[int] = [-1] * len(features)
    padded = 0

    def one_pass(todo: Sequence[Sequence[int]]) -> None:
        nonlocal padded
        for idx in todo:
            ids, mask, _ = to_padded(pack([features[i] for i in idx]))  # [S, T]
            if pad_to is not None:
                ids = torch.nn.functional.pad(ids, (0, pad_to - ids.shape[1]), value=1)
                mask = torch.nn.functional.pad(mask, (0, pad_to - mask.shape[1]), value=0)
            padded += ids.numel()
            out = hf_encoder(input_ids=ids.to(device), attention_mask=mask.to(device))
            cls = out.last_hidden_state[:, 0]  # [S, H]
            logits = head.out_proj(torch.tanh(head.dense(cls)))  # [S, C]
            for i, p in zip(idx, logits.argmax(-1).cpu().tolist(), strict=True):
                preds[i] = p

    with torch.inference_mode(), autocast_context(device, "auto"):
        one_pass(batches[: max(1, len(batches) // 50)])  # warm-up
        padded = 0
        bc.synchronize(device)
        start = time.perf_counter()
        one_pass(batches)
        bc.synchronize(device)
    return time.perf_counter() - start, preds, padded


def run_eval_method(
    method: str, model: Any, features: list[dict[str, Any]], device: torch.device,
    args: argparse.Namespace,
) -> tuple[float, list[Any], int, int]:  # fmt: skip
    """``(seconds, predictions, real tokens, processed tokens)`` of one method."""
    if method == "xstilts":
        seconds, preds = run_xstilts_eval(model, features, device, args.max_tokens)
        real, processed = padding_efficiency(sorted_batches(features, args.max_tokens), features)
        if attention_path(model.encoder, device, _dtype(device), False).endswith("varlen"):
            processed = real  # varlen attention: no padding anywhere
        return seconds, preds, real, processed
    if method == "hf_sorted":
        batches = sorted_batches(features, args.max_tokens)
        pad_to = None
    else:
        size = args.hf_batch_size
        batches = [list(range(s, min(s + size, len(features))))
                   for s in range(0, len(features), size)]  # fmt: skip
        pad_to = MAX_LENGTH
    seconds, preds, processed = run_hf_eval(model, features, device, batches, pad_to)
    return seconds, preds, sum(len(f["sequences"][0]) for f in features), processed


def _dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def evaluate_methods(
    args: argparse.Namespace, device: torch.device, per_lang: dict[str, list[int]]
) -> dict[str, Any]:
    """Run every method ``args.repeats`` times (interleaved); rows of medians + agreement."""
    config = bc.model_config(args.config)
    features = eval_features(per_lang, args.per_language, config.vocab_size, args.seed)
    seq_lens = [len(f["sequences"][0]) for f in features]
    flops = bc.useful_flops(config, seq_lens, train=False)
    peak = bc.default_peak_tflops(device, args.peak_tflops)
    model = build_xstilts_model(config, args.seed, device).eval()
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    preds: dict[str, list[Any]] = {}
    for _ in range(args.repeats):
        for method in args.methods:
            with bc.PeakMemory(device) as mem:
                seconds, preds[method], real, processed = run_eval_method(
                    method, model, features, device, args
                )
            runs[method].append({"seconds": seconds, "mib": mem.mib, "real": real,
                                 "processed": processed})  # fmt: skip
            print(f"  {method}: {seconds:.2f} s", flush=True)
    rows = []
    for method, mine in runs.items():
        seconds = bc.median([r["seconds"] for r in mine])
        mems = [r["mib"] for r in mine if r["mib"] is not None]
        rows.append({
            "method": method, "examples": len(features), "seconds": seconds, "runs": len(mine),
            "seconds_min": min(r["seconds"] for r in mine),
            "seconds_max": max(r["seconds"] for r in mine),
            "examples_per_second": len(features) / seconds,
            "tokens_per_second": mine[0]["real"] / seconds,
            "padding_fraction": 1 - mine[0]["real"] / mine[0]["processed"],
            "mfu": flops / seconds / (peak * 1e12) if peak else None,
            "peak_memory_mib": max(mems) if mems else None,
        })  # fmt: skip
    attention = attention_path(model.encoder, device, _dtype(device), training=False)
    return {
        "languages": len(per_lang), "rows": rows, "target_seconds": TARGET_SECONDS,
        "length_summary": lengths_mod.summary(seq_lens), "xstilts_attention": attention,
        "prediction_agreement": _agreement(preds),
    }  # fmt: skip


def _agreement(preds: dict[str, list[Any]]) -> dict[str, float]:
    """Share of examples where each method predicts what ``xstilts`` (or the first) does."""
    if len(preds) < 2:
        return {}
    ref_name = "xstilts" if "xstilts" in preds else next(iter(preds))
    ref = preds[ref_name]
    return {
        f"{m}/{ref_name}": sum(a == b for a, b in zip(p, ref, strict=True)) / len(ref)
        for m, p in preds.items()
        if m != ref_name
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see module doc)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--config", default="small", choices=bc.CONFIG_NAMES)
    p.add_argument("--per-language", type=int, default=XNLI_EVAL_SIZE)
    p.add_argument("--max-tokens", type=int, default=16384, help="xstilts eval token budget")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hf-batch-size", type=int, default=128)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    p.add_argument("--tokenizer", default="xlmr", choices=lengths_mod.TOKENIZERS)
    p.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    p.add_argument("--lengths-file", type=Path, default=None, help="a length pack instead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    if set(args.methods) - set(METHODS):
        p.error(f"methods must be among {METHODS}")
    return args


def xnli_per_language(args: argparse.Namespace) -> dict[str, list[int]]:
    """Language -> XNLI lengths, from ``--lengths-file`` or the shared data."""
    if args.lengths_file:
        return {k: list(v) for k, v in lengths_mod.load_pack(args.lengths_file)["xnli"].items()}
    return lengths_mod.xnli_lengths(args.data_dir, lengths_mod.make_counter(args.tokenizer))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the evaluation benchmark and write ``results/eval_throughput_<device>.md`` + json."""
    args = parse_args(argv)
    device = bc.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    env = bc.environment(device, ["benchmarks/eval_throughput.py", *argv_list])
    result = evaluate_methods(args, device, xnli_per_language(args))
    payload = {
        "environment": bc.finish_environment(env),
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("data_dir", "out")},
        **result,
    }
    markdown = render(payload)
    print(markdown)
    bc.write_results(
        args.out or bc.RESULTS_DIR / f"eval_throughput_{device.type}.md", markdown, payload
    )
    return payload


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table of evaluation rows (also used by ``gpu_check.py``)."""
    headers = ["method", "examples", "seconds (median)", "range", "examples/s", "real tokens/s",
               "padding fraction", "MFU", "peak GPU MiB", "runs"]  # fmt: skip
    return bc.markdown_table(headers, [
        [r["method"], r["examples"], r["seconds"], f"{r['seconds_min']:.3g}-{r['seconds_max']:.3g}",
         r["examples_per_second"], r["tokens_per_second"], r["padding_fraction"], r["mfu"],
         r["peak_memory_mib"], r["runs"]]
        for r in rows
    ])  # fmt: skip


def render(payload: dict[str, Any]) -> str:
    """The markdown results report."""
    return "\n".join([
        "# Zero-shot evaluation throughput (XNLI-shaped, all languages in one pass)", "",
        *bc.environment_lines(payload["environment"]), f"- settings: {payload['settings']}",
        f"- lengths ({payload['languages']} languages): {payload['length_summary']}",
        f"- xstilts attention path: {payload['xstilts_attention']}", "",
        table(payload["rows"]), "",
        f"Target (XLM-R Large, one H100, 75,150 examples): <= {payload['target_seconds']:.0f} s "
        f"for xstilts. Prediction agreement with xstilts: {payload['prediction_agreement']}."
        " MFU uses 2 N_enc T + 2 N_head S + 4 L H sum(len^2) FLOPs. hf_sorted runs the same"
        " batches as xstilts, so their ratio is the packed forward's own gain.",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
