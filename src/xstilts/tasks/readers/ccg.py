"""CCGbank "AUTO" derivations (CCG supertagging; LDC2005T13, licensed, not in the shared data).

Each sentence is a header line ``ID=wsj_0001.1 PARSER=GOLD NUMPARSE=1`` followed by one
derivation line of nested nodes::

    (<T S[dcl] 0 2> (<L N/N NNP NNP Pierre N_73/N_73>) ... )

Internal nodes are ``(<T category head_index n_children> children...)`` and leaves are
``(<L category modified_POS original_POS word predicate_argument_category>)``. The supertag of
a word is its leaf category. Files live under ``data/AUTO/{section}/wsj_{section}{nn}.auto``.
"""

from __future__ import annotations

import re
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.examples import Example, TaggingExample
from xstilts.tasks.readers._common import (
    LabelMapper,
    logger,
    origin,
    read_lines,
    report_skipped,
)
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec

_ID = re.compile(r"^ID=(\S+)")
# A leaf ends at the first ">)"; categories never contain ">" and words contain no spaces.
_LEAF = re.compile(r"\(<L (.*?)>\)")
_NODE = re.compile(r"<T [^<>]*>")
LEAF_FIELDS = 5

CCGBANK_HINT = (
    "CCGbank is LDC-licensed (LDC2005T13, https://catalog.ldc.upenn.edu/LDC2005T13) and not "
    "in the shared data: obtain it and place its data/AUTO/{00..24}/*.auto files under "
    "<data_dir>/english/ccgbank/data/AUTO/"
)


def parse_derivation(text: str, path: Path, line: int) -> list[tuple[str, str]]:
    """``(word, supertag)`` for every leaf of one derivation line, in sentence order.

    Raises:
        DataError: for unbalanced parentheses, a leaf without 5 fields, or no leaf at all.
    """
    leaves: list[tuple[str, str]] = []
    for match in _LEAF.finditer(text):
        fields = match.group(1).split()
        if len(fields) != LEAF_FIELDS:
            raise DataError(
                f"CCG leaf {match.group(0)!r} has {len(fields)} fields, expected {LEAF_FIELDS} "
                "(category, modified POS, original POS, word, predicate-argument category)",
                file=path,
                line=line,
            )
        leaves.append((fields[3], fields[0]))
    # Only the tree's own parentheses remain once leaves and node labels are removed.
    skeleton = _NODE.sub("", _LEAF.sub("", text))
    depth = 0
    for ch in skeleton:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0 or not text.lstrip().startswith("(<"):
        raise DataError("malformed CCG derivation (unbalanced parentheses)", file=path, line=line)
    if not leaves:
        raise DataError("CCG derivation has no leaves", file=path, line=line)
    return leaves


class _TagMapper:
    """Supertag -> index; tags outside ``spec.labels`` go to ``fields["unknown_tag"]`` if set.

    The supertag inventory is open-ended (about 1,300 categories in sections 02-21), so the
    usual practice is a fixed frequent-tag set plus a catch-all; every mapped token is counted.
    """

    def __init__(self, source: SplitSource, spec: TaskSpec, path: Path) -> None:
        self.labels = LabelMapper(source, spec, path)
        self.unknown = source.fields.get("unknown_tag")
        self.index = spec.label_to_id
        self.mapped = 0

    def __call__(self, tag: str, line: int) -> int | None:
        name = self.labels.source.label_map.get(tag, tag)
        if self.unknown is not None and name not in self.index:
            self.mapped += 1
            return self.index[self.unknown]
        return self.labels(tag, line)


@register_reader("ccg_auto")
def read_ccg_auto(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """One :class:`TaggingExample` (words, supertags) per derivation.

    Raises:
        DataError: for a derivation without its ``ID=`` line (or vice versa), a malformed
            derivation, or a supertag outside the task's labels (when no catch-all is set).
    """
    tags = _TagMapper(source, spec, path)
    out: list[Example] = []
    pending: tuple[str, int] | None = None  # (sentence id, line) awaiting its derivation
    dropped = 0
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        header = _ID.match(line)
        if header:
            if pending is not None:
                raise DataError(f"{pending[0]} has no derivation line", file=path, line=number)
            pending = (header.group(1), number)
            continue
        if pending is None:
            raise DataError("derivation line without a preceding ID= line", file=path, line=number)
        leaves = parse_derivation(line, path, number)
        ids = [tags(tag, number) for _, tag in leaves]
        pending_id, pending = pending[0], None
        if None in ids:
            dropped += 1
            continue
        out.append(
            TaggingExample(
                guid=pending_id,
                tokens=tuple(word for word, _ in leaves),
                tags=tuple(i for i in ids if i is not None),
                origin=origin(path, number),
            )
        )
    if pending is not None:
        raise DataError(f"{pending[0]} has no derivation line", file=path, line=pending[1])
    report_skipped(path, dropped, "a skip-listed supertag (whole sentence dropped)")
    if tags.mapped:
        logger.warning(
            "%s: %d token(s) had supertags outside the %d-tag inventory and were tagged %r",
            path,
            tags.mapped,
            len(spec.labels),
            tags.unknown,
        )
    return out
