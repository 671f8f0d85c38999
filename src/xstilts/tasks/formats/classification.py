"""Sequence classification: single sentences (SST-2) and pairs (MNLI, XNLI, PAWS-X, QQP).

Feature: ``{"sequences": [ids], "label": int, "example_index": i}``. The head is XLM-R's
classification head on the ``<s>`` token (``head_pooling: mean``: on the mean token); the
loss is cross-entropy; prediction is argmax.
Also home of small helpers shared by the other task types (label checks, chunked tokenising).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from xstilts.errors import ConfigError, DataError
from xstilts.tasks.examples import ClassificationExample, Example, of_type
from xstilts.tasks.formats.base import FeaturizeConfig, HeadSpec, TaskTypeBase
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch

# Examples tokenised per tokenizer call: large enough for the fast tokenizer's batching,
# small enough to keep the encodings of one call in memory.
TOKENIZE_CHUNK = 1000


def where(example: Example) -> str:
    """The best location of an example for an error message (``origin`` or ``guid``)."""
    return example.origin or f"example {example.guid!r}"


def check_label(example: Example, label: int, num_labels: int, what: str = "label") -> None:
    """Raise :class:`DataError` unless ``0 <= label < num_labels``."""
    if not 0 <= label < num_labels:
        raise DataError(
            f"{what} {label} out of range for {num_labels} classes (guid {example.guid!r})",
            file=where(example),
        )


def chunks(n: int, size: int = TOKENIZE_CHUNK) -> Iterator[range]:
    """Consecutive index ranges of at most ``size`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def require_fast(tokenizer: PreTrainedTokenizerBase, task_type: TaskType) -> None:
    """Offsets and ``word_ids`` exist only on fast (Rust) tokenizers."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"{task_type} needs a fast tokenizer (offset mapping / word ids), "
            f"got {type(tokenizer).__name__}",
            hint="load it with AutoTokenizer.from_pretrained(..., use_fast=True)",
        )


def argmax_rows(logits: torch.Tensor) -> list[int]:
    """``[B, C]`` -> ``B`` argmax indices on CPU."""
    return logits.detach().argmax(dim=-1).cpu().tolist()


def label_loss(logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
    """Cross-entropy of ``logits [B, C]`` against ``batch.labels["label"] [B]`` (fp32)."""
    import torch.nn.functional as F  # torch only where it runs: task types import without it

    return F.cross_entropy(logits.float(), batch.labels["label"])


def one_index_per_example(
    n_examples: int, features: Sequence[Feature], raw: Sequence[Any]
) -> list[int]:
    """Per-example indices from per-feature ones (features map 1:1 to examples)."""
    preds: list[int] = [0] * n_examples
    for feat, pred in zip(features, raw, strict=True):
        preds[feat["example_index"]] = int(pred)
    return preds


def accuracy_scores(
    predictions: Sequence[int], references: Sequence[int], metrics: Sequence[str]
) -> dict[str, float]:
    """Accuracy plus any requested F1 variant, in percent.

    ``"f1"`` is the F1 of class 1 (QQP/MRPC convention, binary tasks); ``"macro_f1"`` averages
    per-class F1 over the classes present in references or predictions.
    """
    from xstilts.metrics import accuracy

    out = {"accuracy": float(accuracy(list(predictions), list(references)))}
    for name in metrics:
        if name == "f1":
            out["f1"] = 100.0 * _class_f1(predictions, references, 1)
        elif name == "macro_f1":
            classes = sorted(set(references) | set(predictions))
            f1s = [_class_f1(predictions, references, c) for c in classes]
            out["macro_f1"] = 100.0 * sum(f1s) / max(len(f1s), 1)
        elif name != "accuracy":
            raise ConfigError(f"metric {name!r} is not available for this task type")
    return out


def label_details(spec: TaskSpec, examples: Sequence[Any], preds: Sequence[Any]) -> dict[str, Any]:
    """Per-example record of a one-label-per-example task: 100/0 per example (``"mean"``)."""
    from xstilts.metrics.per_example import record

    names = list(spec.labels) if spec.labels else None

    def name(i: int) -> Any:
        return names[int(i)] if names else int(i)

    stats = [100.0 * (int(p) == ex.label) for p, ex in zip(preds, examples, strict=True)]
    gold = [name(ex.label) for ex in examples]
    return record([ex.guid for ex in examples], "mean", stats, [name(p) for p in preds], gold)


def _class_f1(predictions: Sequence[int], references: Sequence[int], cls: int) -> float:
    """F1 (0-1) of one class."""
    tp = sum(p == cls and r == cls for p, r in zip(predictions, references, strict=True))
    n_pred = sum(p == cls for p in predictions)
    n_ref = sum(r == cls for r in references)
    return 2.0 * tp / (n_pred + n_ref) if n_pred + n_ref else 0.0


class ClassificationFormat(TaskTypeBase):
    """The classification task type (see module doc)."""

    task_type = TaskType.CLASSIFICATION
    degenerate_check = "majority"

    def featurize(
        self,
        examples: Sequence[ClassificationExample],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """One feature per example; pairs truncated ``longest_first`` to ``cfg.max_length``."""
        features: list[Feature] = []
        for rng in chunks(len(examples)):
            # Single sentences and pairs need separate tokenizer calls.
            ids: dict[int, list[int]] = {}
            for is_pair in (False, True):
                idx = [i for i in rng if (examples[i].text_b is not None) == is_pair]
                if not idx:
                    continue
                text_a = [examples[i].text_a for i in idx]
                text_b = [examples[i].text_b for i in idx] if is_pair else None
                enc = tokenizer(
                    text_a, text_b, truncation="longest_first", max_length=cfg.max_length
                )
                ids.update(zip(idx, enc["input_ids"], strict=True))
            for i in rng:
                check_label(examples[i], examples[i].label, len(spec.labels))
                features.append(
                    {"sequences": [ids[i]], "label": examples[i].label, "example_index": i}
                )
        return features

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """XLM-R classification head with ``len(spec.labels)`` outputs, pooled per ``cfg``."""
        pooling = (cfg or FeaturizeConfig()).head_pooling  # the schema default without cfg
        return HeadSpec("classification", len(spec.labels), pooling=pooling)

    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        """Cross-entropy of ``logits [B, C]`` against ``batch.labels["label"] [B]``."""
        return label_loss(logits, batch)

    def predict(self, logits: torch.Tensor, batch: PackedBatch) -> list[Any]:
        """Argmax class index per feature."""
        return argmax_rows(logits)

    def postprocess(
        self,
        examples: Sequence[Example],
        features: Sequence[Feature],
        raw: Sequence[Any],
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Any]:
        """One class index per example (features map 1:1 to examples)."""
        return one_index_per_example(len(examples), features, raw)

    def score(
        self, examples: Sequence[Example], predictions: Sequence[Any], spec: TaskSpec, lang: str
    ) -> dict[str, float]:
        """Accuracy (percent) and any F1 listed in ``spec.metrics``."""
        refs = [ex.label for ex in of_type(examples, ClassificationExample)]
        return accuracy_scores(predictions, refs, spec.metrics)

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """Label names predicted and gold, 100/0 per example."""
        return label_details(spec, examples, predictions)


FORMAT = ClassificationFormat()
