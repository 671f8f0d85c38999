"""How far a stage moved the encoder: weight distance from the base encoder of its chain.

An intermediate stage that barely moves the encoder cannot change what the target learns (the
issue-16 study found ~7 optimizer steps per intermediate stage: the encoders hardly moved). Each
intermediate stage therefore records, in its ``metrics.json``::

    "encoder_movement": {"l2": ..., "relative": ..., "base_norm": ..., "tensors": ...,
                         "frozen_tensors": ..., "base_stage": "<id>"}

``l2`` = ``||w - w0||_2`` over every trainable encoder tensor (``w0``: the chain's base stage,
i.e. the pretrained encoder), ``relative`` = ``l2 / ||w0||_2`` over the same tensors. Frozen
tensors (``train.freeze``) are left out of both: they cannot move, and the 96 M-parameter embedding
table of e5-small would otherwise dominate the denominator and hide all movement.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from xstilts.errors import CheckpointError

ENCODER_WEIGHTS = "encoder.safetensors"  # models.model_io's file name (no import: one way)


def base_stage_dir(stage_dir: Path) -> Path:
    """The base stage of the chain ``stage_dir`` belongs to (stage dirs are siblings).

    Raises:
        CheckpointError: a stage on the way has no readable ``spec.json``.
    """
    current = Path(stage_dir)
    for _ in range(64):  # a chain is a handful of stages; a cycle would be a corrupt cache
        spec_path = current / "spec.json"
        try:
            parent = json.loads(spec_path.read_text()).get("parent")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read the stage spec: {exc}", file=spec_path) from exc
        if not parent:
            return current
        current = current.parent / parent
    raise CheckpointError("stage parents form a cycle", file=stage_dir)


@torch.no_grad()
def encoder_movement(encoder: nn.Module, base_dir: Path) -> dict[str, Any]:
    """Distance of ``encoder``'s trainable weights from the base stage's (module doc).

    Args:
        encoder: The trained encoder (any device; compared in float64 on CPU).
        base_dir: The base stage directory (holds ``encoder.safetensors``).

    Returns:
        ``l2``, ``relative``, ``base_norm``, ``tensors`` (compared), ``frozen_tensors`` (left
        out) and ``base_stage`` (the base dir's name).

    Raises:
        CheckpointError: the base weights are missing or lack a tensor of ``encoder``.
    """
    path = Path(base_dir) / ENCODER_WEIGHTS
    if not path.is_file():
        raise CheckpointError("base encoder weights are missing", file=path)
    sq_diff = sq_base = 0.0
    compared = frozen = 0
    with safe_open(str(path), framework="pt", device="cpu") as base:
        names = set(base.keys())
        for name, param in encoder.named_parameters():
            if not param.requires_grad:
                frozen += 1
                continue
            if name not in names:
                raise CheckpointError(f"base encoder has no tensor {name!r}", file=path)
            w0 = base.get_tensor(name).to(torch.float64)  # one tensor at a time: low memory
            w = param.detach().to("cpu", torch.float64)
            sq_diff += float(torch.sum((w - w0) ** 2))
            sq_base += float(torch.sum(w0**2))
            compared += 1
    l2 = math.sqrt(sq_diff)
    base_norm = math.sqrt(sq_base)
    return {
        "l2": l2,
        "relative": l2 / base_norm if base_norm else 0.0,
        "base_norm": base_norm,
        "tensors": compared,
        "frozen_tensors": frozen,
        "base_stage": Path(base_dir).name,
    }
