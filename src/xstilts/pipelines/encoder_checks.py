"""Encoder settings checked without building a model: tiny-encoder shapes and position tables.

A tiny encoder whose ``hidden_size`` is not a multiple of ``num_attention_heads`` fails inside
``transformers`` when the first stage builds it; a ``max_length`` beyond the encoder's position
table fails with an index error in the middle of a forward pass. Both are known from the YAML.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from xstilts.errors import ConfigError

# Settings that are counts (>= 1) and their meaning in errors.
_COUNTS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "type_vocab_size",
)  # fmt: skip
# Activations transformers' ACT2FN knows (importing transformers here would cost seconds).
ACTIVATIONS = (
    "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "relu6",
    "silu", "swish", "tanh", "sigmoid", "mish", "linear", "leaky_relu",
)  # fmt: skip
# RoBERTa-family position ids start after the padding index (pad 1 -> first position 2), so a
# table of 514 rows holds 512 tokens.
ROBERTA_TYPES = ("xlm-roberta", "roberta", "camembert", "xlm-roberta-xl", "xmod")
ROBERTA_OFFSET = 2
# Hub ids whose table is known without a download (XLM-R base and large: 514 rows).
KNOWN_POSITIONS = {
    name: 514
    for name in (
        "xlm-roberta-base", "xlm-roberta-large", "FacebookAI/xlm-roberta-base",
        "FacebookAI/xlm-roberta-large",
    )
}  # fmt: skip
_TINY_DEFAULT_POSITIONS = 514  # models.encoder.TINY_DEFAULTS


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    # math.isfinite(10**400) overflows: integers are finite anyway.
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def check_tiny(tiny: Mapping[str, Any], tokenizer: Mapping[str, Any]) -> None:
    """Validate a tiny encoder's settings (``encoder.tiny``) and its tokenizer's.

    Raises:
        ConfigError: a count that is not an integer >= 1, a bad probability, activation or
            epsilon, or ``hidden_size`` not divisible by ``num_attention_heads``.
    """
    where = "encoder.tiny"
    for key in _COUNTS:
        if key in tiny and not (_is_int(tiny[key]) and tiny[key] >= 1):
            raise ConfigError(
                f"bad value {tiny[key]!r}: must be an integer >= 1", key=f"{where}.{key}"
            )
    positions = tiny.get("max_position_embeddings", _TINY_DEFAULT_POSITIONS)
    if not (_is_int(positions) and positions > ROBERTA_OFFSET):
        raise ConfigError(
            f"bad value {positions!r}: must be an integer > {ROBERTA_OFFSET} "
            "(XLM-R positions start after the padding index)",
            key=f"{where}.max_position_embeddings",
        )
    if not _is_int(tiny.get("seed", 0)):
        raise ConfigError(f"bad value {tiny['seed']!r}: must be an integer", key=f"{where}.seed")
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if key in tiny and not (_is_num(tiny[key]) and 0 <= tiny[key] < 1):
            raise ConfigError(
                f"bad value {tiny[key]!r}: must be a number in [0, 1)", key=f"{where}.{key}"
            )
    if "layer_norm_eps" in tiny and not (
        _is_num(tiny["layer_norm_eps"]) and tiny["layer_norm_eps"] > 0
    ):
        raise ConfigError(
            f"bad value {tiny['layer_norm_eps']!r}: must be a number > 0",
            key=f"{where}.layer_norm_eps",
        )
    if "hidden_act" in tiny and tiny["hidden_act"] not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {tiny['hidden_act']!r}", key=f"{where}.hidden_act",
            hint=f"one of {', '.join(ACTIVATIONS)}",
        )  # fmt: skip
    hidden, heads = tiny["hidden_size"], tiny["num_attention_heads"]
    if hidden % heads:
        raise ConfigError(
            f"hidden_size {hidden} is not a multiple of num_attention_heads {heads} "
            "(each head gets hidden_size / heads dimensions)",
            key=f"{where}.num_attention_heads",
            hint=f"e.g. num_attention_heads: {math.gcd(hidden, heads)}",
        )
    for key in ("max_lines", "vocab_size"):
        value = tokenizer.get(key)
        if not (_is_int(value) and value >= 1):
            raise ConfigError(
                f"bad value {value!r}: must be an integer >= 1", key=f"encoder.tokenizer.{key}"
            )


def _local_config(name: str) -> Path | None:
    path = Path(name).expanduser() / "config.json"
    try:
        return path if path.is_file() else None
    except OSError:
        return None


# Transformer layers of encoders known by name (no config on disk to read at plan time).
KNOWN_LAYERS = {
    "builtin:multilingual-e5-small": 12, "xlm-roberta-base": 12, "xlm-roberta-large": 24,
}  # fmt: skip


def encoder_layers(encoder: Mapping[str, Any]) -> int | None:
    """Transformer layers of the experiment's encoder, or ``None`` where unknown before loading."""
    if "tiny" in encoder:
        return int(encoder["tiny"]["num_hidden_layers"])
    name = str(encoder.get("name", ""))
    config = _local_config(name)
    if config is None:
        return KNOWN_LAYERS.get(name)
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the loader reports an unreadable config with its own error


def position_limit(encoder: Mapping[str, Any]) -> tuple[int, str, str] | None:
    """The longest input (tokens) the encoder's position table holds, and where it is set.

    Returns:
        ``(max tokens, where it comes from, the YAML key to name)``, or ``None`` for a hub
        model this module does not know (then it is checked when the model is loaded).

    Raises:
        ConfigError: a local model directory whose ``config.json`` cannot be read.
    """
    if "tiny" in encoder:
        rows = encoder["tiny"].get("max_position_embeddings", _TINY_DEFAULT_POSITIONS)
        key = "encoder.tiny.max_position_embeddings"
        return rows - ROBERTA_OFFSET, f"{key} {rows} - {ROBERTA_OFFSET}", key
    name = str(encoder.get("name", ""))
    config = _local_config(name)
    if config is None:
        rows = KNOWN_POSITIONS.get(name)
        return (rows - ROBERTA_OFFSET, f"{name}'s config", "encoder.name") if rows else None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        rows = int(data["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read max_position_embeddings from {config}: {exc}", key="encoder.name"
        ) from None
    offset = ROBERTA_OFFSET if data.get("model_type") in ROBERTA_TYPES else 0
    return rows - offset, f"{config}: max_position_embeddings {rows}", "encoder.name"


# Encoders known by name to carry XLM-R's SentencePiece Unigram tokenizer (trimmable).
UNIGRAM_ENCODERS = ("builtin:multilingual-e5-small", *KNOWN_POSITIONS)
TRIM_KEY = "encoder.trim_vocab"


def check_trim(encoder: Mapping[str, Any]) -> None:
    """Refuse ``encoder.trim_vocab: true`` where the tokenizer cannot be trimmed (plan time).

    Trimming (:mod:`xstilts.models.trim_vocab`) keeps the pieces of each text's best Unigram
    segmentation; that proves nothing for BPE, whose merges need pieces the text never shows.
    A local model directory is judged by its ``tokenizer.json``; a hub id only when it is
    known here, since telling would need a download.

    Raises:
        ConfigError: naming ``encoder.trim_vocab``, for a tiny encoder (its trained BPE
            tokenizer), a local directory without a Unigram ``tokenizer.json``, or a hub id
            not known to be XLM-R-style.
    """
    if not encoder.get("trim_vocab"):
        return
    if "tiny" in encoder:
        raise ConfigError(
            "a tiny encoder's tokenizer is a BPE trained on the experiment's own text: it has "
            "no unused vocabulary to trim, and BPE cannot be trimmed safely",
            key=TRIM_KEY, hint="remove trim_vocab, or use an XLM-R-style encoder.name",
        )  # fmt: skip
    name = str(encoder.get("name", ""))
    local = Path(name).expanduser()
    if local.is_dir():
        path = local / "tokenizer.json"
        try:
            kind = json.loads(path.read_text(encoding="utf-8"))["model"]["type"]
        except (OSError, ValueError, KeyError, TypeError):
            kind = None
        if kind != "Unigram":
            found = f"a {kind} model" if kind else "no readable tokenizer.json"
            raise ConfigError(
                f"{path}: {found}; only Unigram tokenizers (XLM-R, SentencePiece) can be "
                "trimmed", key=TRIM_KEY, hint="remove trim_vocab for this encoder",
            )  # fmt: skip
        return
    if name not in UNIGRAM_ENCODERS:
        raise ConfigError(
            f"cannot tell before downloading whether {name!r} has a Unigram tokenizer",
            key=TRIM_KEY,
            hint="use a local model directory with its tokenizer.json, or one of: "
            + ", ".join(UNIGRAM_ENCODERS),
        )
