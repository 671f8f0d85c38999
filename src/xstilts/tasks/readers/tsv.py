"""Tab-separated classification files: XTREME's XNLI/PAWS-X (no header) and GLUE (header).

Rows are parsed with ``csv.reader(delimiter='\\t')`` semantics, one physical line at a time:
XTREME wrote PAWS-X with ``csv.writer``, so fields containing ``"`` are quoted with inner quotes
doubled (the GLUE QQP file here is quoted the same way); ``csv`` unquotes them. Lines are split on
``\\n`` only (see :func:`split_lines`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.examples import ClassificationExample, Example
from xstilts.tasks.readers._common import LabelMapper, origin, read_lines
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec

PAIR_COLUMNS = 3  # premise/sentence1, hypothesis/sentence2, label


def parse_row(line: str) -> list[str]:
    """One TSV line split into fields with CSV quoting rules (``"a""b"`` -> ``a"b``)."""
    return next(csv.reader([line], delimiter="\t"), [])


@register_reader("xnli_tsv")
def read_pair_tsv(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """XTREME XNLI / PAWS-X: ``text_a<TAB>text_b<TAB>label``, no header.

    Raises:
        DataError: for a row without exactly 3 columns or with an unknown label.
    """
    labels = LabelMapper(source, spec, path)
    out: list[Example] = []
    for number, line in enumerate(read_lines(path), start=1):
        row = parse_row(line)
        if len(row) != PAIR_COLUMNS:
            raise DataError(
                f"expected {PAIR_COLUMNS} tab-separated columns (text_a, text_b, label), "
                f"found {len(row)}",
                file=path,
                line=number,
            )
        label = labels(row[2].strip(), number)
        if label is None:
            continue
        out.append(
            ClassificationExample(
                guid=f"{lang}-{path.stem}-{number}",
                text_a=row[0],
                text_b=row[1],
                label=label,
                origin=origin(path, number),
            )
        )
    labels.report()
    return out


@register_reader("glue_tsv")
def read_header_tsv(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """GLUE-style TSV with a header; columns are picked by name.

    ``source.fields`` maps ``text_a`` (required), ``text_b`` (optional: single sentence when
    absent), ``label`` (default ``"label"``) and ``guid`` (optional) to header column names,
    e.g. QQP ``{"text_a": "question1", "text_b": "question2", "label": "is_duplicate"}``.

    Raises:
        DataError: for a missing header column, a row whose column count differs from the
            header's, or an unknown label.
    """
    lines = read_lines(path)
    header = parse_row(lines[0])
    wanted = {"label": source.fields.get("label", "label"), **dict(source.fields)}
    if "text_a" not in wanted:
        raise DataError(f"source for task {spec.name!r} maps no 'text_a' column", file=path)
    missing = [col for col in wanted.values() if col not in header]
    if missing:
        raise DataError(f"header lacks column(s) {missing} (has {header})", file=path, line=1)
    col = {name: header.index(column) for name, column in wanted.items()}
    labels = LabelMapper(source, spec, path)
    out: list[Example] = []
    for number, line in enumerate(lines[1:], start=2):
        row = parse_row(line)
        if len(row) != len(header):
            raise DataError(
                f"expected {len(header)} tab-separated columns (as in the header), "
                f"found {len(row)}",
                file=path,
                line=number,
            )
        label = labels(row[col["label"]].strip(), number)
        if label is None:
            continue
        guid = row[col["guid"]] if "guid" in col else str(number)
        out.append(
            ClassificationExample(
                guid=f"{path.stem}-{guid}",
                text_a=row[col["text_a"]],
                text_b=row[col["text_b"]] if "text_b" in col else None,
                label=label,
                origin=origin(path, number),
            )
        )
    labels.report()
    return out
