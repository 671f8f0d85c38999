"""Task heads. Each maps packed hidden states ``[N, H]`` + a :class:`PackedBatch` to outputs.

See :mod:`xstilts.tasks.formats.base` for the convention. Heads only ever see real tokens
(the batch is packed), so per-token heads are plain linear layers over ``[N, H]`` and
per-sequence heads pool each sequence's rows: its ``<s>`` token (``batch.first_token_index``,
XLM-R's choice) or the mean of all its tokens (``head_pooling: mean``, the pooling e5 models are
trained with), see :func:`pool_sequences`.
"""

from __future__ import annotations

import torch
from torch import nn

from xstilts.errors import ConfigError
from xstilts.packing import PackedBatch
from xstilts.settings import FeaturizeSettings, RetrievalSettings, default

# XLM-R's hidden_dropout_prob; heads use it for the dropout before their projections.
HEAD_DROPOUT = 0.1
POOLING_MODES = ("mean", "cls")


def _sequence_pooling(pooling: str | None) -> str:
    """A sequence head's pooling; ``None``: the schema's ``head_pooling`` default (``<s>``)."""
    pooling = pooling or default(FeaturizeSettings, "head_pooling")
    _check_pooling(pooling, "head_pooling")
    return str(pooling)


def _check_pooling(pooling: str, key: str) -> None:
    if pooling not in POOLING_MODES:
        raise ConfigError(
            f"unknown pooling {pooling!r}", key=key, hint=f"use one of {POOLING_MODES}"
        )


def pool_sequences(hidden: torch.Tensor, batch: PackedBatch, pooling: str) -> torch.Tensor:
    """One row per packed sequence: ``hidden [N, H]`` -> ``[S, H]`` in ``hidden``'s dtype.

    ``"cls"`` takes each sequence's first (``<s>``) token; ``"mean"`` averages all its real
    tokens, special tokens included (the batch is packed, so there is no padding to mask).
    """
    if pooling == "cls":
        return hidden[batch.first_token_index]  # [S, H]
    lens = batch.seq_lens.to(hidden.device)  # [S]
    seq_id = torch.repeat_interleave(torch.arange(lens.numel(), device=hidden.device), lens)  # [N]
    # Summed in float32: hundreds of bf16 rows would lose the small differences that matter.
    sums = hidden.new_zeros(lens.numel(), hidden.shape[-1], dtype=torch.float32)  # [S, H]
    sums.index_add_(0, seq_id, hidden.float())
    return (sums / lens.unsqueeze(-1).float()).to(hidden.dtype)  # [S, H]


class ClassificationHead(nn.Module):
    """XLM-R's classification head on each sequence's ``<s>`` token (or its mean token).

    ``dropout -> dense H->H -> tanh -> dropout -> out_proj H->C`` (``RobertaClassificationHead``).

    Attributes:
        pooling: ``"cls"`` (the ``<s>`` token, XLM-R) or ``"mean"`` (all tokens, e5).
    """

    def __init__(
        self,
        hidden_size: int,
        num_labels: int,
        dropout: float = HEAD_DROPOUT,
        pooling: str | None = None,
    ) -> None:
        super().__init__()
        self.pooling = _sequence_pooling(pooling)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """``hidden [N, H]`` -> logits ``[B, C]`` (one sequence per feature)."""
        x = pool_sequences(hidden, batch, self.pooling)  # [S, H] with S == B
        x = torch.tanh(self.dense(self.dropout(x)))
        return self.out_proj(self.dropout(x))  # [B, C]


class MultipleChoiceHead(nn.Module):
    """One score per choice sequence from its ``<s>`` token (or mean token), viewed as ``[B, K]``.

    Attributes:
        pooling: ``"cls"`` (the ``<s>`` token) or ``"mean"`` (all tokens of the choice).
    """

    def __init__(
        self,
        hidden_size: int,
        dropout: float = HEAD_DROPOUT,
        pooling: str | None = None,
    ) -> None:
        super().__init__()
        self.pooling = _sequence_pooling(pooling)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """``hidden [N, H]`` -> scores ``[B, K]`` (``K = batch.sequences_per_feature``)."""
        x = self.dropout(pool_sequences(hidden, batch, self.pooling))  # [S, H], S = B * K
        scores = self.classifier(x).squeeze(-1)  # [S]
        return scores.view(batch.num_features, batch.sequences_per_feature)  # [B, K]


class TokenHead(nn.Module):
    """A per-token linear layer: ``[N, H] -> [N, C]`` (tagging: C = tags; QA: C = 2)."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float = HEAD_DROPOUT) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_outputs)

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """``hidden [N, H]`` -> ``[N, C]``; ``batch`` is unused (kept for the convention)."""
        del batch
        return self.classifier(self.dropout(hidden))  # [N, C]


class PoolingHead(nn.Module):
    """Parameter-free sentence embeddings for retrieval.

    Attributes:
        layer: Encoder layer whose output is pooled, as configured; ``None`` means the model's
            middle layer (the model resolves it, as XTREME does for BUCC/Tatoeba).
        pooling: ``"mean"`` over all real tokens of a sequence (specials included, like
            XTREME) or ``"cls"`` (the ``<s>`` token).
    """

    def __init__(self, layer: int | None = None, pooling: str = "mean") -> None:
        super().__init__()
        _check_pooling(pooling, "pooling")
        self.layer = layer
        self.pooling = pooling

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """``hidden [N, H]`` -> float32 embeddings ``[S, H]``."""
        # float32: mining compares cosines whose small differences bf16 would lose.
        return pool_sequences(hidden.float(), batch, self.pooling)  # [S, H]


HEAD_KINDS = ("classification", "multiple_choice", "token", "pooling")


def build_head(
    hidden_size: int,
    kind: str,
    num_outputs: int = 0,
    *,
    layer: int | None = None,
    pooling: str | None = None,
) -> nn.Module:
    """A freshly initialised head of ``kind``, as a task type declares it (its ``head_spec``).

    Args:
        hidden_size: The encoder's hidden size ``H``.
        kind: One of :data:`HEAD_KINDS`.
        num_outputs: Classes (``classification``) or outputs per token (``token``).
        layer: ``pooling``: encoder layer pooled (``None`` = the model's middle layer).
        pooling: ``"mean"`` or ``"cls"``: how ``pooling`` heads (default mean) and the sequence
            heads ``classification``/``multiple_choice`` (default cls) pool each sequence.

    Raises:
        ConfigError: for an unknown kind.
    """
    if kind == "classification":
        return ClassificationHead(hidden_size, num_outputs, pooling=pooling)
    if kind == "multiple_choice":
        return MultipleChoiceHead(hidden_size, pooling=pooling)
    if kind == "token":
        return TokenHead(hidden_size, num_outputs)
    if kind == "pooling":
        return PoolingHead(layer=layer, pooling=pooling or default(RetrievalSettings, "pooling"))
    raise ConfigError(f"unknown head kind {kind!r}", hint=f"use one of {HEAD_KINDS}")
