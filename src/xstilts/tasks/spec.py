"""Task specs are data: what a task is, where its files are, how it is scored.

A :class:`TaskSpec` is a frozen declaration. All behaviour lives in the task *type*
(``xstilts.tasks.formats``) and the file *readers* (``xstilts.tasks.readers``).
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from xstilts.errors import ConfigError


class TaskType(StrEnum):
    """The five task types; each is implemented once in ``xstilts.tasks.formats``."""

    CLASSIFICATION = "classification"
    MULTIPLE_CHOICE = "multiple_choice"
    EXTRACTIVE_QA = "extractive_qa"
    TAGGING = "tagging"
    RETRIEVAL = "retrieval"


ANSWER_NORMALIZATIONS = ("squad", "mlqa")
RETRIEVAL_KINDS = ("mining", "search")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class SplitSource:
    """Where one split of a task comes from, for each language it exists in.

    Attributes:
        reader: Name of a registered reader (``xstilts.tasks.readers``), e.g. ``"xnli_tsv"``.
        pattern: Path relative to the data root; ``{lang}`` is substituted and glob
            characters are expanded (sorted, several files are concatenated).
        languages: Languages this split exists in.
        per_language: Explicit per-language patterns overriding ``pattern``.
        fields: Reader-specific field mapping (e.g. ``{"premise": "sentence1"}``).
        label_map: Raw label string -> canonical label name (e.g. ``{"e": "entailment"}``).
        skip_labels: Raw labels whose records are dropped *and counted* (e.g. SNLI's ``-``).
        download_hint: What to download when the files are absent.
        fallback: Tier of this source. Tier-0 sources are always read; a source of tier ``k > 0``
            is read only when no source of a lower tier has files for the language (used for
            documented stand-ins, e.g. UD-POS train falling back to the English dev file).
    """

    reader: str
    pattern: str = ""
    languages: tuple[str, ...] = ("en",)
    per_language: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    label_map: Mapping[str, str] = field(default_factory=dict)
    skip_labels: tuple[str, ...] = ()
    download_hint: str = ""
    fallback: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_language", _frozen(self.per_language))
        object.__setattr__(self, "fields", _frozen(self.fields))
        object.__setattr__(self, "label_map", _frozen(self.label_map))

    def pattern_for(self, lang: str) -> str:
        """The relative path pattern for ``lang`` (``{lang}`` substituted)."""
        raw = self.per_language.get(lang, self.pattern)
        return raw.format(lang=lang)

    def paths(self, data_dir: Path, lang: str) -> list[Path]:
        """Existing files for ``lang`` under ``data_dir`` (glob expanded, sorted)."""
        pat = str(Path(data_dir) / self.pattern_for(lang))
        if any(ch in pat for ch in "*?["):
            return [Path(p) for p in sorted(glob.glob(pat))]
        return [Path(pat)] if Path(pat).exists() else []


@dataclass(frozen=True)
class TaskSpec:
    """Declaration of one task.

    Attributes:
        name: Registry name (lower-case, e.g. ``"xnli"``).
        type: Task type, selecting featurize/collate/postprocess/metric code.
        version: Bumped whenever data handling or scoring changes; carried into result tables.
        splits: Split name (``train``/``dev``/``test``) -> one or more sources, concatenated.
        labels: Label names (classification, tagging); index = class id.
        num_choices: Number of answer options (multiple choice).
        train_language: Language of the training data (always English in this study).
        eval_languages: Every language the task is evaluated in (full XTREME lists).
        eval_split: Split scored zero-shot in every language.
        dev_split: English split used for early stopping / model selection.
        metrics: Metric names reported (first one is the selection metric).
        head: Head-sharing key; tasks with the same key share one head (ANLI+ style).
        answer_normalization: QA only: ``"squad"`` (English rules, SQuAD v1.1 script) or
            ``"mlqa"`` (MLQA's per-language rules).
        retrieval: Retrieval only, what is retrieved (:data:`RETRIEVAL_KINDS`): ``"mining"``
            (BUCC: margin-mined pairs, F1 at the best threshold) or ``"search"`` (Tatoeba:
            nearest neighbour of each English sentence, accuracy).
        is_target: True for the XTREME targets.
        defaults: Training defaults (epochs, lr, max_length, stride, batch_size, ...).
        description: One line for ``xstilts tasks``.
    """

    name: str
    type: TaskType
    version: str
    splits: Mapping[str, tuple[SplitSource, ...]]
    labels: tuple[str, ...] = ()
    num_choices: int | None = None
    train_language: str = "en"
    eval_languages: tuple[str, ...] = ("en",)
    eval_split: str = "dev"
    dev_split: str = "dev"
    metrics: tuple[str, ...] = ("accuracy",)
    head: str = ""
    answer_normalization: str = "squad"
    retrieval: str = ""
    is_target: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        # The declared type is the normalised one (what every reader of `splits` gets); a bare
        # SplitSource or a list is still accepted at run time from untyped callers.
        splits = {
            k: (v,) if isinstance(v, SplitSource) else tuple(v) for k, v in self.splits.items()
        }
        object.__setattr__(self, "splits", _frozen(splits))
        object.__setattr__(self, "defaults", _frozen(self.defaults))
        object.__setattr__(self, "type", TaskType(self.type))
        if not self.head:
            object.__setattr__(self, "head", self.name)
        if self.name != self.name.lower() or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"task name {self.name!r} must be lower-case alphanumeric/_")
        needs_labels = self.type in (TaskType.CLASSIFICATION, TaskType.TAGGING)
        if needs_labels and not self.labels:
            raise ConfigError(f"task {self.name!r} of type {self.type} declares no labels")
        if self.type is TaskType.MULTIPLE_CHOICE and not self.num_choices:
            raise ConfigError(f"multiple-choice task {self.name!r} declares no num_choices")
        if self.answer_normalization not in ANSWER_NORMALIZATIONS:
            raise ConfigError(
                f"unknown answer_normalization {self.answer_normalization!r}",
                key=f"{self.name}.answer_normalization",
                hint=f"use one of {ANSWER_NORMALIZATIONS}",
            )
        # Declared, not guessed from the metrics: BUCC and Tatoeba share the retrieval type.
        wanted = RETRIEVAL_KINDS if self.type is TaskType.RETRIEVAL else ("",)
        if self.retrieval not in wanted:
            raise ConfigError(
                f"task {self.name!r} of type {self.type} declares retrieval={self.retrieval!r}",
                key=f"{self.name}.retrieval",
                hint=f"use one of {wanted}",
            )

    @property
    def label_to_id(self) -> dict[str, int]:
        """Label name -> class index."""
        return {label: i for i, label in enumerate(self.labels)}

    def languages(self, split: str) -> tuple[str, ...]:
        """Languages in which ``split`` is declared (union over its sources, in order)."""
        seen: dict[str, None] = {}
        for src in self.splits.get(split, ()):
            for lang in src.languages:
                seen.setdefault(lang, None)
        return tuple(seen)

    def find_files(self, data_dir: Path, split: str, lang: str) -> list[tuple[SplitSource, Path]]:
        """All (source, file) pairs present on disk for one split and language.

        Only the lowest :attr:`SplitSource.fallback` tier that has any file is returned.
        """
        by_tier: dict[int, list[tuple[SplitSource, Path]]] = {}
        for src in self.splits.get(split, ()):
            if lang in src.languages:
                found = [(src, p) for p in src.paths(data_dir, lang)]
                if found:
                    by_tier.setdefault(src.fallback, []).extend(found)
        return by_tier[min(by_tier)] if by_tier else []
