"""The task-type protocol: featurize → (model + head) → loss / predict → postprocess → score.

Each task type implements this once (``classification.py``, ``multiple_choice.py``,
``extractive_qa.py``, ``tagging.py``, ``retrieval.py``). Collation is shared by all of them:
:func:`xstilts.packing.pack`.

Head convention: ``head(hidden, batch)`` gets the encoder's packed hidden states ``[N, H]`` (at
layer ``head.layer`` if the head has that attribute, else the last layer) and returns

* classification: ``[B, C]`` logits from each sequence's first (``<s>``) token,
* multiple choice: ``[B, K]`` scores, one per choice sequence,
* extractive QA: ``[N, 2]`` start/end logits per token,
* tagging: ``[N, C]`` logits per token,
* retrieval: ``[S, H]`` pooled sentence embeddings (no trainable parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from xstilts.packing import Feature, PackedBatch
from xstilts.tasks.examples import Example
from xstilts.tasks.spec import TaskSpec, TaskType


@dataclass(frozen=True)
class FeaturizeConfig:
    """Settings that change features (part of the feature-cache key and the stage id).

    Attributes:
        max_length: Maximum tokens per sequence, special tokens included.
        stride: QA: tokens of overlap between consecutive context windows.
        max_query_length: QA: question tokens kept.
        n_best: QA: start/end candidates considered per window.
        max_answer_length: QA: longest predicted answer, in tokens.
        pooling: Retrieval: ``"mean"`` or ``"cls"``.
        layer: Retrieval: encoder layer whose output is pooled (``None`` = middle layer).
    """

    max_length: int = 256
    stride: int = 128
    max_query_length: int = 64
    n_best: int = 20
    max_answer_length: int = 30
    pooling: str = "mean"
    layer: int | None = None


class TaskFormat(Protocol):
    """What every task type provides (see module doc for the head convention)."""

    task_type: TaskType

    def featurize(
        self,
        examples: Sequence[Example],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """Turn examples into features (``example_index`` points back into ``examples``)."""
        ...

    def make_head(self, spec: TaskSpec, hidden_size: int, cfg: FeaturizeConfig) -> nn.Module:
        """A freshly initialised head for ``spec``."""
        ...

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Mean training loss of one batch (scalar)."""
        ...

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Compact per-feature raw predictions, moved to CPU (streamed during evaluation)."""
        ...

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """One prediction per example (label index, answer text, tag indices, ...)."""
        ...

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """Official-equivalent metrics for one language (keys = ``spec.metrics``)."""
        ...
