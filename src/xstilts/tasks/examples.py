"""Plain examples produced by readers, one dataclass per task type.

Readers validate while reading (labels, offsets, column counts) and record ``origin``
(``"file:line"``) so later stages can point back at the source record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from xstilts.errors import DataError


@dataclass(frozen=True)
class ClassificationExample:
    """Single sentence (``text_b is None``) or sentence pair; ``label`` is a class index."""

    guid: str
    text_a: str
    text_b: str | None
    label: int
    origin: str = ""


@dataclass(frozen=True)
class MultipleChoiceExample:
    """A context (may be empty), a question/stem, and ``len(choices)`` options."""

    guid: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: int
    origin: str = ""


@dataclass(frozen=True)
class Answer:
    """One gold answer span: its text and character offset in the context."""

    text: str
    start: int


@dataclass(frozen=True)
class QAExample:
    """Extractive QA: answers are character spans of ``context`` (empty tuple = unlabelled)."""

    guid: str
    question: str
    context: str
    answers: tuple[Answer, ...]
    origin: str = ""


@dataclass(frozen=True)
class TaggingExample:
    """Pre-tokenised words with one tag index per word."""

    guid: str
    tokens: tuple[str, ...]
    tags: tuple[int, ...]
    origin: str = ""


@dataclass(frozen=True)
class RetrievalCorpus:
    """Two sides of a bitext-retrieval problem and its gold pairs.

    ``gold`` holds ``(source_index, target_index)`` pairs. Tatoeba: gold is the identity over
    aligned lines. BUCC: gold comes from the ``.gold`` file, mapped from ids to indices.
    """

    guid: str
    source: tuple[str, ...]
    target: tuple[str, ...]
    gold: tuple[tuple[int, int], ...]
    source_ids: tuple[str, ...] = field(default=())
    target_ids: tuple[str, ...] = field(default=())
    origin: str = ""


Example = (
    ClassificationExample | MultipleChoiceExample | QAExample | TaggingExample | RetrievalCorpus
)

E = TypeVar("E", bound=Example)


def of_type(examples: Sequence[Example], cls: type[E]) -> list[E]:
    """``examples`` as the one record type a task type's format reads (checked narrowing).

    Raises:
        DataError: When a record is of another type (a reader registered for the wrong
            task type), naming its origin.
    """
    out: list[E] = [ex for ex in examples if isinstance(ex, cls)]
    if len(out) != len(examples):
        bad = next(ex for ex in examples if not isinstance(ex, cls))
        raise DataError(
            f"expected {cls.__name__} records, got a {type(bad).__name__} "
            f"({getattr(bad, 'origin', '') or 'unknown origin'})",
            hint="the task's reader must produce its task type's examples",
        )
    return out
