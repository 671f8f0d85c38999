"""One exception family for everything a user can get wrong.

Every error carries *where* (file and line/record, or config key) and *what*, so the CLI can print
it on one line and exit non-zero instead of showing a traceback from deep inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class XstiltsError(Exception):
    """Base class: a user-facing error with a location and an optional hint."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.key is not None:
            where = f"{where} [{self.key}]" if where else f"[{self.key}]"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(XstiltsError):
    """An experiment spec, override or task spec is invalid."""


class DataError(XstiltsError):
    """A data file is missing or malformed. ``line`` is 1-based (line or record number)."""


class CheckpointError(XstiltsError):
    """A stage directory or weight file is missing, incomplete or incompatible."""


class TrainingError(XstiltsError):
    """Training cannot go on (a non-finite loss); ``step`` is the optimizer step it happened at."""

    def __init__(self, message: str, *, step: int, **kwargs: Any) -> None:
        self.step = step
        super().__init__(message, **kwargs)


class StageInterrupted(XstiltsError):
    """SIGTERM arrived: a checkpoint was written and the stage resumes on the next run."""
