"""One shared encoder with named task heads (the model every stage trains and evaluates)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from transformers import PreTrainedModel

from xstilts.errors import CheckpointError, ConfigError
from xstilts.models.packed import encode_packed, resolve_layer
from xstilts.packing import PackedBatch


class XstiltsModel(nn.Module):
    """An HF encoder run unpadded (:func:`~xstilts.models.packed.encode_packed`) plus heads.

    Heads follow the convention in :mod:`xstilts.tasks.formats.base`: ``head(hidden, batch)``
    with ``hidden [N, H]`` taken at ``head.layer`` if the head has that attribute (``None`` there
    means the middle layer, XTREME's choice for retrieval), else at the last layer.

    Args:
        encoder: The encoder (``XLMRobertaModel`` or any HF encoder).
        heads: Initial heads, name -> module.
    """

    def __init__(
        self, encoder: PreTrainedModel, heads: Mapping[str, nn.Module] | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads or {}))

    @property
    def hidden_size(self) -> int:
        """Encoder width ``H``."""
        return int(self.encoder.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Transformer layers in the encoder."""
        return int(self.encoder.config.num_hidden_layers)

    @property
    def padding_idx(self) -> int:
        """Padding token id (XLM-R: 1); pass it to :func:`xstilts.packing.pack`."""
        pad = self.encoder.config.pad_token_id
        return 1 if pad is None else int(pad)

    def head_layer(self, name: str) -> int:
        """The encoder layer whose output head ``name`` reads (0 = embeddings).

        Raises:
            ConfigError: If there is no such head or its layer does not exist.
        """
        head = self._head(name)
        if not hasattr(head, "layer"):
            return self.num_layers
        layer = getattr(head, "layer", None)  # an int or None; nn.Module attributes are untyped
        layer = layer if layer is not None else self.num_layers // 2
        return resolve_layer(int(layer), self.num_layers)

    def forward(self, batch: PackedBatch, head: str) -> torch.Tensor:
        """Encode ``batch`` (packed) and apply head ``head``.

        Returns:
            Whatever the head returns (see :mod:`xstilts.tasks.formats.base`).
        """
        module = self._head(head)
        hidden = encode_packed(self.encoder, batch, self.head_layer(head))  # [N, H]
        return module(hidden, batch)

    def add_head(self, name: str, module: nn.Module) -> None:
        """Add (or replace) head ``name``."""
        self.heads[name] = module

    def drop_heads(self, keep: Iterable[str] = ()) -> None:
        """Remove every head not named in ``keep`` (default: all of them)."""
        keep_set = set(keep)
        for name in [n for n in self.heads if n not in keep_set]:
            del self.heads[name]

    def load_heads_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Load per-head weights, e.g. from :func:`xstilts.models.model_io.load_heads_state`.

        Raises:
            CheckpointError: If a head in ``state`` is not in the model, a model head with
                weights has none in ``state``, or weights do not fit.
        """
        # A head left at its random initialisation would silently ruin evaluation.
        missing = sorted(n for n, h in self.heads.items() if h.state_dict() and n not in state)
        if missing:
            raise CheckpointError(f"no saved weights for head(s) {missing}")
        for name, tensors in state.items():
            if name not in self.heads:
                raise CheckpointError(
                    f"saved weights for head {name!r}, but the model has no such head",
                    hint=f"model heads: {sorted(self.heads) or 'none'}",
                )
            try:
                self.heads[name].load_state_dict(dict(tensors), strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"weights of head {name!r} do not fit: {exc}") from exc

    def _head(self, name: str) -> nn.Module:
        if name not in self.heads:
            raise ConfigError(
                f"model has no head {name!r}", key="head", hint=f"heads: {sorted(self.heads)}"
            )
        return self.heads[name]
