"""Atomic, durable file writes: the one implementation every writer of the project uses.

A file is written to a temporary name in its own directory, fsynced, renamed onto its final
name and the directory fsynced, so a reader (or a resumed run) sees the old file or the new one,
never a torn one. A failed write (a full disk above all) becomes one :class:`CheckpointError`
naming the file.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xstilts.errors import CheckpointError


def fsync_dir(path: Path) -> None:
    """Make a rename inside directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_error(path: Path, exc: OSError) -> CheckpointError:
    """The error for a failed write of ``path`` (a full disk gets its own words)."""
    full = exc.errno == errno.ENOSPC
    return CheckpointError(
        "no space left on device while writing" if full else f"cannot write: {exc}",
        file=path,
        hint="free disk space and rerun: the stage resumes from its last complete checkpoint",
    )


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)``, fsync, rename onto ``path``, fsync the directory.

    Args:
        path: The final file.
        write: Writes the whole content to the temporary path it is given.

    Raises:
        CheckpointError: naming ``path`` when the disk is full or the write fails otherwise;
            ``path`` itself is then untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise disk_error(path, exc) from exc
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
