"""The committed study snapshot: store + per-example files, no weights; the report regenerates
from it alone, identical to the report of the full run; the study config validates."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from xstilts.pipelines import executor
from xstilts.pipelines.committed_seeds import missing_seeds
from xstilts.pipelines.experiment import experiment_from_dict, load_experiment
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.collect import load_experiment_data
from xstilts.reporting.report import build_report, report_markdown
from xstilts.reporting.snapshot import snapshot

REPO = Path(__file__).resolve().parents[1]


def _tiny_raw(data_root: Path, out: Path, name: str) -> dict[str, Any]:
    """A 1-layer grid, 2 seeds x (none, sst2) -> xnli in en and de: seconds per run."""
    return {
        "name": name, "data_dir": str(data_root), "output_dir": str(out),
        "encoder": {
            "tiny": {"vocab_size": 600, "hidden_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 64, "seed": 0},
            "tokenizer": {"train_on": ["sst2", "xnli"], "max_lines": 200, "vocab_size": 600},
        },
        "seeds": [1, 2], "intermediate": ["none", "sst2"], "targets": ["xnli"],
        "train": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_train_examples": 16,
                  "max_dev_examples": 8, "max_length": 48, "precision": "fp32"},
        "evaluation": {"max_eval_examples": 30, "languages": {"xnli": ["en", "de"]}},
    }  # fmt: skip


def test_report_regenerates_from_the_snapshot(data_root: Path, tmp_path: Path) -> None:
    raw = _tiny_raw(data_root, tmp_path / "out", "snap")
    exp = experiment_from_dict(raw)
    executor.run_experiment(exp, build_plan(exp), progress=False)
    full = report_markdown(build_report(load_experiment_data(exp.store_path), n_boot=200))

    dest = tmp_path / "docs"
    files = snapshot(exp.output_dir, dest)
    assert not [f for f in dest.rglob("*.safetensors")]  # no weights
    assert sum(1 for f in files if f.name.endswith(".json.gz")) == 4  # 2 options x 2 seeds
    shutil.rmtree(exp.output_dir)  # the report must not need the run any more
    again = report_markdown(build_report(load_experiment_data(dest / "results.sqlite"),
                                         n_boot=200))  # fmt: skip
    assert again == full
    assert "agreement with the English prediction" in again
    assert "Intermediate stages: did they move the encoder?" in again
    with (dest / "metrics.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["task"] for r in rows} == {"xnli"} and {r["language"] for r in rows} == {"en", "de"}


def test_cpu_study_config_validates(data_root: Path) -> None:
    exp = load_experiment(REPO / "studies/xstilts_cpu.yaml", [f"data_dir={data_root}"])
    plan = build_plan(exp, count_examples=False)
    assert list(exp.seeds) == [1, 2, 3, 4, 5]
    assert len(plan.chains) == 6 * 4 * 5
    assert len(plan.stages) == 86  # 1 base + 5 seeds x (5 intermediates + 6 x 2 targets)


def test_snapshot_without_a_store_is_one_clear_error(tmp_path: Path) -> None:
    from xstilts.errors import DataError

    with pytest.raises(DataError, match="no results store"):
        snapshot(tmp_path, tmp_path / "d")


def test_a_later_session_runs_the_missing_seeds_and_merges_them(
    data_root: Path, tmp_path: Path
) -> None:
    raw = _tiny_raw(data_root, tmp_path / "full", "span")
    full = experiment_from_dict(raw)
    executor.run_experiment(full, build_plan(full), progress=False)
    expected = report_markdown(build_report(load_experiment_data(full.store_path), n_boot=200))

    dest = tmp_path / "docs"
    assert missing_seeds(full, dest) == [1, 2]  # nothing committed yet
    # Session 1 finishes seed 1 only; its snapshot is committed, its stage cache is lost.
    one = experiment_from_dict({**raw, "seeds": [1], "output_dir": str(tmp_path / "s1")})
    executor.run_experiment(one, build_plan(one), progress=False)
    snapshot(one.output_dir, dest, merge=True)
    shutil.rmtree(one.output_dir)
    assert missing_seeds(full, dest) == [2]
    # Session 2 runs what is missing into a fresh output folder and merges it in.
    two = experiment_from_dict({**raw, "seeds": [2], "output_dir": str(tmp_path / "s2")})
    executor.run_experiment(two, build_plan(two), progress=False)
    snapshot(two.output_dir, dest, merge=True)
    assert missing_seeds(full, dest) == []
    merged = report_markdown(build_report(load_experiment_data(dest / "results.sqlite"),
                                          n_boot=200))  # fmt: skip
    assert merged == expected  # the same report as one uninterrupted run
    with sqlite3.connect(dest / "results.sqlite") as conn:
        (spec,) = conn.execute("SELECT spec FROM experiments").fetchone()
    assert json.loads(spec)["seeds"] == [1, 2]  # not only the last session's [2]

    # A stopped run (seed 2's last target only trained, not evaluated and published): with
    # finished_only the snapshot holds seed 1 alone, never half of seed 2.
    last = [c.target_stage_id for c in build_plan(full).chains if c.seed == 2][-1]
    with sqlite3.connect(full.store_path) as conn:
        conn.execute("UPDATE stages SET status = 'trained' WHERE stage_id = ?", (last,))
    stopped = tmp_path / "stopped"
    snapshot(full.output_dir, stopped, finished_only=True)
    with sqlite3.connect(stopped / "results.sqlite") as conn:
        assert {s for (s,) in conn.execute("SELECT seed FROM runs")} == {1}
        assert not conn.execute("SELECT 1 FROM stages WHERE seed = 2").fetchall()
    assert missing_seeds(full, stopped) == [2]

    # A changed setting changes the stage ids: nothing committed counts any more.
    changed = experiment_from_dict({**raw, "train": {**raw["train"], "lr": 2e-3}})
    assert missing_seeds(changed, dest) == [1, 2]
    # An evaluation file that is not today's (as recorded) sends its seed back to the queue.
    seed2 = {c.target_stage_id for c in build_plan(full).chains if c.seed == 2}
    with sqlite3.connect(dest / "results.sqlite") as conn:
        for stage_id in seed2:
            (files,) = conn.execute("SELECT files FROM evaluations WHERE stage_id = ?",
                                    (stage_id,)).fetchone()  # fmt: skip
            stale = {k: "1:" + "0" * 64 for k in json.loads(files)}
            conn.execute("UPDATE evaluations SET files = ? WHERE stage_id = ?",
                         (json.dumps(stale), stage_id))  # fmt: skip
    assert missing_seeds(full, dest) == [2]
