"""Helpers shared by the readers: line splitting, label mapping, skip counting, JSON loading."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.tasks.spec import SplitSource, TaskSpec

logger = logging.getLogger("xstilts.tasks.readers")


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text (BOM removed).

    Raises:
        DataError: if the file is missing, a directory, a symlink loop, unreadable, not UTF-8,
            or empty (no non-whitespace content).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        what = "broken symlink (its target does not exist)" if path.is_symlink() else "not found"
        raise DataError(f"file {what}", file=path) from None
    except IsADirectoryError:
        raise DataError(
            "is a directory, expected a file", file=path,
            hint="remove the directory or point data_dir at the right folder",
        ) from None  # fmt: skip
    except OSError as exc:  # ELOOP (a symlink loop), EACCES, EIO ...
        raise DataError(f"cannot read the file: {exc.strerror}", file=path) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 (byte {exc.start})", file=path, line=line,
            hint="re-encode the file as UTF-8",
        ) from None  # fmt: skip
    if not text.strip():
        raise DataError("file is empty", file=path, line=1)
    return text


def split_lines(text: str) -> list[str]:
    r"""Lines split on ``\n`` only, with one trailing ``\r`` removed from each.

    ``str.splitlines()`` also breaks on ``\x1c``, ``\x85``, ``\u2028`` ... which occur *inside*
    PAWS-X and Tatoeba sentences, so it would shift every later line number.
    The empty string after a final newline is dropped.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_lines(path: Path) -> list[str]:
    """:func:`read_text` then :func:`split_lines`."""
    return split_lines(read_text(path))


class LabelMapper:
    """Maps raw labels through ``source.label_map`` to ``spec.labels`` indices; counts skips."""

    def __init__(self, source: SplitSource, spec: TaskSpec, path: Path) -> None:
        self.source = source
        self.spec = spec
        self.path = path
        self.index = spec.label_to_id
        self.skipped = 0

    def __call__(self, raw: str, line: int) -> int | None:
        """Class index of ``raw``, or ``None`` (counted) when ``raw`` is in ``skip_labels``.

        Raises:
            DataError: naming the label and the allowed ones when it is unknown.
        """
        if raw in self.source.skip_labels:
            self.skipped += 1
            return None
        name = self.source.label_map.get(raw, raw)
        if name not in self.index:
            allowed = sorted(set(self.index) | set(self.source.label_map))
            raise DataError(
                f"unknown label {raw!r} for task {self.spec.name!r} (allowed: {allowed})",
                file=self.path,
                line=line,
            )
        return self.index[name]

    def report(self) -> None:
        """Log one warning with the number of skipped records (never a silent drop)."""
        report_skipped(self.path, self.skipped, f"label in {list(self.source.skip_labels)}")


def report_skipped(path: Path, count: int, why: str) -> None:
    """One ``logging`` warning saying how many records of ``path`` were dropped and why."""
    if count:
        logger.warning("%s: skipped %d record(s) with %s", path, count, why)


def load_json(path: Path) -> Any:
    """Parse a JSON document.

    Raises:
        DataError: with the line of the syntax error for invalid JSON.
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, record)`` for every non-blank line of a JSON-lines file.

    Raises:
        DataError: for a line that is not a JSON object.
    """
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", file=path, line=number) from None
        if not isinstance(record, dict):
            raise DataError("expected a JSON object per line", file=path, line=number)
        yield number, record


def get_field(record: dict[str, Any], key: str, path: Path, line: int) -> Any:
    """``record[key]`` (dotted keys walk nested objects).

    Raises:
        DataError: naming the missing field.
    """
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise DataError(f"missing field {key!r}", file=path, line=line)
        value = value[part]
    return value


_JSON_KINDS = {dict: "object", list: "array", int: "number", float: "number", bool: "boolean"}


def get_text(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    """``record[key]`` (dotted keys walk nested objects), which must be a JSON string.

    A ``null`` would otherwise become the text ``"None"`` and be trained and scored on.

    Raises:
        DataError: naming the field when it is missing, null or not a string.
    """
    value = get_field(record, key, path, line)
    if not isinstance(value, str):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        got = "null" if value is None else f"a JSON {kind} ({json.dumps(value)[:40]})"
        raise DataError(f"field {key!r} is {got}, expected a string", file=path, line=line)
    return value


def get_label(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    """The raw label ``record[key]`` as text (JSON strings and numbers; ``1`` -> ``"1"``).

    Raises:
        DataError: naming the field when it is missing, null, an object or an array.
    """
    value = get_field(record, key, path, line)
    if value is None or isinstance(value, dict | list):
        got = "null" if value is None else f"a JSON {_JSON_KINDS[type(value)]}"
        raise DataError(f"label field {key!r} is {got}", file=path, line=line)
    return str(value).strip()


def field_name(source: SplitSource, name: str, default: str) -> str:
    """The file's name for the logical field ``name`` (``source.fields`` override)."""
    return source.fields.get(name, default)


def origin(path: Path, line: int) -> str:
    """``"file:line"`` recorded on every example."""
    return f"{path}:{line}"
