"""Multiple-choice files: HellaSwag jsonl, CommonsenseQA jsonl, Cosmos QA CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.tasks.examples import Example, MultipleChoiceExample
from xstilts.tasks.readers._common import get_field, get_text, iter_jsonl, origin, read_text
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec


def _choices(value: Any, spec: TaskSpec, path: Path, line: int) -> tuple[str, ...]:
    """Validated list of exactly ``spec.num_choices`` strings."""
    if not isinstance(value, list) or len(value) != spec.num_choices:
        count = len(value) if isinstance(value, list) else type(value).__name__
        raise DataError(
            f"expected {spec.num_choices} answer choices for task {spec.name!r}, found {count}",
            file=path,
            line=line,
        )
    for i, v in enumerate(value):
        if not isinstance(v, str):  # a null choice would become the answer text "None"
            raise DataError(
                f"answer choice {i} is {json.dumps(v)[:40]}, expected a string",
                file=path,
                line=line,
            )
    return tuple(value)


def _label_index(raw: Any, allowed: list[str], spec: TaskSpec, path: Path, line: int) -> int:
    """Position of ``raw`` (as a string) in ``allowed``.

    Raises:
        DataError: naming the label and the allowed ones.
    """
    key = str(raw).strip()
    if key not in allowed:
        raise DataError(
            f"unknown label {key!r} for task {spec.name!r} (allowed: {allowed})",
            file=path,
            line=line,
        )
    return allowed.index(key)


@register_reader("hellaswag_jsonl")
def read_hellaswag(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """HellaSwag: ``context = ctx_a``, ``question = ctx_b`` (their join is ``ctx``), 4 endings.

    Raises:
        DataError: for invalid JSON, a missing field, a wrong ending count or a bad label.
    """
    allowed = [str(i) for i in range(spec.num_choices or 0)]
    out: list[Example] = []
    for number, rec in iter_jsonl(path):
        ctx_a = get_text(rec, "ctx_a", path, number)
        ctx_b = get_text(rec, "ctx_b", path, number) if "ctx_b" in rec else ""
        label = _label_index(get_field(rec, "label", path, number), allowed, spec, path, number)
        out.append(
            MultipleChoiceExample(
                guid=f"{path.stem}-{rec.get('ind', number)}",
                context=ctx_a,
                question=ctx_b,
                choices=_choices(get_field(rec, "endings", path, number), spec, path, number),
                label=label,
                origin=origin(path, number),
            )
        )
    return out


@register_reader("csqa_jsonl")
def read_commonsenseqa(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """CommonsenseQA: ``question.stem``, ``question.choices[{label, text}]``, ``answerKey``.

    Raises:
        DataError: for invalid JSON, a missing field, a wrong choice count or an answerKey
            that names no choice.
    """
    out: list[Example] = []
    for number, rec in iter_jsonl(path):
        raw = get_field(rec, "question.choices", path, number)
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise DataError(
                "'question.choices' must be a list of {label, text} objects", file=path, line=number
            )
        texts = _choices([c.get("text") for c in raw], spec, path, number)
        keys = [str(c.get("label", "")) for c in raw]
        label = _label_index(get_field(rec, "answerKey", path, number), keys, spec, path, number)
        out.append(
            MultipleChoiceExample(
                guid=str(rec.get("id", number)),
                context="",
                question=get_text(rec, "question.stem", path, number),
                choices=texts,
                label=label,
                origin=origin(path, number),
            )
        )
    return out


COSMOS_COLUMNS = ("id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label")


@register_reader("cosmosqa_csv")
def read_cosmosqa(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """Cosmos QA CSV ``id,context,question,answer0..3,label`` (CRLF line ends, quoted fields).

    Line numbers are physical lines (a quoted field may span several).

    Raises:
        DataError: for a missing header column, a wrong column count or a bad label.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader)
    missing = [c for c in COSMOS_COLUMNS if c not in header]
    if missing:
        raise DataError(f"header lacks column(s) {missing} (has {header})", file=path, line=1)
    col = {name: header.index(name) for name in COSMOS_COLUMNS}
    k = spec.num_choices or 0
    allowed = [str(i) for i in range(k)]
    out: list[Example] = []
    start = reader.line_num + 1
    for row in reader:
        if not row:
            start = reader.line_num + 1
            continue
        if len(row) != len(header):
            raise DataError(
                f"expected {len(header)} CSV columns (as in the header), found {len(row)}",
                file=path,
                line=start,
            )
        out.append(
            MultipleChoiceExample(
                guid=row[col["id"]],
                context=row[col["context"]],
                question=row[col["question"]],
                choices=tuple(row[col[f"answer{i}"]] for i in range(k)),
                label=_label_index(row[col["label"]], allowed, spec, path, start),
                origin=origin(path, start),
            )
        )
        start = reader.line_num + 1
    return out
