"""Multiple choice (HellaSwag, CommonsenseQA, Cosmos QA): one pair sequence per choice.

Each choice is encoded as the pair ``(context + " " + question, choice)`` (empty parts left
out), truncated ``longest_first`` to ``cfg.max_length``. Feature:
``{"sequences": [K id lists], "label": int, "example_index": i}``. The head scores each
choice's ``<s>`` token, or its mean token with ``head_pooling: mean`` (linear H->1), giving
``[B, K]``; loss is cross-entropy over choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xstilts.errors import DataError
from xstilts.tasks.examples import Example, MultipleChoiceExample, of_type
from xstilts.tasks.formats.base import FeaturizeConfig, HeadSpec, TaskTypeBase
from xstilts.tasks.formats.classification import (
    accuracy_scores,
    argmax_rows,
    check_label,
    chunks,
    label_details,
    label_loss,
    one_index_per_example,
    where,
)
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch


def first_segment(example: MultipleChoiceExample) -> str:
    """``context + " " + question`` with empty parts left out."""
    return " ".join(part for part in (example.context, example.question) if part.strip())


class MultipleChoiceFormat(TaskTypeBase):
    """The multiple-choice task type (see module doc)."""

    task_type = TaskType.MULTIPLE_CHOICE
    degenerate_check = "majority"

    def featurize(
        self,
        examples: Sequence[MultipleChoiceExample],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """One feature of ``spec.num_choices`` sequences per example."""
        k = int(spec.num_choices or 0)
        features: list[Feature] = []
        for rng in chunks(len(examples)):
            firsts: list[str] = []
            seconds: list[str] = []
            for i in rng:
                ex = examples[i]
                if len(ex.choices) != k:
                    raise DataError(
                        f"{len(ex.choices)} choices, task {spec.name!r} declares {k} "
                        f"(guid {ex.guid!r})",
                        file=where(ex),
                    )
                check_label(ex, ex.label, k)
                firsts.extend([first_segment(ex)] * k)
                seconds.extend(ex.choices)
            ids = self._encode(tokenizer, firsts, seconds, cfg.max_length)
            for j, i in enumerate(rng):
                seqs = ids[j * k : (j + 1) * k]
                features.append({"sequences": seqs, "label": examples[i].label, "example_index": i})
        return features

    @staticmethod
    def _encode(
        tokenizer: PreTrainedTokenizerBase, firsts: list[str], seconds: list[str], max_length: int
    ) -> list[list[int]]:
        """Pairs where there is a first segment, the choice alone otherwise (order kept)."""
        out: dict[int, list[int]] = {}
        pair_idx = [i for i, f in enumerate(firsts) if f]
        single_idx = [i for i, f in enumerate(firsts) if not f]
        if pair_idx:
            enc = tokenizer(
                [firsts[i] for i in pair_idx],
                [seconds[i] for i in pair_idx],
                truncation="longest_first",
                max_length=max_length,
            )
            out.update(zip(pair_idx, enc["input_ids"], strict=True))
        if single_idx:
            enc = tokenizer(
                [seconds[i] for i in single_idx], truncation=True, max_length=max_length
            )
            out.update(zip(single_idx, enc["input_ids"], strict=True))
        return [out[i] for i in range(len(firsts))]

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """Linear H->1 scorer on each choice's ``<s>`` token (or mean token, per ``cfg``)."""
        pooling = (cfg or FeaturizeConfig()).head_pooling  # the schema default without cfg
        return HeadSpec("multiple_choice", pooling=pooling)

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Cross-entropy of choice scores ``[B, K]`` against ``batch.labels["label"] [B]``."""
        return label_loss(logits, batch)

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Index of the best-scoring choice per feature."""
        return argmax_rows(logits)

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """One choice index per example."""
        return one_index_per_example(len(examples), features, raw)

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """Accuracy in percent."""
        refs = [ex.label for ex in of_type(examples, MultipleChoiceExample)]
        return accuracy_scores(predictions, refs, spec.metrics)

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """Choice indices predicted and gold, 100/0 per example."""
        return label_details(spec, examples, predictions)


FORMAT = MultipleChoiceFormat()
