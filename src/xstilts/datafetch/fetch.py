"""``xstilts data fetch``: download, check and install data sets into the layout xstilts reads.

Per source: print its licence, download every file (resumable, sha256-checked, progress bar)
into ``<dir>/.downloads/``, install into a staging folder, move the files into place, and only
then record the source in ``<dir>/.xstilts-fetch.json`` (files, their sha256, which downloads
matched a published checksum). A failed source leaves nothing behind but resumable ``.part``
files; a recorded source whose files still hash as recorded is not fetched again.

``--mirror URL`` (or ``$XSTILTS_DATA_MIRROR``) reads every official URL from a mirror instead:
``https://host/path`` becomes ``URL/host/path`` (an institute's copy, or the test server).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from xstilts.datafetch.download import Fetched, download
from xstilts.datafetch.install import INSTALLERS
from xstilts.datafetch.sources import Remote, Source
from xstilts.errors import DataError
from xstilts.fileio import sha256_file, write_json

MANIFEST = ".xstilts-fetch.json"
DOWNLOADS = ".downloads"
MIRROR_ENV = "XSTILTS_DATA_MIRROR"


@dataclass
class Outcome:
    """What happened to one source."""

    source: str
    status: str  # installed | present | manual | skipped | failed
    message: str = ""
    files: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def mirror_url(url: str, mirror: str | None) -> str:
    """``url`` read from ``mirror`` (``https://host/p`` -> ``MIRROR/host/p``), or as is."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def read_manifest(data_dir: Path) -> dict[str, Any]:
    """The fetch manifest of ``data_dir`` (empty when none was written).

    Raises:
        DataError: a manifest that is not valid JSON.
    """
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return {"sources": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"fetch manifest is not valid JSON: {exc}", file=path,
                        hint="delete it and fetch again") from exc  # fmt: skip
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sources", {}), dict):
        raise DataError("fetch manifest is not a JSON object with 'sources'", file=path,
                        hint="delete it and fetch again")  # fmt: skip
    manifest.setdefault("sources", {})
    return manifest


def _still_installed(data_dir: Path, entry: dict[str, Any], langs: list[str]) -> bool:
    """A recorded source whose files all exist with their recorded sha256 (and languages)."""
    if sorted(entry.get("languages", [])) != sorted(langs):
        return False
    files = entry.get("files", {})
    return bool(files) and all(
        (data_dir / rel).is_file() and sha256_file(data_dir / rel) == digest
        for rel, digest in files.items()
    )


@contextmanager
def _bars(console: Console, enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=False) as prog:
        yield prog


def _download_all(
    source: Source, remotes: Sequence[Remote], data_dir: Path, mirror: str | None,
    progress: Progress | None,
) -> tuple[dict[str, Path], list[Fetched]]:  # fmt: skip
    files: dict[str, Path] = {}
    fetched: list[Fetched] = []
    for remote in remotes:
        parts = urlsplit(remote.url)
        dest = data_dir / DOWNLOADS / parts.netloc / parts.path.lstrip("/")
        task = None
        if progress is not None:
            task = progress.add_task(f"{source.name}: {Path(parts.path).name}", total=remote.size)

        def advance(n: int, total: int | None, task: Any = task) -> None:
            if progress is not None and task is not None:
                progress.update(task, advance=n, total=total)

        got = download(mirror_url(remote.url, mirror), dest, remote.sha256, progress=advance)
        files[remote.url] = got.path
        fetched.append(got)
    return files, fetched


def _install(source: Source, files: dict[str, Path], data_dir: Path, langs: set[str]) -> list[str]:
    """Install into a staging folder, then move every file into place; the relative paths."""
    staging = data_dir / f".staging-{source.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        written = INSTALLERS[source.install](source, files, staging, langs)
        for rel in written:
            target = data_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(set(written))


def fetch_source(
    source: Source,
    data_dir: Path,
    *,
    languages: Sequence[str] | None = None,
    mirror: str | None = None,
    force: bool = False,
    keep_downloads: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    """Fetch and install one source (see the module doc); never raises for a data problem.

    Returns:
        The outcome; ``failed`` carries the one-line error.
    """
    if source.manual:
        return Outcome(source.name, "manual", f"obtain it by hand: {source.manual}")
    declared = source.all_languages
    langs = [x for x in declared if languages is None or x in languages]
    if declared and not langs:
        return Outcome(source.name, "skipped", f"none of {list(languages or [])} in "
                       f"{source.name}'s languages {list(declared)}")  # fmt: skip
    manifest = read_manifest(data_dir)
    entry = manifest["sources"].get(source.name)
    if entry and not force and _still_installed(data_dir, entry, langs):
        return Outcome(source.name, "present", "already installed and unchanged (--force "
                       "fetches again)", sorted(entry["files"]))  # fmt: skip
    remotes = [r for r in source.remotes if r.lang is None or r.lang in langs]
    try:
        files, fetched = _download_all(source, remotes, data_dir, mirror, progress)
        written = _install(source, files, data_dir, set(langs))
        if not written:
            raise DataError("nothing was installed from the downloaded files",
                            hint="the upstream layout changed; please report it")  # fmt: skip
    except DataError as exc:
        return Outcome(source.name, "failed", " ".join(exc.message.split()))
    unverified = [r.url for r, f in zip(remotes, fetched, strict=True) if not f.verified]
    manifest = read_manifest(data_dir)  # re-read: keep entries written meanwhile
    manifest["sources"][source.name] = {
        "installed": datetime.now(UTC).isoformat(timespec="seconds"),
        "languages": langs,
        "licence": source.licence,
        "downloads": [
            {"url": r.url, "sha256": f.sha256, "verified": f.verified}
            for r, f in zip(remotes, fetched, strict=True)
        ],
        "files": {rel: sha256_file(data_dir / rel) for rel in written},
    }
    write_json(data_dir / MANIFEST, manifest)  # last: a source is recorded only when whole
    if not keep_downloads:
        for path in files.values():
            path.unlink(missing_ok=True)
    return Outcome(source.name, "installed", f"{len(written)} files", written, unverified)


def fetch(
    sources: Sequence[Source],
    data_dir: Path,
    *,
    languages: Sequence[str] | None = None,
    mirror: str | None = None,
    force: bool = False,
    keep_downloads: bool = False,
    console: Console | None = None,
    progress: bool = True,
) -> list[Outcome]:
    """Fetch ``sources`` into ``data_dir``, printing licence notes and one line per outcome.

    Returns:
        One outcome per source (the caller decides the exit status).
    """
    console = console or Console(stderr=True)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    outcomes = []
    with _bars(console, progress) as bars:
        for source in sources:
            console.print(f"[bold]{source.name}[/]: licence {source.licence}; cite "
                          f"{source.cite}", highlight=False)  # fmt: skip
            if source.note:
                console.print(f"  note: {source.note}", highlight=False)
            outcome = fetch_source(source, data_dir, languages=languages, mirror=mirror,
                                   force=force, keep_downloads=keep_downloads,
                                   progress=bars)  # fmt: skip
            style = {"failed": "red", "manual": "yellow", "skipped": "yellow"}.get(
                outcome.status, "green"
            )
            console.print(f"  [{style}]{outcome.status}[/]: {outcome.message}", highlight=False)
            for url in outcome.unverified:
                console.print(
                    f"  [yellow]unverified[/]: no published checksum for {url} "
                    "(its sha256 is recorded in the manifest)",
                    highlight=False,
                )
            outcomes.append(outcome)
    return outcomes
