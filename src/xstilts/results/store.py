"""The SQLite results store (``<output_dir>/results.sqlite``): reports are queries.

Only the driver writes it (executors hand results back). Every table has a natural unique key
and writes are upserts, so recording the same stage or metric twice changes nothing and a
re-evaluation replaces the old value.

The store is derived data: stage directories (weights, ``metrics.json``, cached evaluations)
are the source of truth, and running an experiment again records every finished stage anew
without training. So a store that is not a database, is damaged (checked with SQLite's
``quick_check`` on every open) or cannot be written is one :class:`CheckpointError` naming the
file and saying exactly that, never an ``sqlite3`` traceback.
"""

from __future__ import annotations

import functools
import json
import platform
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from xstilts._version import __version__
from xstilts.errors import CheckpointError
from xstilts.fileio import disk_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stages (
    stage_id TEXT PRIMARY KEY, parent_id TEXT, label TEXT NOT NULL, role TEXT NOT NULL,
    kind TEXT NOT NULL, seed INTEGER, spec TEXT NOT NULL, status TEXT NOT NULL,
    train_seconds REAL, padding_efficiency REAL, metrics TEXT, versions TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS runs (
    experiment TEXT NOT NULL, position INTEGER NOT NULL, chain TEXT NOT NULL,
    seed INTEGER NOT NULL, option TEXT NOT NULL, target TEXT NOT NULL,
    target_stage_id TEXT NOT NULL, UNIQUE (experiment, option, target, seed));
CREATE TABLE IF NOT EXISTS metrics (
    stage_id TEXT NOT NULL, task TEXT NOT NULL, task_version TEXT NOT NULL,
    language TEXT NOT NULL, split TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
    seed INTEGER, n INTEGER, extra TEXT,
    UNIQUE (stage_id, task, task_version, language, split, metric));
CREATE TABLE IF NOT EXISTS evaluations (
    stage_id TEXT NOT NULL, task TEXT NOT NULL, task_version TEXT NOT NULL,
    eval_key TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, languages TEXT NOT NULL,
    unlabelled TEXT NOT NULL, not_scored TEXT NOT NULL, files TEXT NOT NULL, data_dir TEXT,
    updated TEXT, PRIMARY KEY (stage_id, task));
"""
_JSON_COLUMNS = ("languages", "unlabelled", "not_scored", "files")


class MetricRecord(Protocol):
    """What :meth:`ResultsStore.record_metrics` reads (``EvalRecord`` has these fields)."""

    task: str
    task_version: str
    language: str
    split: str
    metric: str
    value: float
    n_examples: int
    extra: dict[str, Any]


class ChainLike(Protocol):
    """What :meth:`ResultsStore.replace_runs` reads (``plan.Chain`` has these fields)."""

    # Read-only (properties), so that frozen dataclasses such as ``plan.Chain`` match.
    @property
    def label(self) -> str: ...
    @property
    def option(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def target_stage_id(self) -> str: ...


@dataclass(frozen=True)
class Run:
    """One row of ``runs``: which stage holds a chain's target scores."""

    position: int
    chain: str
    seed: int
    option: str
    target: str
    target_stage_id: str


def versions() -> dict[str, str]:
    """Versions of xstilts, torch, transformers and Python (no heavy imports)."""
    out = {"xstilts": __version__, "python": platform.python_version()}
    for dist in ("torch", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def store_error(path: Path, exc: sqlite3.Error) -> CheckpointError:
    """One error naming the database and what to do, by SQLite's error code."""
    code = getattr(exc, "sqlite_errorname", None) or "SQLITE_CORRUPT"  # quick_check's findings
    rerun = "run the experiment(s) again: nothing is retrained, scores are re-read from the stages"
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return CheckpointError(
            f"results store is damaged or not an SQLite database ({exc})",
            file=path,
            hint=f"move it aside (mv {path} {path}.bad) and {rerun}",
        )
    if code.startswith("SQLITE_FULL"):
        return CheckpointError(
            "no space left on device while writing the results store",
            file=path,
            hint=f"free disk space and {rerun}",
        )
    if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return CheckpointError(
            f"cannot open or write the results store ({exc})",
            file=path,
            hint="make it and its folder writable, or set output_dir to a writable folder",
        )
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return CheckpointError(
            f"results store is locked by another process ({exc})",
            file=path,
            hint="wait for the other run to finish, then run again",
        )
    return CheckpointError(f"results store error ({code}: {exc})", file=path, hint=rerun)


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(method: _F) -> _F:
    """Turn an ``sqlite3.Error`` inside ``method`` into :func:`store_error`."""

    @functools.wraps(method)
    def wrapper(self: ResultsStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc

    return wrapper  # type: ignore[return-value]


class ResultsStore:
    """A connection to one results database (created with its schema on first open).

    Raises:
        CheckpointError: on open, for a damaged or non-SQLite file, or one that cannot be
            opened or written; from any method, for a write that fails (a full disk).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(self.path.parent, exc) from exc
        try:
            self.conn = sqlite3.connect(self.path)
        except sqlite3.Error as exc:  # a folder in its place, an unreadable file
            raise store_error(self.path, exc) from exc
        try:
            self.conn.executescript(SCHEMA)
            problems = [row[0] for row in self.conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems))
        except sqlite3.Error as exc:
            self.conn.close()
            raise store_error(self.path, exc) from exc

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except CheckpointError as close_exc:  # the error already raised is the one to report
            exc.add_note(f"(closing the results store also failed: {close_exc})")

    @_guarded
    def close(self) -> None:
        """Commit and close."""
        try:
            self.conn.commit()
        finally:
            self.conn.close()

    # ------------------------------------------------------------------ writes

    @_guarded
    def record_experiment(self, name: str, spec: Mapping[str, Any]) -> None:
        """Insert or update an experiment and its (overridden) spec."""
        now = _now()
        self.conn.execute(
            "INSERT INTO experiments VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "spec = excluded.spec, updated = excluded.updated",
            (name, json.dumps(spec, sort_keys=True, default=str), now, now),
        )
        self.conn.commit()

    @_guarded
    def record_stage(
        self, spec: Any, status: str, metrics: Mapping[str, Any] | None = None
    ) -> None:
        """Insert or update a stage (``spec`` is a ``StageSpec``) with its training metrics."""
        metrics = dict(metrics or {})
        row = (
            spec.stage_id, spec.parent, spec.label, spec.role, spec.kind, spec.seed,
            json.dumps(spec.to_dict(), sort_keys=True), status, metrics.get("train_seconds"),
            metrics.get("padding_efficiency"), json.dumps(metrics, default=str),
            json.dumps(versions()), _now(),
        )  # fmt: skip
        self.conn.execute(
            "INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(stage_id) DO UPDATE SET status = excluded.status, "
            "train_seconds = COALESCE(excluded.train_seconds, train_seconds), "
            "padding_efficiency = COALESCE(excluded.padding_efficiency, padding_efficiency), "
            "metrics = CASE WHEN excluded.metrics = '{}' THEN metrics ELSE excluded.metrics END, "
            "versions = excluded.versions, updated = excluded.updated",
            row,
        )
        self.conn.commit()

    @_guarded
    def record_metrics(
        self,
        stage_id: str,
        seed: int,
        records: Iterable[MetricRecord],
        *,
        replace: Iterable[str] = (),
    ) -> int:
        """Upsert evaluation records of one stage; returns how many were written.

        Scores of an older (or other) version of the same task on the same stage are removed:
        a re-evaluation after a scoring change replaces them, so queries never mix versions.

        Args:
            stage_id: The evaluated stage.
            seed: Its seed.
            records: The scores.
            replace: Tasks evaluated anew as a whole: every earlier row of these tasks on this
                stage goes first, so a language no longer scored leaves no stale row behind.
        """
        rows = [
            (stage_id, r.task, r.task_version, r.language, r.split, r.metric, float(r.value),
             seed, r.n_examples, json.dumps(r.extra or {}, sort_keys=True, default=str))
            for r in records
        ]  # fmt: skip
        for task in dict.fromkeys(replace):
            self.conn.execute(
                "DELETE FROM metrics WHERE stage_id = ? AND task = ?", (stage_id, task)
            )
        for task, version in {(r[1], r[2]) for r in rows}:
            self.conn.execute(
                "DELETE FROM metrics WHERE stage_id = ? AND task = ? AND task_version != ?",
                (stage_id, task, version),
            )
        self.conn.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            "(stage_id, task, task_version, language, split, metric) DO UPDATE SET "
            "value = excluded.value, seed = excluded.seed, n = excluded.n, extra = excluded.extra",
            rows,
        )
        self.conn.commit()
        return len(rows)

    @_guarded
    def record_evaluations(self, stage_id: str, summaries: Iterable[Any]) -> None:
        """Upsert what each task's latest evaluation of a stage covered.

        ``summaries`` are :class:`~xstilts.training.evaluate.EvalSummary` objects (``to_dict``):
        evaluation key, ``evaluated``/``cached`` and why, languages scored and unlabelled,
        what on disk was not scored, and the files (with hashes) the scores come from.
        """
        rows = []
        for summary in summaries:
            d = summary.to_dict()
            rows.append(
                (stage_id, d["task"], d["task_version"], d["key"], d["status"], d["reason"],
                 *(json.dumps(d[c], sort_keys=True) for c in _JSON_COLUMNS), d["data_dir"],
                 _now())
            )  # fmt: skip
        self.conn.executemany(
            "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
            "(stage_id, task) DO UPDATE SET task_version = excluded.task_version, "
            "eval_key = excluded.eval_key, status = excluded.status, reason = excluded.reason, "
            "languages = excluded.languages, unlabelled = excluded.unlabelled, "
            "not_scored = excluded.not_scored, files = excluded.files, "
            "data_dir = excluded.data_dir, updated = excluded.updated",
            rows,
        )
        self.conn.commit()

    @_guarded
    def replace_runs(self, experiment: str, chains: Sequence[ChainLike]) -> None:
        """Make ``chains`` the experiment's runs (rows of options no longer planned go)."""
        self.conn.execute("DELETE FROM runs WHERE experiment = ?", (experiment,))
        self.conn.executemany(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (experiment, i, c.label, c.seed, c.option, c.target, c.target_stage_id)
                for i, c in enumerate(chains)
            ],
        )
        self.conn.commit()

    # ------------------------------------------------------------------ queries

    @_guarded
    def experiments(self) -> list[str]:
        """Experiment names, most recently updated first."""
        cur = self.conn.execute("SELECT name FROM experiments ORDER BY updated DESC, name")
        return [r[0] for r in cur]

    @_guarded
    def runs(self, experiment: str) -> list[Run]:
        """The experiment's runs in plan order."""
        cur = self.conn.execute(
            "SELECT position, chain, seed, option, target, target_stage_id FROM runs "
            "WHERE experiment = ? ORDER BY position",
            (experiment,),
        )
        return [Run(*r) for r in cur]

    @_guarded
    def task_metrics(self, stage_id: str, task: str) -> dict[str, dict[str, float]]:
        """Language -> metric -> value of one task evaluated on one stage."""
        out: dict[str, dict[str, float]] = {}
        cur = self.conn.execute(
            "SELECT language, metric, value FROM metrics WHERE stage_id = ? AND task = ? "
            "ORDER BY language, metric",
            (stage_id, task),
        )
        for lang, metric, value in cur:
            out.setdefault(lang, {})[metric] = value
        return out

    @_guarded
    def task_versions(self, tasks: Sequence[str]) -> dict[str, list[str]]:
        """Task -> the distinct task versions recorded for it."""
        out: dict[str, list[str]] = {}
        for task in tasks:
            cur = self.conn.execute(
                "SELECT DISTINCT task_version FROM metrics WHERE task = ? ORDER BY 1", (task,)
            )
            out[task] = [r[0] for r in cur]
        return out

    @_guarded
    def stage_rows(self) -> list[dict[str, Any]]:
        """Every recorded stage as a dict (spec/metrics/versions decoded)."""
        cur = self.conn.execute("SELECT * FROM stages ORDER BY rowid")
        names = [d[0] for d in cur.description]
        rows = []
        for values in cur:
            row = dict(zip(names, values, strict=True))
            for key in ("spec", "metrics", "versions"):
                row[key] = json.loads(row[key]) if row[key] else None
            rows.append(row)
        return rows

    def evaluations(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(stage id, task) -> its latest evaluation (JSON columns decoded)."""
        cur = self.conn.execute("SELECT * FROM evaluations")
        names = [d[0] for d in cur.description]
        out = {}
        for values in cur:
            row = dict(zip(names, values, strict=True))
            for key in _JSON_COLUMNS:
                row[key] = json.loads(row[key])
            out[(row["stage_id"], row["task"])] = row
        return out
