"""``results.json`` beside ``results.sqlite``: one run's results for tools that don't speak SQL.

Written at the end of a successful ``xstilts run`` (either executor) and removed when a run
starts, so it never holds numbers older than the store beside it. Contents (``schema`` 1):

* ``experiment``, ``written`` (UTC), ``versions`` (xstilts, torch, transformers, Python of the
  writing process) and ``config`` (the experiment as recorded in the store);
* ``runs``: one per (condition, target, seed): ``chain`` label, ``stage_ids`` from base to the
  target stage, ``task_version``, ``score`` (the task's headline number: QA (EM+F1)/2, else its
  first metric, averaged over languages; ``null`` when nothing could be scored, e.g. an
  unlabelled set) and ``metrics`` (language -> metric -> value, every recorded metric);
* ``stages``: every stage of those chains: id, parent, label, role, kind, seed, status, training
  metrics (dev curve, tokens/s, ...), the versions that trained it, and its TensorBoard folder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xstilts.errors import XstiltsError
from xstilts.fileio import write_json
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.results.store import ResultsStore, versions
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task

NAME = "results.json"
SCHEMA = 1


def discard(exp: ExperimentSpec) -> None:
    """Remove the previous run's file (a run in progress changes the store under it)."""
    (exp.output_dir / NAME).unlink(missing_ok=True)


def _score(metrics: dict[str, dict[str, float]], task: str) -> float | None:
    langs, spec = [], get_task(task)
    for lang, values in metrics.items():
        try:
            langs.append(format_of(spec).language_score(spec, lang, values))
        except XstiltsError:
            continue  # an unlabelled language scores nothing
    return sum(langs) / len(langs) if langs else None


def build(store: ResultsStore, experiment: str, stages_dir: Path | None = None) -> dict[str, Any]:
    """The whole document for ``experiment`` (see the module doc; ``stages_dir``: the cache)."""
    row = store.conn.execute(
        "SELECT spec FROM experiments WHERE name = ?", (experiment,)
    ).fetchone()
    stages = {s["stage_id"]: s for s in store.stage_rows()}
    runs, used = [], set()
    for r in store.runs(experiment):
        chain: list[str] = []
        sid: str | None = r.target_stage_id
        while sid is not None and sid in stages and sid not in chain:
            chain.append(sid)
            sid = stages[sid].get("parent_id")
        used.update(chain)
        metrics = store.task_metrics(r.target_stage_id, r.target)
        runs.append({
            "condition": r.option, "target": r.target, "seed": r.seed, "chain": r.chain,
            "stage_ids": chain[::-1], "task_version": store.task_versions([r.target])[r.target],
            "score": _score(metrics, r.target), "metrics": metrics,
        })  # fmt: skip
    stage_list = []
    for sid, s in stages.items():
        if sid not in used:
            continue
        stage_list.append({
            "stage_id": sid, "parent_id": s.get("parent_id"), "label": s["label"],
            "role": s["role"], "kind": s["kind"], "seed": s["seed"], "status": s["status"],
            "metrics": s.get("metrics"), "versions": s.get("versions"),
            "tensorboard": _tb(stages_dir, sid),
        })  # fmt: skip
    return {
        "schema": SCHEMA,
        "experiment": experiment,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "config": json.loads(row[0]) if row and row[0] else None,
        "runs": runs,
        "stages": stage_list,
    }


def _tb(stages_dir: Path | None, stage_id: str) -> str | None:
    """The stage's TensorBoard folder, when it has one."""
    folder = None if stages_dir is None else stages_dir / stage_id / "tb"
    return str(folder) if folder is not None and folder.is_dir() else None


def write(exp: ExperimentSpec) -> Path:
    """Write ``<output_dir>/results.json`` from the store (atomically).

    Returns:
        The file written.
    """
    path = exp.output_dir / NAME
    with ResultsStore(exp.store_path) as store:
        doc = build(store, exp.name, exp.stages_dir)
    write_json(path, doc)
    return path
