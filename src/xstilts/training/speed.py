"""Recorded speed settings of a training stage: frozen parts, and what the stage ran with.

``train.freeze`` is part of the stage spec (and so of the stage id). ``freeze: [embeddings]``
freezes the encoder's embedding layer (``encoder.embeddings``: the word, position and token-type
tables and their LayerNorm, the "embedding layer" frozen by Wu & Dredze, 2019). For XLM-R
Large the word table is 250,002 x 1024 = 256 M of its 560 M parameters, so AdamW then reads and
writes less than half of the model at every step, and no gradient is computed for the table.
``layer.N`` / ``layers.A-B`` also freeze transformer layers (see
:func:`xstilts.settings.expand_part`). Frozen parameters get no gradient and no optimizer state,
and stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xstilts.errors import ConfigError
from xstilts.models.packed import attention_path
from xstilts.settings import FREEZE_HELP, freeze_units

# train.freeze "embeddings" -> the encoder submodule it freezes; layers are found by _layer_list.
FREEZABLE: dict[str, str] = {"embeddings": "embeddings"}
# Where encoder families keep their transformer layers (XLM-R/BERT, DistilBERT, others).
_LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "encoder.layers")


def _layer_list(encoder: nn.Module) -> nn.ModuleList | None:
    for path in _LAYER_LISTS:
        try:
            found = encoder.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, nn.ModuleList):
            return found
    return None


def freeze_parameters(model: nn.Module, parts: Sequence[str]) -> list[str]:
    """Stop training ``parts`` of ``model``'s encoder (before the optimizer is built).

    Args:
        model: An ``XstiltsModel`` (``model.encoder`` is the HF encoder).
        parts: ``train.freeze`` entries (:func:`xstilts.settings.expand_part`).

    Returns:
        Names of the parameters frozen (relative to ``model``).

    Raises:
        ConfigError: On an unknown part, or an encoder without that submodule.
    """
    frozen: list[str] = []
    encoder = getattr(model, "encoder", None)
    for unit in freeze_units(parts):
        if unit in FREEZABLE:
            path = FREEZABLE[unit]
            module = getattr(encoder, path, None)
        elif unit.startswith("layer."):
            layers = _layer_list(encoder) if isinstance(encoder, nn.Module) else None
            index = int(unit.split(".")[1])
            if layers is None or index >= len(layers):
                have = "no layer list" if layers is None else f"layers 0-{len(layers) - 1}"
                raise ConfigError(
                    f"cannot freeze {unit!r}: this encoder has {have}", key="train.freeze"
                )
            assert isinstance(encoder, nn.Module)  # narrowing: `layers` was found in it
            path = f"{_layer_path(encoder, layers)}.{index}"
            module = layers[index]
        else:
            raise ConfigError(
                f"cannot freeze {unit!r}", key="train.freeze", hint=f"one of: {FREEZE_HELP}"
            )
        if not isinstance(module, nn.Module):
            raise ConfigError(f"this encoder has no {path!r} module to freeze", key="train.freeze")
        for name, param in module.named_parameters():
            param.requires_grad_(False)
            frozen.append(f"encoder.{path}.{name}")
    return frozen


def _layer_path(encoder: nn.Module, layers: nn.ModuleList) -> str:
    """The dotted name of ``layers`` inside ``encoder`` (for the frozen parameter names)."""
    return next(name for name, module in encoder.named_modules() if module is layers)


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
