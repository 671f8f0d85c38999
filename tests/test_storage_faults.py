"""Storage faults (issue 12, finding 5): a full disk, a read-only output folder, a damaged results
store, a failure that cannot be recorded, and two runs colliding on one stage. Each gives one
clear error naming the file and what to do (one line from the CLI), the first error is the one
the user sees, and a later run recovers."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import save_file
from typer.testing import CliRunner

from conftest import tiny_encoder
from xstilts.cli import app
from xstilts.errors import CheckpointError
from xstilts.fileio import atomic_write
from xstilts.models import model_io
from xstilts.pipelines import executor, executor_ray, stage
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.locking import StageBusyError, partial_dir
from xstilts.pipelines.plan import build_plan
from xstilts.results.store import ResultsStore
from xstilts.training import loop

runner = CliRunner()
# What safetensors (0.8, Rust io::Error) raises when the disk fills during save_file.
ENOSPC_SAFETENSORS = (
    'Error while serializing: I/O error: No space left on device (os error 28) at path "{}"'
)
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
print("locked", flush=True)
time.sleep(60)
"""


def _raw(data_root: Path, out: Path) -> dict[str, Any]:
    """The smallest real experiment: a base stage and one pawsx target (2 steps)."""
    return {
        "name": "faults",
        "data_dir": str(data_root),
        "output_dir": str(out),
        "encoder": tiny_encoder(300, ["pawsx"], 60, hidden=16, layers=1),
        "seeds": [1],
        "intermediate": ["none"],
        "targets": ["pawsx"],
        "train": {"lr": 1e-3, "max_steps": 2, "batch_size": 4, "max_train_examples": 8,
                  "max_dev_examples": 4, "max_length": 32, "precision": "fp32"},
        "evaluation": {"max_eval_examples": 6, "languages": {"pawsx": ["en"]}},
    }  # fmt: skip


def _yaml(data_root: Path, tmp_path: Path, out: Path) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(_raw(data_root, out)))
    return path


def _statuses(db: Path) -> dict[str, str]:
    with ResultsStore(db) as store:
        return {r["label"]: r["status"] for r in store.stage_rows()}


def _scores(db: Path) -> dict[str, Any]:
    with ResultsStore(db) as store:
        return {(r["label"], r["stage_id"]): store.task_metrics(r["stage_id"], "pawsx")
                for r in store.stage_rows()}  # fmt: skip


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _full_disk(tensors: Any, filename: str, **kw: Any) -> None:
    raise SafetensorError(ENOSPC_SAFETENSORS.format(filename))


@pytest.fixture(scope="module")
def finished(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run of the experiment (its output dir); tests work on copies."""
    out = tmp_path_factory.mktemp("finished") / "out"
    exp = experiment_from_dict(_raw(data_root, out))
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    return out


# ------------------------------------------------------------------ (a) full disk


def test_a_real_safetensors_io_error_becomes_one_checkpoint_error(tmp_path: Path) -> None:
    target = tmp_path / "w.safetensors"

    def write(tmp: Path) -> None:  # safetensors' own I/O error, not an OSError
        save_file({"x": torch.zeros(2)}, str(tmp_path / "gone" / "w.safetensors"))

    with pytest.raises(CheckpointError) as err:
        atomic_write(target, write)
    assert str(err.value).startswith(f"{target}: file system error: [Errno 2]")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_full_disk_while_saving_a_stage_is_one_line_and_a_rerun_recovers(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    config = _yaml(data_root, tmp_path, out)
    with monkeypatch.context() as mp:
        mp.setattr(model_io, "save_file", _full_disk)
        line = _one_error_line(runner.invoke(app, ["run", str(config), "--no-progress"]))
    base = next(p for p in (out / "stages").iterdir() if p.name.startswith(".partial-"))
    weights = base / "final" / "encoder.safetensors"
    assert line == (
        f"error: {weights}: no space left on device while writing (free disk space and rerun: "
        "the stage resumes from its last complete checkpoint)"
    )
    assert _statuses(out / "results.sqlite") == {"base": "failed"}
    again = runner.invoke(app, ["run", str(config), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert _statuses(out / "results.sqlite") == {"base": "complete", "pawsx": "complete"}


def test_full_disk_while_saving_the_tokenizer_names_the_file(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import PreTrainedTokenizerBase

    def full(self: Any, directory: str, **kw: Any) -> None:
        name = os.path.join(directory, "tokenizer.json")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)

    spec = build_plan(experiment_from_dict(_raw(data_root, tmp_path)), count_examples=False)
    base = spec.stages[0]
    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", full)
    with pytest.raises(CheckpointError) as err:
        stage.run_stage(base.spec, tmp_path / base.stage_id, data_root, None)
    where = partial_dir(tmp_path / base.stage_id) / "final" / "tokenizer" / "tokenizer.json"
    assert str(err.value).startswith(f"{where}: no space left on device while writing")


# ------------------------------------------------------------------ (b) read-only output folder


@pytest.fixture()
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make a folder read-only: chmod for a normal user; root writes through any mode, so for
    root ``os.mkdir``/``os.open`` below it fail as on a read-only mount (EROFS)."""
    frozen: list[Path] = []

    def deny(path: Any) -> bool:
        return any(Path(os.fspath(path)).resolve().is_relative_to(f) for f in frozen)

    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path: Any, *a: Any, **kw: Any) -> None:
        if deny(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        real_mkdir(path, *a, **kw)

    def open_(path: Any, flags: int, *a: Any, **kw: Any) -> int:
        if deny(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *a, **kw)

    def freeze(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            folder.chmod(0o555)
        else:
            frozen.append(folder.resolve())
            monkeypatch.setattr(os, "mkdir", mkdir)
            monkeypatch.setattr(os, "open", open_)

    def thaw(folder: Path) -> None:
        folder.chmod(0o755)
        frozen.clear()

    yield freeze, thaw
    frozen.clear()


def test_read_only_output_folder_fails_before_training_and_a_rerun_recovers(
    data_root: Path, tmp_path: Path, read_only: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze, thaw = read_only
    out = tmp_path / "out"
    config = _yaml(data_root, tmp_path, out)
    freeze(out)
    with monkeypatch.context() as mp:
        mp.setattr(loop, "train", lambda *a, **k: pytest.fail("trained into a read-only folder"))
        line = _one_error_line(runner.invoke(app, ["run", str(config), "--no-progress"]))
    assert line.startswith(f"error: {out / 'stages'}: cannot write here (")
    assert line.endswith("(make the folder writable, or set output_dir (and cache_dir) to a "
                         "writable one)")  # fmt: skip
    thaw(out)
    again = runner.invoke(app, ["run", str(config), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert _statuses(out / "results.sqlite") == {"base": "complete", "pawsx": "complete"}


# ------------------------------------------------------------------ (c) damaged results store


def _truncate(db: Path) -> None:
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _garbage(db: Path) -> None:
    db.write_bytes(b"\x00\x17 not sqlite at all " * 300)


@pytest.mark.parametrize("damage", [_truncate, _garbage], ids=["truncated", "garbage"])
def test_damaged_store_is_one_line_and_a_rerun_rebuilds_it_without_training(
    finished: Path, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Any
) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    db = out / "results.sqlite"
    before = _scores(db)
    damage(db)
    with pytest.raises(CheckpointError) as err:
        ResultsStore(db)
    assert str(err.value).startswith(f"{db}: results store is damaged or not an SQLite database")
    line = _one_error_line(runner.invoke(app, ["results", str(out)]))
    assert f"(move it aside (mv {db} {db}.bad) and run the experiment(s) again: nothing is " in line
    config = _yaml(data_root, tmp_path, out)
    assert _one_error_line(runner.invoke(app, ["run", str(config), "--no-progress"])) == line
    # Doing what it says: the stages are the source of truth, nothing is trained again.
    db.rename(db.with_name("results.sqlite.bad"))
    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("a cached stage retrained"))
    again = runner.invoke(app, ["run", str(config), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert _scores(db) == before and _statuses(db) == {"base": "complete", "pawsx": "complete"}


# ------------------------------------------------------------------ (d) the first error wins


def test_a_failure_that_cannot_be_recorded_keeps_the_first_error(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    exp = experiment_from_dict(_raw(data_root, tmp_path / "out"))
    real_record = ResultsStore.record_stage

    def store_full(self: ResultsStore, spec: Any, status: str, metrics: Any = None) -> None:
        if status == "failed":  # the disk is full for the store too
            raise sqlite3.OperationalError("database or disk is full")
        real_record(self, spec, status, metrics)

    with monkeypatch.context() as mp:
        mp.setattr(model_io, "save_file", _full_disk)
        mp.setattr(ResultsStore, "record_stage", store_full)
        with pytest.raises(CheckpointError) as err, caplog.at_level(logging.WARNING):
            executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    assert "encoder.safetensors: no space left on device while writing" in str(err.value)
    note = f"the failure could not be recorded in {exp.store_path}: database or disk is full"
    assert err.value.__notes__ == [note] and note in caplog.text
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    assert _statuses(exp.store_path) == {"base": "complete", "pawsx": "complete"}


def test_closing_the_store_cannot_mask_the_error_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def close_fails(self: ResultsStore) -> None:
        self.conn.close()
        raise CheckpointError("no space left on device while writing the results store")

    monkeypatch.setattr(ResultsStore, "close", close_fails)
    with pytest.raises(ValueError, match="the real error") as err, ResultsStore(tmp_path / "r.db"):
        raise ValueError("the real error")
    assert "closing the results store also failed" in err.value.__notes__[0]


def test_a_full_disk_while_recording_is_one_checkpoint_error(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.db") as store:
        store.conn.execute("PRAGMA max_page_count = 3")  # SQLite's own "disk full" (SQLITE_FULL)
        with pytest.raises(CheckpointError) as err:
            store.record_experiment("x" * 10, {"blob": "y" * 50_000})
    assert str(err.value).startswith(
        f"{tmp_path / 'r.db'}: no space left on device while writing the results store"
    )


# ------------------------------------------------------------------ (e) colliding runs


@pytest.fixture()
def holder(tmp_path: Path) -> Iterator[Any]:
    """Start a process that holds a stage's lock (the run that won the race)."""
    procs: list[subprocess.Popen[str]] = []

    def hold(stage_dir: Path) -> subprocess.Popen[str]:
        stage_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = stage_dir.parent / f".lock-{stage_dir.name}"
        proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_the_losing_run_does_not_mark_the_winners_stage_failed(
    data_root: Path, tmp_path: Path, holder: Any
) -> None:
    exp = experiment_from_dict(_raw(data_root, tmp_path / "out"))
    plan = build_plan(exp, count_examples=False)
    base = plan.stages[0]
    winner = holder(base.dir).pid
    with ResultsStore(exp.store_path) as store:  # what the winner has recorded so far
        store.record_stage(base.spec, "trained", {"train_seconds": 1.5})
    with pytest.raises(StageBusyError, match=f"already being run by process {winner}"):
        executor.run_experiment(exp, plan, progress=False)
    assert _statuses(exp.store_path) == {"base": "trained"}
    # The Ray executor's stage task: the same race is "busy", and not recorded as failed.
    outcome = executor_ray._stage_task(base, exp, exp.eval_settings(), None, False)
    assert outcome.status == "busy" and f"process {winner}" in (outcome.error or "")
    summary = executor_ray.RunSummary(exp.output_dir)
    with ResultsStore(exp.store_path) as store:
        executor_ray._record(store, base, outcome, summary, tmp_path / "logs")
    assert _statuses(exp.store_path) == {"base": "trained"} and base.stage_id in summary.failed


def test_after_the_winner_is_gone_a_rerun_completes(
    data_root: Path, tmp_path: Path, holder: Any
) -> None:
    exp = experiment_from_dict(_raw(data_root, tmp_path / "out"))
    plan = build_plan(exp, count_examples=False)
    winner = holder(plan.stages[-1].dir)  # the target is taken: base finishes, target collides
    with pytest.raises(StageBusyError):
        executor.run_experiment(exp, plan, progress=False)
    assert _statuses(exp.store_path) == {"base": "complete"}
    winner.kill()  # the winner died without finishing: its lock is gone with it
    winner.wait()
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    assert _statuses(exp.store_path) == {"base": "complete", "pawsx": "complete"}
