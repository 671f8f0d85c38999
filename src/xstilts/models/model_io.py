"""Saving and loading an :class:`~xstilts.models.model.XstiltsModel` in a stage directory.

Files (each written to a temporary name and renamed, so a crash never leaves half a file):

* ``encoder.safetensors``: encoder ``state_dict`` (shared tensors stored once each);
* ``encoder_config.json``: the HF config (``model_type`` picks the class on load);
* ``heads.safetensors``: head weights under ``"<head>::<parameter>"``;
* ``heads.json``: whatever head description the caller gives (task, type, featurize settings).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from xstilts.errors import CheckpointError
from xstilts.fileio import atomic_write
from xstilts.models.model import XstiltsModel

ENCODER_WEIGHTS = "encoder.safetensors"
ENCODER_CONFIG = "encoder_config.json"
HEADS_WEIGHTS = "heads.safetensors"
HEADS_INFO = "heads.json"
# Parameter names use "." but never "::", so the last "::" always splits head from parameter.
_HEAD_SEP = "::"
_READ_ERRORS = (OSError, ValueError, SafetensorError)


def save_model(
    model: XstiltsModel, directory: str | Path, heads_info: Mapping[str, Any] | None = None
) -> None:
    """Write encoder weights + config and head weights + ``heads_info`` into ``directory``.

    Args:
        model: The model (any device; tensors are copied to CPU).
        directory: Created if missing; existing files of the same names are replaced.
        heads_info: Head name -> JSON-serialisable description, stored as given.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / ENCODER_WEIGHTS, _tensor_writer(model.encoder.state_dict()))
    atomic_write(out / ENCODER_CONFIG, _text_writer(model.encoder.config.to_json_string()))
    heads = {
        f"{name}{_HEAD_SEP}{key}": value
        for name, head in model.heads.items()
        for key, value in head.state_dict().items()
    }
    atomic_write(out / HEADS_WEIGHTS, _tensor_writer(heads))
    info = json.dumps(dict(heads_info or {}), indent=2, sort_keys=True) + "\n"
    atomic_write(out / HEADS_INFO, _text_writer(info))


def load_encoder_from_dir(directory: str | Path) -> PreTrainedModel:
    """Rebuild the encoder saved by :func:`save_model` (fp32, SDPA attention).

    Raises:
        CheckpointError: Naming the file that is missing, corrupt or does not match.
    """
    cfg_path = Path(directory) / ENCODER_CONFIG
    weights_path = Path(directory) / ENCODER_WEIGHTS
    config = _read_config(cfg_path)
    state = _read_tensors(weights_path)
    # Only build a pooler if one was saved (xstilts never adds one, a foreign encoder might).
    pooler = any(k.startswith("pooler.") for k in state)
    # Random init before loading must not shift the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        encoder = _from_config(config, pooler)
    try:
        result = encoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor whose shape differs from the config's
        raise CheckpointError(
            f"weights do not match the {config.model_type} config: "
            + " ".join(str(exc).split())[:300],
            file=weights_path, hint="weights and encoder_config.json are from different models",
        ) from exc  # fmt: skip
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"weights do not match the {config.model_type} config "
            f"(missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]})",
            file=weights_path,
        )
    return encoder


def load_heads_state(directory: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Head name -> its ``state_dict`` (heads without parameters do not appear).

    Raises:
        CheckpointError: If ``heads.safetensors`` is missing or corrupt.
    """
    path = Path(directory) / HEADS_WEIGHTS
    heads: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in _read_tensors(path).items():
        if _HEAD_SEP not in key:
            raise CheckpointError(f"tensor {key!r} is not named '<head>::<parameter>'", file=path)
        name, param = key.rsplit(_HEAD_SEP, 1)
        heads.setdefault(name, {})[param] = value
    return heads


def load_heads_info(directory: str | Path) -> dict[str, Any]:
    """The ``heads_info`` given to :func:`save_model`.

    Raises:
        CheckpointError: If ``heads.json`` is missing or not a JSON object.
    """
    path = Path(directory) / HEADS_INFO
    info = _read_json(path)
    if not isinstance(info, dict):
        raise CheckpointError("expected a JSON object (head name -> description)", file=path)
    return info


# ------------------------------------------------------------------ reading


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError("weight file is missing", file=path)
    try:
        return load_file(str(path), device="cpu")
    except _READ_ERRORS as exc:
        raise CheckpointError(f"weight file is corrupt or unreadable: {exc}", file=path) from exc


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError("file is missing", file=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except _READ_ERRORS as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"not valid JSON: {exc}", file=path) from exc


def _read_config(path: Path) -> PretrainedConfig:
    values = _read_json(path)
    model_type = values.get("model_type") if isinstance(values, dict) else None
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise CheckpointError(f"unknown or missing model_type {model_type!r}", file=path)
    try:
        return CONFIG_MAPPING[model_type].from_dict(values)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid {model_type} config: {exc}", file=path) from exc


def _from_config(config: PretrainedConfig, pooler: bool) -> PreTrainedModel:
    try:
        return AutoModel.from_config(config, attn_implementation="sdpa", add_pooling_layer=pooler)
    except TypeError:
        # Encoder classes without an ``add_pooling_layer`` argument.
        return AutoModel.from_config(config, attn_implementation="sdpa")


# ------------------------------------------------------------------ writing


def _cpu_unshared(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each with its own storage (safetensors refuses shared storage,
    e.g. tied embeddings); a shared tensor is stored twice, which loads back identically."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.add(ptr)
    return out


def _tensor_writer(state: Mapping[str, torch.Tensor]) -> Callable[[Path], object]:
    tensors = _cpu_unshared(state)
    return lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"})


def _text_writer(text: str) -> Callable[[Path], object]:
    return lambda tmp: tmp.write_text(text, encoding="utf-8")
