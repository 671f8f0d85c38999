"""Each warning once per run (process): repeats are dropped, look-alikes summed up in one line.

A run reads the same files many times (plan-time data checks, every stage that trains on a
task, every evaluation), and a task's per-language files share one condition (TyDiQA-GoldP's
dev files have no answers in any language). Without this, ``xstilts tasks`` printed 17 warning
lines, most of them the same notice again.

* The same text twice: the second is dropped.
* A look-alike (the same message but for its subject, the first text or file argument, with
  the file in the same folder: one notice per language file, or per task reading the same
  stand-in): dropped too, and counted; one line at exit names them all ("same warning as for
  X also for N more: ..."), so nothing is dropped silently.

:func:`once_per_run` attaches the filter to a logger (the data loaders do it for theirs). A CLI
command is one process; in a notebook :func:`reset` starts a new run (the tests reset per test).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import Any

_SUMMARY = "xstilts_summary"  # LogRecord attribute of the closing lines: never filtered


class OncePerRun(logging.Filter):
    """A logger filter: each text once, look-alikes counted for :meth:`summary_lines`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        # (template, folder, other args) -> (first record's subject, subjects of dropped ones)
        self.families: dict[tuple[str, ...], tuple[str, list[str]]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True for a record to print, False for a repeat or a look-alike."""
        if getattr(record, _SUMMARY, False):
            return True
        text = record.getMessage()
        args = record.args if isinstance(record.args, tuple) else ()
        paths = [Path(a) for a in args if isinstance(a, os.PathLike)]
        with self._lock:
            if text in self.seen:
                return False
            self.seen.add(text)
            if not paths:
                return True
            at = _subject(args)
            rest = tuple(str(a) for i, a in enumerate(args) if i != at)
            key = (record.name, str(record.msg), str(paths[0].parent), *rest)
            value = args[at]
            subject = value if isinstance(value, str) else Path(str(value)).name
            if key not in self.families:
                self.families[key] = (subject, [])
                return True
            self.families[key][1].append(subject)
            return False

    def summary_lines(self) -> list[tuple[str, str]]:
        """``(logger name, line)`` per family with dropped look-alikes (and forget them)."""
        with self._lock:
            out = [
                (key[0], f"same warning as for {first} also for {len(more)} more: "
                 + ", ".join(more))
                for key, (first, more) in self.families.items()
                if more
            ]  # fmt: skip
            for key, (first, _) in self.families.items():
                self.families[key] = (first, [])
        return out

    def reset(self) -> None:
        """Forget every text and family."""
        with self._lock:
            self.seen.clear()
            self.families.clear()


def _subject(args: tuple[Any, ...]) -> int:
    """Index of what a look-alike differs in: the first text or file argument."""
    return next(i for i, a in enumerate(args) if isinstance(a, str | os.PathLike))


FILTER = OncePerRun()
_attached: list[logging.Logger] = []


def once_per_run(*loggers: logging.Logger) -> None:
    """Attach the process-wide filter to ``loggers`` (idempotent)."""
    for logger in loggers:
        if logger not in _attached:
            logger.addFilter(FILTER)
            _attached.append(logger)


def flush() -> None:
    """Log the look-alike summary lines now, each on its family's logger (also run at exit)."""
    for name, line in FILTER.summary_lines():
        logging.getLogger(name).warning(line, extra={_SUMMARY: True})


def reset() -> None:
    """Start a new run: every warning may be printed once again."""
    FILTER.reset()


atexit.register(flush)


def quiet_libraries() -> None:
    """No loading bars or load reports from transformers / huggingface_hub (``--no-progress``).

    The environment variables carry it to torchrun's and a local Ray's worker processes.
    """
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the per-load "LOAD REPORT" of missing/unexpected keys
    hf_logging.disable_progress_bar()  # "Loading weights" bars
