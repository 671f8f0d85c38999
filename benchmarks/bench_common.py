"""Shared pieces of the throughput benchmarks: model configs, synthetic data, FLOPs, reporting.

FLOPs (the MFU numerator) count only *useful* work, identical for every method on the same
examples, so padding never raises anyone's MFU:

* training: ``6 * N_enc * T + 6 * N_head * S + 12 * n_layers * H * sum_s L_s^2``
* inference: ``2 * N_enc * T + 2 * N_head * S + 4 * n_layers * H * sum_s L_s^2``

with ``T`` real tokens, ``S`` sequences of real lengths ``L_s``, ``N_enc`` the encoder's
non-embedding parameters (every weight except the word/position/token-type tables, whose lookup
is not a matmul), ``N_head`` the classification head's parameters (it runs once per sequence, on
``<s>``), ``H`` the hidden size. The ``L^2`` term is attention's ``QK^T`` and ``AV`` matmuls
(``4 * H * L`` FLOPs per token and layer forward, times 3 for forward + backward).
MFU = FLOPs / seconds / peak, peak from ``--peak-tflops`` (default 989 on CUDA: H100/H200 SXM
dense bf16; none on CPU, where MFU is reported as n/a).

Timing: a :class:`Stopwatch` marks chosen optimizer steps (the GPU is synchronised only there)
and records wall time and the process's CPU time (all threads) between the marks. Results files
carry the machine, its load average (``os.getloadavg``) before and after, the thread count and
the library versions.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import XLMRobertaConfig

from xstilts.errors import ConfigError
from xstilts.models.encoder import tiny_config, xlmr_large_config

RESULTS_DIR = Path(__file__).resolve().parent / "results"
H100_BF16_TFLOPS = 989.0  # H100 SXM and H200 (same compute die): dense bf16
H100_PCIE_BF16_TFLOPS = 756.0
_PEAK_GPUS = ("H100", "H200")
NUM_LABELS = 3
# Token ids below this are XLM-R specials (<s>, <pad>, </s>, <unk>, <mask> region): never sampled.
FIRST_REGULAR_ID = 5

# Encoder shapes by name; "large" is xlm-roberta-large (random weights, no download).
CONFIGS: dict[str, dict[str, int]] = {
    "tiny": {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 128},
    "small": {"vocab_size": 32000, "hidden_size": 256, "num_hidden_layers": 4,
              "num_attention_heads": 4, "intermediate_size": 1024},
    # multilingual-e5-small's shape (the built-in encoder; random weights run at the same speed).
    "e5small": {"vocab_size": 250002, "hidden_size": 384, "num_hidden_layers": 12,
                "num_attention_heads": 12, "intermediate_size": 1536},
}  # fmt: skip
CONFIG_NAMES = (*CONFIGS, "large")


def model_config(name: str, *, dropout: float | None = None) -> XLMRobertaConfig:
    """XLM-R config of a named size with a 3-way classification head.

    Args:
        name: ``tiny``, ``small``, ``e5small`` or ``large`` (XLM-R Large shape, vocab 250,002).
        dropout: Override hidden and attention dropout (0 for the same-loss check).

    Raises:
        ConfigError: On an unknown name.
    """
    if name == "large":
        config = xlmr_large_config(vocab_size=250002)
    elif name in CONFIGS:
        config = tiny_config(**CONFIGS[name])
    else:
        raise ConfigError(f"unknown benchmark config {name!r}", hint=f"one of {CONFIG_NAMES}")
    config.num_labels = NUM_LABELS
    if dropout is not None:
        config.hidden_dropout_prob = dropout
        config.attention_probs_dropout_prob = dropout
    return config


@dataclass
class Example:
    """One synthetic classification example with a real length."""

    ids: list[int]
    label: int


def synthetic_examples(lengths: Sequence[int], n: int, vocab_size: int, seed: int) -> list[Example]:
    """``n`` examples whose lengths are drawn (with replacement) from ``lengths``.

    Ids are ``<s> random... </s>``; the middle ``</s></s>`` of a pair is not reproduced (it
    changes no cost), labels are uniform over :data:`NUM_LABELS`.
    """
    rng = random.Random(seed)
    out = []
    for length in rng.choices(list(lengths), k=n):
        body = [rng.randrange(FIRST_REGULAR_ID, vocab_size) for _ in range(max(length - 2, 0))]
        out.append(Example(ids=[0, *body, 2], label=rng.randrange(NUM_LABELS)))
    return out


def features_of(examples: Sequence[Example]) -> list[dict[str, Any]]:
    """xstilts features (see :mod:`xstilts.packing`) of synthetic examples."""
    return [
        {"sequences": [ex.ids], "label": ex.label, "example_index": i}
        for i, ex in enumerate(examples)
    ]


def param_counts(config: XLMRobertaConfig) -> tuple[int, int]:
    """``(N_enc, N_head)``: non-embedding encoder and classification-head parameters."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    # Per layer: q, k, v, attention output (4 H^2 + 4 H), FFN (2 H ff + ff + H), 2 LayerNorms.
    per_layer = 4 * h * h + 4 * h + 2 * h * ff + ff + h + 4 * h
    encoder = layers * per_layer + 2 * h  # + the embedding LayerNorm
    head = h * h + h + h * NUM_LABELS + NUM_LABELS
    return encoder, head


def useful_flops(config: XLMRobertaConfig, seq_lens: Sequence[int], train: bool) -> float:
    """FLOPs of the real tokens of ``seq_lens`` (module doc formula)."""
    n_enc, n_head = param_counts(config)
    tokens = sum(seq_lens)
    squares = sum(n * n for n in seq_lens)
    mult = 3 if train else 1
    attention = 4 * config.num_hidden_layers * config.hidden_size * squares
    return float(mult * (2 * n_enc * tokens + 2 * n_head * len(seq_lens) + attention))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA device is visible")
    return torch.device(name)


def default_peak_tflops(device: torch.device, given: float | None) -> float | None:
    """The MFU denominator: ``given``, else the H100/H200 bf16 dense peak on those GPUs.

    None on CPU and on other GPUs (MFU is then reported as n/a rather than against a wrong
    peak); pass ``--peak-tflops`` there.
    """
    if given is not None:
        return given
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    if not any(g in name for g in _PEAK_GPUS):
        return None
    return H100_PCIE_BF16_TFLOPS if "PCIe" in name else H100_BF16_TFLOPS


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so ``perf_counter`` measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak CUDA memory of a block (``max_memory_allocated``); None on CPU.

    A CPU process only exposes its lifetime high-water mark (``ru_maxrss``), which says nothing
    about a block that runs after a larger one, so no CPU figure is reported.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """Human-readable device (GPU name, or CPU model and thread count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_model()} ({torch.get_num_threads()} torch threads)"


def machine_load() -> list[float]:
    """The 1-, 5- and 15-minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def environment(device: torch.device, argv: Sequence[str]) -> dict[str, Any]:
    """Command line, device, machine, load, library versions and date for a results file.

    Call :func:`finish_environment` at the end to add the load average after the run.
    """
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in argv),
        "device": device_name(device),
        "machine": f"{platform.node() or 'unknown'}: {os.cpu_count()} logical CPUs, {_cpu_model()}",
        "torch_threads": torch.get_num_threads(),
        "load_avg_start": machine_load(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def finish_environment(env: dict[str, Any]) -> dict[str, Any]:
    """Add the load average after the run (other jobs on a shared machine show up here)."""
    env["load_avg_end"] = machine_load()
    return env


def environment_lines(env: dict[str, Any]) -> list[str]:
    """Markdown bullet lines for a results file header."""
    return [
        f"- command: `{env['command']}`",
        f"- device: {env['device']}; machine: {env['machine']}",
        f"- load average (1/5/15 min) at start {env['load_avg_start']}, at end "
        f"{env.get('load_avg_end', 'n/a')}; torch threads {env['torch_threads']}",
        f"- torch {env['torch']}, transformers {env['transformers']}, python {env['python']}",
        f"- date: {env['date']}",
    ]


def median(values: Sequence[float]) -> float:
    """The median (the figure every table reports for repeated runs)."""
    return float(statistics.median(values))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (floats with 3 significant decimals where useful)."""

    def cell(value: Any) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(path_md: Path, markdown: str, payload: dict[str, Any]) -> None:
    """Write the markdown report and, next to it, the same data as JSON."""
    path_md.parent.mkdir(parents=True, exist_ok=True)
    path_md.write_text(markdown, encoding="utf-8")
    path_md.with_suffix(".json").write_text(
        json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


class Stopwatch:
    """Wall and process CPU time between two chosen steps (GPU synchronised only at those)."""

    def __init__(self, device: torch.device, start_after: int, stop_after: int) -> None:
        self.device = device
        self.start_after = start_after
        self.stop_after = stop_after
        self.start: float | None = None
        self.stop: float | None = None
        self.cpu_start = self.cpu_stop = 0.0

    def step_done(self, step: int) -> None:
        """Call after optimizer step ``step`` (1-based; 0 = before the first step)."""
        if step == self.start_after:
            synchronize(self.device)
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
        if step == self.stop_after:
            synchronize(self.device)
            self.stop, self.cpu_stop = time.perf_counter(), time.process_time()

    @property
    def seconds(self) -> float:
        """Wall time between the two marks."""
        if self.start is None or self.stop is None:
            raise RuntimeError("stopwatch marks not reached (fewer steps ran than planned)")
        return self.stop - self.start

    @property
    def cpu_seconds(self) -> float:
        """Process CPU time (all threads) between the two marks."""
        self.seconds  # noqa: B018  (raises when a mark is missing)
        return self.cpu_stop - self.cpu_start
