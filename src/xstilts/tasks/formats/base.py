"""The task-type protocol: featurize → (model + head) → loss / predict → postprocess → score.

Each task type implements this once (``classification.py``, ``multiple_choice.py``,
``extractive_qa.py``, ``tagging.py``, ``retrieval.py``), usually by subclassing
:class:`TaskTypeBase`. Collation is shared by all of them: :func:`xstilts.packing.pack`.
Adding a task type is one module here (an instance named ``FORMAT``, listed in
:func:`xstilts.tasks.formats.get_format`) plus its readers; ``tests/test_task_types.py`` walks
the registered types and checks each implements the whole protocol:

* declarations: ``task_type``, ``trainable`` (False: evaluation only), ``export_suffix``
  (XTREME file extension), ``degenerate_check`` (``"majority"``, ``"near_zero"`` or ``"none"``),
  :meth:`~TaskFormat.head_spec` (what head ``xstilts.models.heads.build_head`` builds);
* training and prediction: ``featurize``, ``make_head``, ``loss``, ``predict``,
  ``postprocess``, ``score``;
* evaluation bookkeeping: ``selection_metric``, ``language_score`` (the XTREME per-language
  number), ``scored_count``, ``eval_extra``, ``details`` (per-example record, see
  :mod:`xstilts.metrics.per_example`);
* export in XTREME's layout: ``prediction_file``, ``gold_file``, ``rescore``, ``export_note``.

Importing a task type does not import torch or transformers (``xstilts plan`` and the readers
need its declarations only): torch is imported inside ``loss``/``predict``, heads are built in
:mod:`xstilts.models.heads`.

Head convention: ``head(hidden, batch)`` gets the encoder's packed hidden states ``[N, H]`` (at
layer ``head.layer`` if the head has that attribute, else the last layer) and returns

* classification: ``[B, C]`` logits from each sequence's first (``<s>``) token,
* multiple choice: ``[B, K]`` scores, one per choice sequence,
* extractive QA: ``[N, 2]`` start/end logits per token,
* tagging: ``[N, C]`` logits per token,
* retrieval: ``[S, H]`` pooled sentence embeddings (no trainable parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from xstilts.settings import FeaturizeSettings, RetrievalSettings, default
from xstilts.tasks.examples import Example
from xstilts.tasks.spec import TaskSpec, TaskType

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from xstilts.packing import Feature, PackedBatch

# How a per-example export value is spelled in XTREME's files (label name -> string).
Spell = Callable[[Any], str]


@dataclass(frozen=True)
class FeaturizeConfig(FeaturizeSettings):
    """Settings that change features (part of the feature-cache key and the stage id).

    The fields and defaults are the schema's (:class:`xstilts.settings.FeaturizeSettings`,
    then :class:`~xstilts.settings.RetrievalSettings`); build one from resolved values.

    Attributes:
        max_length: Maximum tokens per sequence, special tokens included.
        stride: QA: tokens of overlap between consecutive context windows.
        max_query_length: QA: question tokens kept.
        n_best: QA: start/end candidates considered per window.
        max_answer_length: QA: longest predicted answer, in tokens.
        head_pooling: Classification / multiple choice: ``"cls"`` (``<s>``) or ``"mean"``.
        pooling: Retrieval: ``"mean"`` or ``"cls"``.
        layer: Retrieval: encoder layer whose output is pooled (``None`` = middle layer).
    """

    # Appended after the schema's fields, in this order (asdict keys of cached evaluations).
    pooling: str = default(RetrievalSettings, "pooling")
    layer: int | None = default(RetrievalSettings, "layer")


@dataclass(frozen=True)
class HeadSpec:
    """What head a task type needs; :func:`xstilts.models.heads.build_head` builds it.

    Attributes:
        kind: ``"classification"``, ``"multiple_choice"``, ``"token"`` or ``"pooling"``.
        num_outputs: Classes (classification), outputs per token (token heads); else 0.
        layer: Pooling: encoder layer pooled (``None`` = the model's middle layer).
        pooling: Pooling and sequence heads (classification, multiple choice): ``"mean"`` or
            ``"cls"``; sequence heads set it from ``head_pooling``.
    """

    kind: str
    num_outputs: int = 0
    layer: int | None = default(RetrievalSettings, "layer")
    pooling: str = default(RetrievalSettings, "pooling")


class TaskFormat(Protocol):
    """What every task type provides (see the module doc for the list and head convention)."""

    task_type: TaskType
    trainable: bool
    export_suffix: str
    degenerate_check: str

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """The head ``spec`` needs (built by :func:`xstilts.models.heads.build_head`)."""
        ...

    def featurize(
        self,
        examples: Sequence[Example],
        tokenizer: PreTrainedTokenizerBase,
        spec: TaskSpec,
        cfg: FeaturizeConfig,
    ) -> list[Feature]:
        """Turn examples into features (``example_index`` points back into ``examples``)."""
        ...

    def make_head(self, spec: TaskSpec, hidden_size: int, cfg: FeaturizeConfig | None) -> nn.Module:
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

    def selection_metric(self, spec: TaskSpec) -> str:
        """The dev metric model selection maximises."""
        ...

    def language_score(self, spec: TaskSpec, lang: str, scores: Mapping[str, float]) -> float:
        """XTREME's one number for one language (raises ``DataError`` if a metric is missing)."""
        ...

    def scored_count(self, examples: Sequence[Example]) -> int:
        """How many items a language's score is over (recorded as ``n_examples``)."""
        ...

    def eval_extra(self, cfg: FeaturizeConfig) -> dict[str, Any]:
        """Settings recorded next to every score of this type (e.g. retrieval pooling)."""
        ...

    def details(
        self,
        spec: TaskSpec,
        examples: Sequence[Example],
        predictions: Sequence[Any],
        scores: Mapping[str, float],
        lang: str,
    ) -> dict[str, Any]:
        """The per-example record of one language (:mod:`xstilts.metrics.per_example`)."""
        ...

    def prediction_file(self, rec: Mapping[str, Any], spell: Spell) -> str:
        """The XTREME prediction file body of one per-example record."""
        ...

    def gold_file(self, rec: Mapping[str, Any], spell: Spell) -> str | None:
        """The XTREME label file body of one record (``None`` when it has no gold)."""
        ...

    def rescore(self, spec: TaskSpec, pred: Path, gold: Path, lang: str) -> float:
        """The headline score (percent) of an exported file, read as XTREME's evaluate.py."""
        ...

    def export_note(self, rec: Mapping[str, Any]) -> dict[str, Any] | None:
        """A manifest note for one exported record (``None`` when there is nothing to say)."""
        ...


class TaskTypeBase:
    """Defaults shared by the task types (one label per example, accuracy, TSV export)."""

    task_type: TaskType
    trainable = True
    export_suffix = "tsv"
    degenerate_check = "none"

    def head_spec(self, spec: TaskSpec, cfg: FeaturizeConfig | None) -> HeadSpec:
        """Every task type declares its head."""
        raise NotImplementedError

    def make_head(self, spec: TaskSpec, hidden_size: int, cfg: FeaturizeConfig | None) -> nn.Module:
        """A freshly initialised head, built in ``models/`` from :meth:`head_spec`."""
        from xstilts.models.heads import build_head

        h = self.head_spec(spec, cfg)
        return build_head(hidden_size, h.kind, h.num_outputs, layer=h.layer, pooling=h.pooling)

    def selection_metric(self, spec: TaskSpec) -> str:
        """The first declared metric."""
        return spec.metrics[0]

    def language_score(self, spec: TaskSpec, lang: str, scores: Mapping[str, float]) -> float:
        """Accuracy."""
        from xstilts.metrics.xtreme_score import metric_value

        return metric_value(lang, scores, "accuracy")

    def scored_count(self, examples: Sequence[Example]) -> int:
        """One item per example."""
        return len(examples)

    def eval_extra(self, cfg: FeaturizeConfig) -> dict[str, Any]:
        """Nothing beyond the metrics."""
        return {}

    def prediction_file(self, rec: Mapping[str, Any], spell: Spell) -> str:
        """One spelled value per line."""
        return label_lines(rec["pred"], spell)

    def gold_file(self, rec: Mapping[str, Any], spell: Spell) -> str | None:
        """One spelled gold value per line."""
        return None if rec.get("gold") is None else label_lines(rec["gold"], spell)

    def rescore(self, spec: TaskSpec, pred: Path, gold: Path, lang: str) -> float:
        """Line-by-line accuracy, as XTREME's evaluate.py scores label files."""
        from xstilts.errors import DataError

        p, g = read_label(pred), read_label(gold)
        if len(p) != len(g):
            raise DataError(f"{len(p)} predictions for {len(g)} labels", file=pred)
        return 100.0 * sum(a == b for a, b in zip(p, g, strict=True)) / len(g)

    def export_note(self, rec: Mapping[str, Any]) -> dict[str, Any] | None:
        """No note."""
        return None


def label_lines(values: Sequence[Any], spell: Spell) -> str:
    """A label/index/pair file body: one spelled value per line."""
    return "".join(f"{spell(v)}\n" for v in values)


def read_label(path: Path) -> list[str]:
    """One stripped value per line (XTREME's ``read_label``)."""
    lines = path.read_text(encoding="utf-8").split("\n")  # "\n" only, as file iteration does
    if lines and lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def read_tag(path: Path) -> list[list[str]]:
    """Sentences of stripped tags separated by blank lines (XTREME's ``read_tag``)."""
    sentences, cur = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            cur.append(line.strip())
        elif cur:
            sentences.append(cur)
            cur = []
    return [*sentences, cur] if cur else sentences
