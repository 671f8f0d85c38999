"""``results.json`` beside ``results.sqlite``: one experiment's results as plain JSON.

For readers without SQLite (scripts, dashboards, a paper's supplementary material): the
experiment config, the software versions, every stage (id, parent, label, status, training
metrics) and every run (chain, condition, target, seed, target stage id, all metrics per
language, and the degenerate reasons the report uses). Written atomically after every run;
the store stays the source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.fileio import write_json
from xstilts.reporting.collect import load_experiment_data
from xstilts.results.store import ResultsStore, versions

RESULTS_JSON = "results.json"
SCHEMA = 1
STAGE_FIELDS = ("stage_id", "parent_id", "label", "role", "kind", "seed", "status",
                "train_seconds", "metrics", "versions")  # fmt: skip


def results_document(db: Path, stages_dir: Path | None = None, experiment: str | None = None
                     ) -> dict[str, Any]:  # fmt: skip
    """The JSON document of one experiment in the store ``db`` (see the module doc)."""
    data = load_experiment_data(db, stages_dir, experiment)
    flags = {(r.option, r.target, r.seed): r.flags for r in data.runs}
    with ResultsStore(db) as store:
        runs = [
            {
                "chain": r.chain,
                "condition": r.option,
                "target": r.target,
                "seed": r.seed,
                "target_stage_id": r.target_stage_id,
                "metrics": store.task_metrics(r.target_stage_id, r.target),
                "degenerate": flags.get((r.option, r.target, r.seed), []),
            }
            for r in store.runs(data.name)
        ]
        stages = [{k: row.get(k) for k in STAGE_FIELDS} for row in store.stage_rows()]
    used = {r["target_stage_id"] for r in runs}
    by_id = {s["stage_id"]: s for s in stages}
    keep: set[str] = set()
    for stage_id in used:  # the chains' stages, parents included
        while stage_id in by_id and stage_id not in keep:
            keep.add(stage_id)
            stage_id = by_id[stage_id]["parent_id"] or ""
    return {
        "schema": SCHEMA,
        "experiment": data.name,
        "config": data.spec,
        "versions": versions(),
        "stages": [s for s in stages if s["stage_id"] in keep],
        "runs": runs,
    }


def write_results_json(db: Path, stages_dir: Path | None = None,
                       experiment: str | None = None) -> Path:  # fmt: skip
    """Write ``results.json`` next to ``db``; returns its path."""
    path = Path(db).parent / RESULTS_JSON
    write_json(path, results_document(Path(db), stages_dir, experiment))
    return path
