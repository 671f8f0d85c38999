"""One process per stage, and a stage directory that appears only when it is whole.

Layout under the stage cache (``<stages_root>``):

* ``.lock-<id>``: an ``fcntl.flock`` lock held while a process runs stage ``<id>``; it holds
  the owner's pid for the error message. The kernel drops the lock when its process dies, even
  by SIGKILL, so a stale lock can never block a re-run;
* ``.partial-<id>/checkpoints/``: mid-stage checkpoints (what a re-run resumes from);
* ``.partial-<id>/final/``: the finished stage being assembled; ``COMPLETE`` is its last file;
* ``<id>/``: the published stage, renamed from ``final/`` only after the results store has
  recorded it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType

from xstilts.errors import CheckpointError
from xstilts.fileio import disk_error, fsync_dir, storage_errors


class StageBusyError(CheckpointError):
    """Another live process holds the stage's lock: this run lost the race for it.

    The stage is the winner's: the losing run must not record it as failed (the executor
    records every other error as a failure of the stage).
    """


def partial_dir(stage_dir: Path) -> Path:
    """``<stages_root>/.partial-<id>``: checkpoints and the stage being assembled."""
    return stage_dir.parent / f".partial-{stage_dir.name}"


class StageLock:
    """Exclusive, non-blocking lock on one stage (a context manager).

    Raises:
        StageBusyError: on entry, when another live process holds the lock (its pid named).
        CheckpointError: when the lock file cannot be created (read-only or full disk).
    """

    def __init__(self, stage_dir: Path) -> None:
        self.path = Path(stage_dir).parent / f".lock-{Path(stage_dir).name}"
        self._fd: int | None = None

    def __enter__(self) -> StageLock:
        with storage_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise CheckpointError(
                    f"cannot lock the stage: {exc.strerror}",
                    file=self.path,
                    hint="the cache folder's file system must support flock (local disk or NFSv4)",
                ) from exc
            raise StageBusyError(
                f"stage is already being run by process {owner}",
                file=self.path,
                hint="wait for that run to finish (the lock is released when it exits)",
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise disk_error(self.path, exc) from exc
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The file stays: unlinking it would let a waiting process lock a different inode.
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def publish(final: Path, stage_dir: Path) -> None:
    """Rename the assembled ``final`` dir to ``stage_dir`` and drop the partial directory.

    A non-complete ``stage_dir`` (an older, broken layout) is replaced.

    Raises:
        CheckpointError: naming the folder when the rename fails (``final`` is then kept, and
            the next run publishes it without training).
    """
    with storage_errors(stage_dir):
        if stage_dir.exists():
            shutil.rmtree(stage_dir)
        os.replace(final, stage_dir)
        fsync_dir(stage_dir.parent)
    shutil.rmtree(partial_dir(stage_dir), ignore_errors=True)
