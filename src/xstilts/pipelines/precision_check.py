"""Plan-time check: bf16 asked for on a CPU that has no native bf16 arithmetic.

On a CPU with AMX or AVX512-BF16, bf16 autocast is the fast path (measured on this project's
2-core machine, e5-small shape, one thread: forward 2.9x and a training step 2.1x faster than
fp32; benchmarks/README.md). Without those instructions the bf16 matmuls are emulated and slower
than fp32, so a config tuned on one machine (``configs/demo.yaml``) would crawl on another.
The check reads ``/proc/cpuinfo`` (no torch: the planner must stay importable without it) and
stays silent where that file does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xstilts.pipelines.stage_spec import StageSpec

# The CPU flags (as /proc/cpuinfo spells them) of native bf16 matrix arithmetic.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool | None:
    """Whether this CPU computes bf16 natively; ``None`` when it cannot be told (no cpuinfo).

    Args:
        cpuinfo: The file to read (``/proc/cpuinfo``; a test passes its own).

    Returns:
        ``True`` when a ``flags`` line names AMX-BF16 or AVX512-BF16, ``False`` when flags are
        listed without them, ``None`` when the file is missing or lists no flags.
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & NATIVE_BF16_FLAGS)


def bf16_cpu_warning(specs: Iterable[StageSpec], cpuinfo: Path = CPUINFO) -> str | None:
    """A warning when a stage trains in bf16 and this CPU has no native bf16.

    Args:
        specs: Every stage of the plan.
        cpuinfo: The CPU description to read (see :func:`cpu_has_native_bf16`).

    Returns:
        The warning, or ``None`` (no bf16 stage, native bf16, or an unknown CPU).
    """
    if not any(s.train.get("precision") == "bf16" for s in specs if s.kind == "train"):
        return None
    if cpu_has_native_bf16(cpuinfo) is not False:
        return None
    return (
        "train.precision bf16: this CPU has no native bf16 (no amx_bf16 or avx512_bf16 in"
        f" {cpuinfo}), so bf16 autocast is emulated and slower than fp32 on it; set"
        " train.precision=fp32 (and evaluation.precision=fp32) unless the stages run on a GPU"
    )


if __name__ == "__main__":  # scripts/demo.sh: the precision to run the main job in here
    print("fp32" if cpu_has_native_bf16() is False else "bf16")
