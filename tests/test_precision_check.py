"""The plan names bf16 training on a CPU without native bf16 (emulated there: slower than fp32)."""

from __future__ import annotations

from pathlib import Path

from xstilts.pipelines.precision_check import bf16_cpu_warning, cpu_has_native_bf16
from xstilts.pipelines.stage_spec import StageSpec

AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n"
AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2\n"


def _cpu(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def _spec(precision: str) -> StageSpec:
    return StageSpec(
        kind="train", tasks=("mnli",), role="intermediate", encoder={"name": "x"}, parent=None,
        seed=1, train={"precision": precision},
    )  # fmt: skip


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    assert cpu_has_native_bf16(_cpu(tmp_path, AMX)) is True
    assert cpu_has_native_bf16(_cpu(tmp_path, AVX2)) is False
    assert cpu_has_native_bf16(_cpu(tmp_path, "processor\t: 0\n")) is None  # no flags line
    assert cpu_has_native_bf16(tmp_path / "missing") is None


def test_warning_only_for_bf16_training_on_a_cpu_without_it(tmp_path: Path) -> None:
    avx2, amx = _cpu(tmp_path, AVX2), tmp_path / "amx"
    amx.write_text(AMX)
    warning = bf16_cpu_warning([_spec("bf16")], avx2)
    assert warning is not None and "train.precision=fp32" in warning and str(avx2) in warning
    assert bf16_cpu_warning([_spec("bf16")], amx) is None
    assert bf16_cpu_warning([_spec("fp32"), _spec("auto")], avx2) is None
    assert bf16_cpu_warning([_spec("bf16")], tmp_path / "missing") is None  # unknown: silent
