"""Recorded speed settings of a training stage: frozen parts, and what the stage ran with.

``train.freeze`` is part of the stage spec (and so of the stage id). ``freeze: [embeddings]``
freezes the encoder's embedding layer (``encoder.embeddings``: the word, position and token-type
tables and their LayerNorm, the "embedding layer" frozen by Wu & Dredze, 2019). For XLM-R
Large the word table is 250,002 x 1024 = 256 M of its 560 M parameters, so AdamW then reads and
writes less than half of the model at every step, and no gradient is computed for the table.
Frozen parameters get no gradient and no optimizer state, and stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xstilts.errors import ConfigError
from xstilts.models.packed import attention_path

# train.freeze values -> the encoder submodule they freeze.
FREEZABLE: dict[str, str] = {"embeddings": "embeddings"}


def freeze_parameters(model: nn.Module, parts: Sequence[str]) -> list[str]:
    """Stop training ``parts`` of ``model``'s encoder (before the optimizer is built).

    Args:
        model: An ``XstiltsModel`` (``model.encoder`` is the HF encoder).
        parts: Names from :data:`FREEZABLE`.

    Returns:
        Names of the parameters frozen (relative to ``model``).

    Raises:
        ConfigError: On an unknown part, or an encoder without that submodule.
    """
    frozen: list[str] = []
    for part in parts:
        if part not in FREEZABLE:
            raise ConfigError(
                f"cannot freeze {part!r}", key="train.freeze", hint=f"one of {sorted(FREEZABLE)}"
            )
        module = getattr(getattr(model, "encoder", None), FREEZABLE[part], None)
        if not isinstance(module, nn.Module):
            raise ConfigError(
                f"this encoder has no {FREEZABLE[part]!r} module to freeze", key="train.freeze"
            )
        for name, param in module.named_parameters():
            param.requires_grad_(False)
            frozen.append(f"encoder.{FREEZABLE[part]}.{name}")
    return frozen


def compute_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The matmul dtype of a stage's precision: bf16 autocast ("auto" = CUDA only) or fp32."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.bfloat16 if bf16 else torch.float32


def training_attention(model: nn.Module, device: torch.device, precision: str) -> str:
    """The attention path training takes (:func:`xstilts.models.packed.attention_path`)."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module) or not hasattr(encoder, "config"):
        return "n/a"
    return attention_path(encoder, device, compute_dtype(device, precision), training=True)
