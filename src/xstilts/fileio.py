"""Atomic, durable file writes: the one implementation every writer of the project uses.

A file is written to a temporary name in its own directory, fsynced, renamed onto its final
name and the directory fsynced, so a reader (or a resumed run) sees the old file or the new one,
never a torn one. A failed write (a full disk above all) becomes one :class:`CheckpointError`
naming the file, whichever library did the writing (safetensors reports I/O errors with its own
exception type, not ``OSError``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from xstilts.errors import CheckpointError

# safetensors formats Rust's io::Error: "... I/O error: No space left on device (os error 28) ...".
_OS_ERROR_CODE = re.compile(r"os error (\d+)")
_OS_ERROR_PATH = re.compile(r'at path "([^"]*)"')
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def fsync_dir(path: Path) -> None:
    """Make a rename inside directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_os_error(exc: BaseException) -> OSError | None:
    """``exc`` as an ``OSError`` if it is or wraps one (a safetensors I/O error), else None."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, SafetensorError):
        found = _OS_ERROR_CODE.search(str(exc))
        if found is not None:
            code = int(found.group(1))
            path = _OS_ERROR_PATH.search(str(exc))
            return OSError(code, os.strerror(code), path.group(1) if path else None)
    return None


def disk_error(path: Path, exc: OSError) -> CheckpointError:
    """The error for a failed write of ``path``: a full disk and a read-only or forbidden
    folder get their own words and what to do; anything else keeps the system's message."""
    if exc.errno == errno.ENOSPC:
        return CheckpointError(
            "no space left on device while writing",
            file=path,
            hint="free disk space and rerun: the stage resumes from its last complete checkpoint",
        )
    if exc.errno in _READ_ONLY:
        return CheckpointError(
            f"cannot write here ({os.strerror(exc.errno)})",
            file=path,
            hint="make the folder writable, or set output_dir (and cache_dir) to a writable one",
        )
    return CheckpointError(
        f"file system error: {exc}",
        file=path,
        hint="check the disk and rerun: finished work is kept",
    )


@contextmanager
def storage_errors(where: Path) -> Iterator[None]:
    """Turn an I/O error raised inside (``OSError`` or safetensors' own) into one
    :class:`CheckpointError` naming the file (``where`` when the error names none).

    For writers that do not go through :func:`atomic_write` (a tokenizer's ``save_pretrained``,
    checkpoint directories): a full disk must never surface as a traceback.
    """
    try:
        yield
    except (OSError, SafetensorError) as exc:
        os_error = as_os_error(exc)
        if os_error is None:
            raise
        raise disk_error(Path(os_error.filename or where), os_error) from exc


def ensure_writable_dir(path: Path) -> Path:
    """Create folder ``path`` if needed and prove it is writable with a probe file.

    A probe, not ``os.access``: root passes every permission check, yet cannot write to a
    read-only mount. Finding this before any training saves hours lost at the first save.

    Raises:
        CheckpointError: naming ``path`` when it cannot be created or written to.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        os.unlink(probe)
    except OSError as exc:
        raise disk_error(path, exc) from exc
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed (a 2 GB checkpoint is never held in memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered in-process by (path, size, mtime): data files and model
    sources are fingerprinted at every plan and stage, but hashed once while unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _HASH_LOCK:
        cached = _FILE_HASHES.get(key)
    if cached is not None:
        return cached
    digest = sha256_file(path)
    with _HASH_LOCK:
        _FILE_HASHES[key] = digest
    return digest


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)``, fsync, rename onto ``path``, fsync the directory.

    Args:
        path: The final file.
        write: Writes the whole content to the temporary path it is given.

    Raises:
        CheckpointError: naming ``path`` when the disk is full or the write fails otherwise;
            ``path`` itself is then untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except (OSError, SafetensorError) as exc:
        os_error = as_os_error(exc)
        if os_error is None:  # a safetensors error that is not I/O: a bug, not a disk fault
            raise
        raise disk_error(path, os_error) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _jsonable(obj: Any) -> Any:
    """Fallback for json.dumps: tensors/arrays to lists, anything else to its string."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as JSON (UTF-8, tensors and arrays as lists).

    Raises:
        CheckpointError: see :func:`atomic_write`.
    """
    text = json.dumps(obj, indent=1, ensure_ascii=False, default=_jsonable)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
