"""Turn downloaded files into the data layout xstilts reads (``xtreme/`` and ``english/``).

Installers write under a staging root; :mod:`xstilts.datafetch.fetch` moves the files into
the data dir only when a source installed completely. Formats written are the ones the readers
in :mod:`xstilts.tasks.readers` parse (and XTREME's ``utils_preprocess.py`` writes): XNLI and
PAWS-X as ``text_a<TAB>text_b<TAB>label`` without header, written with ``csv.writer`` (a field
holding ``"`` is quoted, as XTREME's PAWS-X files are; the TSV reader unquotes it).
"""

from __future__ import annotations

import csv
import functools
import json
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from xstilts.datafetch.sources import Source
from xstilts.errors import DataError
from xstilts.tasks.readers.squad import TYDI_LANGUAGES

# url -> downloaded file
Downloads = dict[str, Path]
Installer = Callable[[Source, Downloads, Path, set[str]], list[str]]


def _safe(root: Path, rel: str) -> Path:
    """``root / rel``, refusing paths that leave ``root`` (archive member names are input)."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(f"archive member would be written outside the data dir: {rel!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _members(archive: Path) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """``(member name, opener)`` for every regular file of a zip or tar(.gz/.bz2) archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, functools.partial(zf.open, info)
        return
    try:
        # Streaming mode ("r|*"): one pass, no index of a 355 MB archive in memory.
        with tarfile.open(archive, mode="r|*") as tf:
            for member in tf:
                if member.isfile():
                    yield member.name, _tar_opener(tf, member)
    except tarfile.TarError as exc:
        raise DataError(f"not a readable zip or tar archive: {exc}", file=archive) from exc


def _tar_opener(tf: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    """Opens ``member`` (a regular file, so ``extractfile`` never returns None for it)."""

    def opener() -> IO[bytes]:
        fh = tf.extractfile(member)
        if fh is None:  # only links and directories have no data
            raise DataError(f"archive member {member.name!r} is not a regular file")
        return fh

    return opener


def _wanted(match: re.Match[str], langs: set[str]) -> bool:
    """A member whose ``lang`` group is outside ``langs`` (when given) is skipped."""
    lang = match.groupdict().get("lang")
    return not langs or lang is None or lang in langs


def install_copy(source: Source, files: Downloads, root: Path, langs: set[str]) -> list[str]:
    """Files installed as they are, each at its ``Remote.dest``."""
    written = []
    for remote in source.remotes:
        if remote.url in files:
            shutil.copyfile(files[remote.url], _safe(root, remote.dest))
            written.append(remote.dest)
    return written


def install_extract(source: Source, files: Downloads, root: Path, langs: set[str]) -> list[str]:
    """Archive members matching ``source.extract`` rules, to the rules' destinations."""
    rules = [(re.compile(pattern), template) for pattern, template in source.extract]
    written: list[str] = []
    for archive in files.values():
        for name, opener in _members(archive):
            for regex, template in rules:
                m = regex.search(name)
                if m is None or not _wanted(m, langs):
                    continue
                dest = template.format(*m.groups(), **m.groupdict())
                with opener() as src, open(_safe(root, dest), "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
                break
    if not written:
        raise DataError(f"no expected file found in the {source.name} download",
                        file=next(iter(files.values()), None),
                        hint="the upstream archive layout changed; please report it")  # fmt: skip
    return written


def _write_pairs(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)


def _tsv_rows(raw: bytes, where: str) -> Iterator[dict[str, str]]:
    """Rows of a raw (unquoted) TSV with a header, split on ``\\n`` only."""
    lines = raw.decode("utf-8").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise DataError(f"expected {len(header)} tab-separated fields, found {len(fields)}",
                            file=where, line=number)  # fmt: skip
        yield dict(zip(header, fields, strict=True))


def install_xnli(source: Source, files: Downloads, root: Path, langs: set[str]) -> list[str]:
    """``XNLI-1.0/xnli.{dev,test}.tsv`` -> ``xtreme/xnli/{dev,test}-{lang}.tsv``."""
    per_file: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    for archive in files.values():
        for name, opener in _members(archive):
            m = re.search(r"(?:^|/)xnli\.(dev|test)\.tsv$", name)
            if m is None:
                continue
            with opener() as fh:
                for row in _tsv_rows(fh.read(), name):
                    if not langs or row["language"] in langs:
                        per_file.setdefault(m.group(1), {}).setdefault(row["language"], []).append(
                            (row["sentence1"], row["sentence2"], row["gold_label"])
                        )
    written = []
    for split, by_lang in per_file.items():
        for lang, rows in by_lang.items():
            rel = f"xtreme/xnli/{split}-{lang}.tsv"
            _write_pairs(_safe(root, rel), rows)
            written.append(rel)
    return written


def install_pawsx(source: Source, files: Downloads, root: Path, langs: set[str]) -> list[str]:
    """``x-final/{lang}/{dev_2k,test_2k}.tsv`` and ``en/train.tsv`` -> ``{split}-{lang}.tsv``."""
    names = {"dev_2k.tsv": "dev", "test_2k.tsv": "test", "train.tsv": "train"}
    written = []
    for archive in files.values():
        for name, opener in _members(archive):
            m = re.search(r"(?:^|/)x-final/([a-z]+)/([a-z_0-9]+\.tsv)$", name)
            if m is None or m.group(2) not in names or (langs and m.group(1) not in langs):
                continue
            with opener() as fh:
                rows = [(r["sentence1"], r["sentence2"], r["label"])
                        for r in _tsv_rows(fh.read(), name)]  # fmt: skip
            rel = f"xtreme/pawsx/{names[m.group(2)]}-{m.group(1)}.tsv"
            _write_pairs(_safe(root, rel), rows)
            written.append(rel)
    return written


def _split_tydi(data: dict[str, Any], where: str) -> dict[str, list[dict[str, Any]]]:
    """TyDiQA-GoldP articles grouped by the language named in their QA ids."""
    out: dict[str, list[dict[str, Any]]] = {}
    for number, article in enumerate(data.get("data", []), start=1):
        qas = [qa for p in article.get("paragraphs", []) for qa in p.get("qas", [])]
        prefix = str(qas[0].get("id", "")).split("-", 1)[0] if qas else ""
        if prefix not in TYDI_LANGUAGES:
            raise DataError(f"QA id without a TyDi language prefix: {prefix!r}", file=where,
                            line=number)  # fmt: skip
        out.setdefault(TYDI_LANGUAGES[prefix], []).append(article)
    return out


def install_tydiqa(source: Source, files: Downloads, root: Path, langs: set[str]) -> list[str]:
    """The multilingual GoldP train/dev files split into ``tydiqa.goldp.{lang}.{split}.json``."""
    written = []
    for url, path in files.items():
        split = "train" if url.endswith("-train.json") else "dev"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"not valid JSON: {exc}", file=path) from exc
        for lang, articles in _split_tydi(data, str(path)).items():
            if langs and lang not in langs:
                continue
            rel = f"xtreme/tydiqa/tydiqa-goldp-v1.1-{split}/tydiqa.goldp.{lang}.{split}.json"
            doc = {"data": articles, "version": data.get("version", "")}
            _safe(root, rel).write_text(json.dumps(doc, ensure_ascii=True), encoding="utf-8")
            written.append(rel)
    return written


INSTALLERS: dict[str, Installer] = {
    "copy": install_copy,
    "extract": install_extract,
    "xnli": install_xnli,
    "pawsx": install_pawsx,
    "tydiqa": install_tydiqa,
}
