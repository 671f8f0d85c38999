"""Word-level tagging files: UD CoNLL-U (UD-POS) and ``token<TAB>tag`` TSV (PAN-X, XTREME udpos).

Sentences are separated by blank lines; a missing blank line at end of file (as XTREME writes
PAN-X) is fine. Error line numbers point at the offending token line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.examples import Example, TaggingExample
from xstilts.tasks.readers._common import LabelMapper, origin, read_lines, report_skipped
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec

CONLLU_COLUMNS = 10
FORM, UPOS = 1, 3  # 0-based CoNLL-U columns (FORM is column 2, UPOS column 4)


@dataclass
class _Builder:
    """Collects tokens of the current sentence and emits examples at sentence breaks."""

    path: Path
    lang: str
    labels: LabelMapper
    examples: list[Example] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    first_line: int = 0
    dropped: int = 0  # sentences containing a skip-listed tag
    skip_current: bool = False

    def add(self, token: str, raw_tag: str, line: int) -> None:
        if not self.tokens and not self.skip_current:
            self.first_line = line
        tag = self.labels(raw_tag, line)
        if tag is None:
            self.skip_current = True
            return
        self.tokens.append(token)
        self.tags.append(tag)

    def flush(self) -> None:
        if self.skip_current:
            self.dropped += 1
        elif self.tokens:
            number = len(self.examples)
            self.examples.append(
                TaggingExample(
                    guid=f"{self.lang}-{self.path.stem}-{number}",
                    tokens=tuple(self.tokens),
                    tags=tuple(self.tags),
                    origin=origin(self.path, self.first_line),
                )
            )
        self.tokens, self.tags, self.skip_current = [], [], False

    def finish(self) -> list[Example]:
        self.flush()
        report_skipped(self.path, self.dropped, "a skip-listed tag (whole sentence dropped)")
        return self.examples


def _read_conllu(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """FORM and UPOS of the integer-ID token lines (multi-word ranges and empty nodes skipped)."""
    out = _Builder(path, lang, LabelMapper(source, spec, path))
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            out.flush()
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != CONLLU_COLUMNS:
            raise DataError(
                f"expected {CONLLU_COLUMNS} tab-separated CoNLL-U columns, found {len(cols)}",
                file=path,
                line=number,
            )
        if "-" in cols[0] or "." in cols[0]:
            continue  # multi-word token range (1-2) or empty node (1.1): no UPOS of its own
        if not cols[0].isdigit():
            raise DataError(f"bad CoNLL-U token id {cols[0]!r}", file=path, line=number)
        out.add(cols[FORM], cols[UPOS], number)
    return out.finish()


def _read_token_tag(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """``token<TAB>tag`` lines; a leading ``{lang}:`` on tokens (XTREME PAN-X) is removed."""
    prefix = f"{lang}:"
    out = _Builder(path, lang, LabelMapper(source, spec, path))
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            out.flush()
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(
                f"expected 2 tab-separated columns (token, tag), found {len(cols)}",
                file=path,
                line=number,
            )
        token = cols[0][len(prefix) :] if cols[0].startswith(prefix) else cols[0]
        out.add(token, cols[1].strip(), number)
    return out.finish()


@register_reader("conllu")
def read_conllu(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """UD-POS: CoNLL-U for ``*.conllu``; XTREME's processed ``token<TAB>tag`` for other names.

    Raises:
        DataError: for a wrong column count, a bad token id or an unknown tag.
    """
    if path.suffix == ".conllu":
        return _read_conllu(path, source, spec, lang)
    return _read_token_tag(path, source, spec, lang)


@register_reader("token_tag_tsv")
def read_token_tag_tsv(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """PAN-X (XTREME): ``token<TAB>tag`` per line, blank line between sentences.

    Raises:
        DataError: for a line without exactly 2 columns or an unknown tag.
    """
    return _read_token_tag(path, source, spec, lang)
