"""Plain examples produced by readers, one dataclass per task type.

Readers validate while reading (labels, offsets, column counts) and record ``origin``
(``"file:line"``) so later stages can point back at the source record.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
