"""Bitext retrieval: Tatoeba (aligned line files) and BUCC 2018 (id files + gold pairs).

Each file pair yields ONE :class:`RetrievalCorpus` per language: ``source`` is the non-English
side, ``target`` the English side.

Tatoeba gold is the identity (line i <-> line i), which holds for LASER's original files (and
the shared data). XTREME's ``--task tatoeba`` preprocessing SORTS the English side to hide the
alignment, so with XTREME's processed files the gold is unknown; the reader refuses an English
side that is in sorted order rather than score against a wrong gold.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.examples import Example, RetrievalCorpus
from xstilts.tasks.readers._common import read_lines
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec

# Below this many lines a naturally ordered file can be sorted by chance.
SORTED_CHECK_MIN_LINES = 10


def _sibling(path: Path, suffix: str, what: str) -> Path:
    """``path`` with its last suffix replaced; it must exist.

    Raises:
        DataError: naming the expected sibling file.
    """
    sibling = path.with_suffix(suffix)
    if not sibling.is_file():
        raise DataError(f"{what} file {sibling.name} not found next to {path.name}", file=sibling)
    return sibling


@register_reader("tatoeba", companions=(".en",))
def read_tatoeba(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """``{xx}-en.{xx}`` plus its sibling ``{xx}-en.en``; gold = identity over aligned lines.

    Raises:
        DataError: for an empty or missing file, different line counts (naming both files and
            counts), or a sorted English side (XTREME's processed copy: gold unknown).
    """
    english = _sibling(path, ".en", "English side")
    src, tgt = read_lines(path), read_lines(english)
    if len(src) != len(tgt):
        raise DataError(
            f"misaligned Tatoeba pair: {path.name} has {len(src)} lines but {english.name} has "
            f"{len(tgt)} (line i of one must translate line i of the other)",
            file=path,
            line=min(len(src), len(tgt)) + 1,
        )
    if len(tgt) >= SORTED_CHECK_MIN_LINES and tgt == sorted(tgt):
        raise DataError(
            f"{english.name} is sorted, as in XTREME's processed Tatoeba: the line alignment "
            "(gold) is unknown",
            file=english,
            hint="use LASER's original data/tatoeba/v1/tatoeba.xxx-eng.eng order",
        )
    return [
        RetrievalCorpus(
            guid=f"tatoeba-{lang}",
            source=tuple(src),
            target=tuple(tgt),
            gold=tuple((i, i) for i in range(len(src))),
            origin=str(path),
        )
    ]


def _read_id_file(path: Path) -> tuple[list[str], list[str]]:
    """BUCC ``id<TAB>sentence`` lines -> (ids, sentences).

    Raises:
        DataError: for a wrong column count or a duplicate id.
    """
    ids: list[str] = []
    sentences: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(read_lines(path), start=1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(
                f"expected 2 tab-separated columns (id, sentence), found {len(cols)}",
                file=path,
                line=number,
            )
        if cols[0] in seen:
            raise DataError(f"duplicate sentence id {cols[0]!r}", file=path, line=number)
        seen.add(cols[0])
        ids.append(cols[0])
        sentences.append(cols[1])
    return ids, sentences


@register_reader("bucc", companions=(".en", ".gold"))
def read_bucc(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """``{xx}-en.{split}.{xx}``, ``.en`` (``id<TAB>sentence``) and ``.gold`` (``xx-id<TAB>en-id``).

    Raises:
        DataError: for a missing sibling, a wrong column count, a duplicate id, or a gold id
            absent from the sentence files.
    """
    english = _sibling(path, ".en", "English side")
    gold_path = _sibling(path, ".gold", "gold")
    src_ids, src = _read_id_file(path)
    tgt_ids, tgt = _read_id_file(english)
    src_index = {sid: i for i, sid in enumerate(src_ids)}
    tgt_index = {tid: i for i, tid in enumerate(tgt_ids)}
    gold: list[tuple[int, int]] = []
    for number, line in enumerate(read_lines(gold_path), start=1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(
                f"expected 2 tab-separated columns ({lang}-id, en-id), found {len(cols)}",
                file=gold_path,
                line=number,
            )
        for sid, index, side in ((cols[0], src_index, path), (cols[1], tgt_index, english)):
            if sid not in index:
                raise DataError(
                    f"gold id {sid!r} is not in {side.name}", file=gold_path, line=number
                )
        gold.append((src_index[cols[0]], tgt_index[cols[1]]))
    return [
        RetrievalCorpus(
            guid=f"bucc-{lang}",
            source=tuple(src),
            target=tuple(tgt),
            gold=tuple(gold),
            source_ids=tuple(src_ids),
            target_ids=tuple(tgt_ids),
            origin=str(path),
        )
    ]
