"""Tokenizers: a tiny XLM-R-like one trained in-process (tests, demos) and real ones from disk.

The tiny tokenizer mirrors XLM-R's conventions so every task type runs unchanged on it:
a BPE model over SentencePiece-style Metaspace pieces, ids ``<s>``=0, ``<pad>``=1, ``</s>``=2,
``<unk>``=3, ``<mask>`` = last id, and RoBERTa-style templates ``<s> A </s>`` and
``<s> A </s></s> B </s>``. It is a fast tokenizer, so offset mappings (QA) and ``word_ids``
(tagging) work.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
MASK_TOKEN = "<mask>"
# Large enough for every test/demo sequence; real models bring their own limit.
TINY_MODEL_MAX_LENGTH = 512


def xlmr_fast_tokenizer(max_length: int, **source: Any) -> PreTrainedTokenizerFast:
    """An HF fast tokenizer with XLM-R's special tokens.

    Args:
        max_length: ``model_max_length``.
        **source: ``tokenizer_object=`` (a ``tokenizers.Tokenizer``) or ``tokenizer_file=``.
    """
    return PreTrainedTokenizerFast(
        **source,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token=MASK_TOKEN,
        model_max_length=max_length,
    )


def _post_processor(tok: Tokenizer) -> processors.TemplateProcessing:
    """RoBERTa/XLM-R templates (pair = ``<s> A </s></s> B </s>``), segment ids all 0."""
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    return processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000) -> PreTrainedTokenizerFast:
    """Train a small XLM-R-like tokenizer on ``texts``.

    Deterministic for the same ``texts``, so tests and demos get identical ids on every run. BPE
    rather than XLM-R's Unigram because the ``tokenizers`` Unigram trainer sums scores in a
    thread- and hash-order-dependent way: two runs give different ids for tied pieces.

    Args:
        texts: Training sentences (iterated once; any language).
        vocab_size: Target size including special tokens; a small corpus may yield fewer
            pieces. ``<mask>`` is added after training, as the last id.

    Returns:
        A fast tokenizer with XLM-R's special tokens and templates.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # NFKC as XLM-R's SentencePiece normaliser does; runs of spaces collapse to one.
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.add_special_tokens([MASK_TOKEN])
    tok.post_processor = _post_processor(tok)
    return xlmr_fast_tokenizer(TINY_MODEL_MAX_LENGTH, tokenizer_object=tok)


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """Load a real tokenizer (e.g. ``xlm-roberta-base`` or a saved stage directory).

    Args:
        name_or_path: Hub name or local directory, as for ``AutoTokenizer.from_pretrained``
            (a ``builtin:`` encoder is resolved to its folder by the caller).
    """
    return AutoTokenizer.from_pretrained(str(name_or_path))
