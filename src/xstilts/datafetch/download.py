"""Resumable, checksummed HTTP downloads with the standard library (``urllib``).

A file is downloaded into ``<dest>.part``. A dropped connection (or an interrupted earlier run)
resumes from the bytes already there with an HTTP ``Range`` request; a server that ignores the
range (``200`` instead of ``206``) restarts the file from zero. Only when the whole file is
there and its sha256 matches the published checksum is it renamed to ``dest``; a mismatch
deletes the ``.part`` file and raises one :class:`~xstilts.errors.DataError` naming the URL and
both checksums. A source without a published checksum is downloaded "unverified" (its sha256
is recorded, never invented).

``urllib`` rather than ``requests``: no new dependency, and Range/resume is a few lines.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.errors import DataError
from xstilts.fileio import sha256_file

CHUNK = 1 << 16
# Retries after a dropped connection, each resuming where the file stopped.
RETRIES = 4
TIMEOUT_S = 30.0
USER_AGENT = "xstilts-data-fetch (+https://github.com/; resumable downloads)"
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)

# ``progress(advance_bytes, total_bytes_or_None)``: called as bytes arrive.
ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Fetched:
    """A finished download: where it is, its sha256, whether that matched a published one."""

    path: Path
    sha256: str
    verified: bool
    resumed_from: int  # bytes that were already there (0 = fresh download)


def _validator_file(part: Path) -> Path:
    """Where the ETag/Last-Modified of the file being downloaded into ``part`` is kept."""
    return part.with_name(part.name + ".validator")


def _open(url: str, start: int, timeout: float, validator: str) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
        if validator:  # the server sends the whole file (200) if it changed meanwhile
            headers["If-Range"] = validator
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _total(resp: http.client.HTTPResponse, start: int) -> int | None:
    """Full size of the file from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    if resp.status == 206:
        crange = resp.headers.get("Content-Range", "")
        size = crange.rpartition("/")[2]
        return int(size) if size.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _transfer(url: str, part: Path, timeout: float, progress: ProgressFn | None) -> None:
    """Append the rest of ``url`` to ``part`` (one connection); raises on a dropped link."""
    start = part.stat().st_size if part.exists() else 0
    vfile = _validator_file(part)
    validator = vfile.read_text(encoding="utf-8") if start and vfile.is_file() else ""
    try:
        resp = _open(url, start, timeout, validator)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # asked past the end: the .part is already whole
            return
        raise
    with resp:
        if start and resp.status != 206:  # Range ignored, or the file changed: start over
            start = 0
        if not start:
            fresh = resp.headers.get("ETag") or resp.headers.get("Last-Modified") or ""
            vfile.write_text(fresh, encoding="utf-8")
        total = _total(resp, start)
        if progress is not None:
            progress(start, total)
        with open(part, "ab" if start else "wb") as fh:
            got = start
            while block := resp.read(CHUNK):
                fh.write(block)
                got += len(block)
                if progress is not None:
                    progress(len(block), total)
        if total is not None and got < total:
            raise http.client.IncompleteRead(b"", total - got)


def download(
    url: str,
    dest: Path,
    sha256: str | None = None,
    *,
    progress: ProgressFn | None = None,
    retries: int = RETRIES,
    timeout: float = TIMEOUT_S,
) -> Fetched:
    """Download ``url`` to ``dest`` (resuming a ``.part`` file) and check its sha256.

    Args:
        url: http(s) URL.
        dest: Final path; an existing file is kept when it matches ``sha256``.
        sha256: The published checksum, or None (then the file is "unverified").
        progress: Called with ``(bytes advanced, total or None)``.
        retries: Reconnections after a dropped connection (each resumes).
        timeout: Socket timeout per connection, seconds.

    Raises:
        DataError: unreachable after the retries, an HTTP error, or a checksum mismatch (the
            bad file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and sha256 is not None:
        got = sha256_file(dest)
        if got == sha256:  # a finished earlier download: checked, not trusted
            return Fetched(dest, got, True, dest.stat().st_size)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as exc:
            raise DataError(f"HTTP {exc.code} {exc.reason} for {url}", file=dest,
                            hint="check the URL or --mirror") from exc  # fmt: skip
        except _NETWORK_ERRORS as exc:
            if attempt == retries:
                raise DataError(
                    f"download of {url} failed after {retries + 1} attempts: {exc}",
                    file=part,
                    hint="rerun the same command: it resumes from the bytes already fetched",
                ) from exc
            time.sleep(min(0.2 * 2**attempt, 5.0))
    _validator_file(part).unlink(missing_ok=True)
    got = sha256_file(part)
    if sha256 is not None and got != sha256:
        part.unlink()
        raise DataError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; the file was "
            "deleted",
            file=dest,
            hint="a changed or corrupted upstream file, or a wrong mirror; nothing was installed",
        )
    os.replace(part, dest)
    return Fetched(dest, got, sha256 is not None, resumed_from)
