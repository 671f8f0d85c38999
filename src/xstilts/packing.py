"""Features and packed (unpadded) batches: the one representation every task type shares.

A *feature* is a plain dict produced by a task type's ``featurize``:

* ``"sequences"``: ``list[list[int]]`` token ids *with* special tokens, one sequence per model
  input (1 for most types, ``num_choices`` for multiple choice).
* ``"example_index"``: index of the source example (QA windows share one).
* label keys, by convention: an ``int`` value is per feature (``label``, ``start``, ``end``),
  a ``list[int]`` value is per token of ``sequences[0]`` (``token_labels``, -100 = ignored).
* anything else a type's ``postprocess`` needs, under keys starting with ``_`` (not tensorised),
  e.g. ``_offsets`` for QA.

:func:`pack` concatenates all sequences of a batch into one flat token stream (no padding):
linear layers then only ever see real tokens. Attention uses ``cu_seqlens`` to stay within each
sequence. :func:`to_padded` gives the classic ``[S, T]`` view for HF models and for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

IGNORE_INDEX = -100

Feature = dict[str, Any]


@dataclass
class PackedBatch:
    """A batch of ``S`` variable-length sequences packed into ``N`` tokens.

    Attributes:
        input_ids: ``[N]`` token ids of all sequences, back to back.
        position_ids: ``[N]`` XLM-R positions, restarting at ``padding_idx + 1`` per sequence.
        cu_seqlens: ``[S + 1]`` int32 cumulative lengths (FlashAttention varlen convention).
        max_seqlen: Longest sequence in the batch.
        labels: Per-feature tensors ``[B]`` and per-token tensors ``[N]`` (see module doc).
        num_features: ``B``; ``S = B * sequences_per_feature``.
        sequences_per_feature: 1, or ``num_choices`` for multiple choice.
        feature_indices: Positions of these features in the featurized list (for postprocess).
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    max_seqlen: int
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    num_features: int = 0
    sequences_per_feature: int = 1
    feature_indices: list[int] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        """Real tokens in the batch (``N``)."""
        return int(self.input_ids.numel())

    @property
    def num_sequences(self) -> int:
        """Sequences in the batch (``S``)."""
        return int(self.cu_seqlens.numel() - 1)

    @property
    def seq_lens(self) -> torch.Tensor:
        """``[S]`` lengths."""
        return (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).long()

    @property
    def first_token_index(self) -> torch.Tensor:
        """``[S]`` index into the ``N`` packed tokens of each sequence's ``<s>`` (CLS) token."""
        return self.cu_seqlens[:-1].long()

    def to(self, device: torch.device | str) -> PackedBatch:
        """Move every tensor to ``device`` (non-blocking where possible)."""
        nb = torch.device(device).type == "cuda"
        return PackedBatch(
            input_ids=self.input_ids.to(device, non_blocking=nb),
            position_ids=self.position_ids.to(device, non_blocking=nb),
            cu_seqlens=self.cu_seqlens.to(device, non_blocking=nb),
            max_seqlen=self.max_seqlen,
            labels={k: v.to(device, non_blocking=nb) for k, v in self.labels.items()},
            num_features=self.num_features,
            sequences_per_feature=self.sequences_per_feature,
            feature_indices=self.feature_indices,
        )


def pack(
    features: Sequence[Feature],
    padding_idx: int = 1,
    feature_indices: Sequence[int] | None = None,
) -> PackedBatch:
    """Collate features into a :class:`PackedBatch` (the one collate for all task types).

    Args:
        features: Featurized examples (see module doc).
        padding_idx: The model's padding index; XLM-R positions start at ``padding_idx + 1``.
        feature_indices: Positions of ``features`` in the full featurized list.
    """
    seqs: list[list[int]] = [s for f in features for s in f["sequences"]]
    if not seqs:
        raise ValueError("cannot pack an empty batch")
    per_feature = len(features[0]["sequences"])
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.int32)
    cu = torch.zeros(len(seqs) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(lens, 0)
    input_ids = torch.tensor([t for s in seqs for t in s], dtype=torch.long)  # [N]
    # XLM-R (RoBERTa) positions are padding_idx + 1 + i within each sequence (HF's flattening
    # collator restarted them at 0, transformers issue #47496).
    position_ids = torch.cat([torch.arange(n, dtype=torch.long) for n in lens.tolist()])
    position_ids += padding_idx + 1
    labels: dict[str, torch.Tensor] = {}
    for key, value in features[0].items():
        if key.startswith("_") or key in ("sequences", "example_index"):
            continue
        if isinstance(value, int):
            labels[key] = torch.tensor([f[key] for f in features], dtype=torch.long)  # [B]
        elif isinstance(value, list):
            flat = [t for f in features for t in f[key]]
            labels[key] = torch.tensor(flat, dtype=torch.long)  # [N] (per token)
    idx = list(feature_indices) if feature_indices is not None else list(range(len(features)))
    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        cu_seqlens=cu,
        max_seqlen=int(lens.max()),
        labels=labels,
        num_features=len(features),
        sequences_per_feature=per_feature,
        feature_indices=idx,
    )


def to_padded(
    batch: PackedBatch, pad_token_id: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The classic padded view of a packed batch.

    Returns:
        ``(input_ids [S, T], attention_mask [S, T], position_ids [S, T])``, right-padded with
        ``pad_token_id`` (positions of padding set to ``padding_idx`` = ``pad_token_id``).
    """
    s, t = batch.num_sequences, batch.max_seqlen
    mask = padding_mask(batch)  # [S, T] bool
    ids = torch.full((s, t), pad_token_id, dtype=batch.input_ids.dtype, device=mask.device)
    ids[mask] = batch.input_ids
    pos = torch.full((s, t), pad_token_id, dtype=torch.long, device=mask.device)
    pos[mask] = batch.position_ids
    return ids, mask.long(), pos


def padding_mask(batch: PackedBatch) -> torch.Tensor:
    """``[S, T]`` bool mask, True on real tokens, in the same order as the packed stream."""
    lens = batch.seq_lens.to(batch.input_ids.device)
    arange = torch.arange(batch.max_seqlen, device=lens.device)
    return arange[None, :] < lens[:, None]


def pad_tokens(values: torch.Tensor, batch: PackedBatch, fill: float = 0.0) -> torch.Tensor:
    """Scatter per-token ``values [N, ...]`` into ``[S, T, ...]`` (``fill`` on padding)."""
    mask = padding_mask(batch)
    out = values.new_full((*mask.shape, *values.shape[1:]), fill)
    out[mask] = values
    return out


def unpad_tokens(values: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    """Gather ``[S, T, ...]`` back to packed ``[N, ...]``."""
    return values[padding_mask(batch)]
