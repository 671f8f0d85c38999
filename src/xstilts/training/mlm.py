"""Optional masked-LM auxiliary objective, added to the task loss at every micro-batch.

Keeps the encoder close to its pre-training objective while it learns an intermediate task
(``StageSpec.mlm = {"weight": w, "probability": 0.15, "texts_from": [tasks]}``). The MLM head
(``dense -> gelu -> LayerNorm -> decoder``) is initialised with the decoder tied-by-copy to the
word embeddings, trained alongside, and dropped before the stage is saved.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from xstilts.packing import IGNORE_INDEX, PackedBatch, pack
from xstilts.settings import MlmSettings, TrainSettings, default
from xstilts.tasks.texts import task_texts

if TYPE_CHECKING:
    from xstilts.models.model import XstiltsModel

MLM_HEAD = "mlm"


class MlmHead(nn.Module):
    """RoBERTa's LM head: ``[N, H] -> [N, V]`` (decoder initialised from the word embeddings)."""

    def __init__(self, embeddings: torch.Tensor) -> None:
        super().__init__()
        vocab, hidden = embeddings.shape
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.decoder = nn.Linear(hidden, vocab)
        with torch.no_grad():
            self.decoder.weight.copy_(embeddings)
            self.decoder.bias.zero_()

    def forward(self, hidden: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """``hidden [N, H]`` -> vocabulary logits ``[N, V]``."""
        del batch
        return self.decoder(self.norm(F.gelu(self.dense(hidden))))


class MlmObjective:
    """Endless seeded stream of masked batches and their loss.

    Args:
        sequences: Token ids (special tokens included) of the auxiliary texts.
        tokenizer: Gives the mask, special and vocabulary ids.
        weight: Factor on the MLM loss.
        probability: Fraction of non-special tokens selected (80% ``<mask>``, 10% random,
            10% unchanged, as in BERT).
        batch_size: Sequences per auxiliary batch.
        seed: Seeds masking and order (independent of the global RNG).
    """

    def __init__(
        self,
        sequences: Sequence[list[int]],
        tokenizer: PreTrainedTokenizerBase,
        *,
        weight: float,
        probability: float = default(MlmSettings, "probability"),
        batch_size: int = default(TrainSettings, "batch_size"),
        seed: int = 0,
    ) -> None:
        if not sequences:
            raise ValueError("the MLM auxiliary needs at least one text")
        self.sequences = list(sequences)
        self.weight = weight
        self.probability = probability
        self.batch_size = batch_size
        self.mask_id = int(tokenizer.mask_token_id)
        self.vocab_size = len(tokenizer)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.padding_idx = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1
        self._rng = random.Random(seed)
        self._gen = torch.Generator().manual_seed(seed)
        self._order: list[int] = []

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Order RNG and pending order as JSON, the masking generator as a tensor (checkpoints)."""
        version, internal, gauss = self._rng.getstate()
        meta = {"rng": [version, list(internal), gauss], "order": list(self._order)}
        return meta, {"gen": self._gen.get_state()}

    def load_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Continue from a :meth:`state`."""
        version, internal, gauss = meta["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._order = [int(i) for i in meta["order"]]
        self._gen.set_state(tensors["gen"])

    def next_batch(self) -> PackedBatch:
        """A packed batch with masked ``input_ids`` and per-token ``labels["token_labels"]``."""
        if len(self._order) < self.batch_size:
            fresh = list(range(len(self.sequences)))
            self._rng.shuffle(fresh)
            self._order.extend(fresh)
        idx, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        batch = pack([{"sequences": [self.sequences[i]]} for i in idx], self.padding_idx)
        ids = batch.input_ids  # [N]
        maskable = ~torch.isin(ids, self.special)
        chosen = (torch.rand(ids.shape, generator=self._gen) < self.probability) & maskable
        batch.labels["token_labels"] = torch.where(chosen, ids, IGNORE_INDEX)  # [N]
        roll = torch.rand(ids.shape, generator=self._gen)
        random_ids = torch.randint(self.vocab_size, ids.shape, generator=self._gen)
        masked = torch.where(chosen & (roll < 0.8), self.mask_id, ids)
        batch.input_ids = torch.where(chosen & (roll >= 0.9), random_ids, masked)
        return batch

    def loss(self, forward: Callable[..., torch.Tensor], device: torch.device) -> torch.Tensor:
        """Mean cross-entropy over the masked tokens of the next batch (0 if none masked)."""
        cpu_batch = self.next_batch()
        # Checked on CPU: a device-side check would synchronise the GPU every step.
        any_masked = bool((cpu_batch.labels["token_labels"] != IGNORE_INDEX).any())
        batch = cpu_batch.to(device)
        logits = forward(batch, MLM_HEAD)  # [N, V]
        if not any_masked:
            return logits.sum() * 0.0
        return F.cross_entropy(
            logits.float(), batch.labels["token_labels"], ignore_index=IGNORE_INDEX
        )


class MlmStage(Protocol):
    """What :func:`build_mlm_objective` reads of a stage (``pipelines.stage_spec.StageSpec``).

    A protocol rather than the class itself: training sits below pipelines and must not
    import it.
    """

    @property
    def tasks(self) -> Sequence[str]: ...  # the stage's task names
    @property
    def train(self) -> Mapping[str, Any]: ...  # batch_size, max_train_examples
    @property
    def mlm(self) -> Mapping[str, Any]: ...  # weight, probability, max_length, texts_from
    @property
    def seed(self) -> int: ...


def build_mlm_objective(
    spec: MlmStage, data_dir: Path, tokenizer: PreTrainedTokenizerBase, model: XstiltsModel
) -> MlmObjective:
    """Add the MLM head to ``model`` and build the objective from ``spec.mlm``.

    Texts come from the train splits of ``spec.mlm["texts_from"]`` (default: the stage's own
    tasks), at most ``max_train_examples`` examples per task.
    """
    names = spec.mlm.get("texts_from") or list(spec.tasks)
    texts = task_texts(names, data_dir, int(spec.train.get("max_train_examples") or 10**9))
    max_len = int(spec.mlm.get("max_length", default(MlmSettings, "max_length")))  # sparse
    ids = tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]
    table = model.encoder.get_input_embeddings().weight  # nn.Module attributes are untyped
    embeddings = cast(torch.Tensor, table).detach()  # [V, H]
    model.add_head(MLM_HEAD, MlmHead(embeddings))
    return MlmObjective(
        ids, tokenizer, weight=float(spec.mlm.get("weight", default(MlmSettings, "weight"))),
        probability=float(spec.mlm.get("probability", default(MlmSettings, "probability"))),
        batch_size=int(spec.train.get("batch_size", default(TrainSettings, "batch_size"))),
        seed=spec.seed,
    )  # fmt: skip
