"""Which seeds of a study a committed snapshot already holds, so a later session runs the rest.

A study longer than one session (``studies/run_cpu_study.sh``) cannot keep its stage cache: a
new session starts from a fresh checkout, and weights are never committed. What it keeps is the
snapshot under ``docs/study/`` (results store + per-example files). The scheduler finishes whole
seeds first (:mod:`xstilts.pipelines.schedule`), so a stopped run leaves complete seeds, which
are snapshotted; the next session runs only the seeds this module reports missing, and merges
them into the snapshot (``snapshot --merge``). A partly finished seed is run again from its start.

A seed counts as done only when, for every chain the plan has for it, the snapshot holds:
the same target stage id (same settings, training data and parents as today's plan),
that stage ``complete``, an evaluation of the chain's target on it under today's task version,
and, for each evaluation file it recorded, today's file with the same size and sha256. Anything
else (a changed setting, a re-downloaded file, a bumped task version) runs the seed again.

    python -m xstilts.pipelines.committed_seeds EXPERIMENT.yaml SNAPSHOT_DIR [key=value ...]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from xstilts.pipelines.experiment import load_experiment
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.pipelines.plan import build_plan
from xstilts.tasks.data import data_files
from xstilts.tasks.registry import get_task


def _chain_done(conn: sqlite3.Connection, exp: ExperimentSpec, stage_id: str, target: str) -> bool:
    row = conn.execute("SELECT status FROM stages WHERE stage_id = ?", (stage_id,)).fetchone()
    if row is None or row[0] != "complete":
        return False
    ev = conn.execute(
        "SELECT task_version, languages, files FROM evaluations WHERE stage_id = ? AND task = ?",
        (stage_id, target),
    ).fetchone()
    task = get_task(target)
    if ev is None or ev[0] != task.version:
        return False
    langs = list(json.loads(ev[1]))
    recorded = json.loads(ev[2])
    try:
        today = data_files(task, exp.data_dir, [task.eval_split], langs)
    except OSError:
        return False
    return bool(recorded) and today == recorded


def missing_seeds(exp: ExperimentSpec, snapshot_dir: Path) -> list[int]:
    """The experiment's seeds (in its order) that the snapshot does not hold in full.

    Args:
        exp: The study, as today's YAML and overrides define it.
        snapshot_dir: A snapshot folder (``results.sqlite`` inside); none there = every seed.

    Returns:
        Seeds to run; empty when the snapshot already holds them all.
    """
    db = Path(snapshot_dir) / "results.sqlite"
    if not db.is_file():
        return list(exp.seeds)
    plan = build_plan(exp, count_examples=False)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        missing = []
        for seed in exp.seeds:
            chains = [c for c in plan.chains if c.seed == seed]
            if not all(_chain_done(conn, exp, c.target_stage_id, c.target) for c in chains):
                missing.append(seed)
    finally:
        conn.close()
    return missing


def main(argv: Sequence[str]) -> None:
    """Print the missing seeds as a YAML list (``[4, 5]``; ``[]`` when none)."""
    if len(argv) < 2:
        sys.exit("usage: python -m xstilts.pipelines.committed_seeds EXP.yaml SNAPSHOT [k=v ...]")
    exp = load_experiment(argv[0], list(argv[2:]), check_data=False)
    print(json.dumps(missing_seeds(exp, Path(argv[1]))))


if __name__ == "__main__":  # pragma: no cover - studies/run_cpu_study.sh
    main(sys.argv[1:])
