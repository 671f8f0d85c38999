"""Report table: did each intermediate stage move the encoder, and did it learn its own task?

One row per intermediate stage of the experiment's chains (path from the base, and seed):
optimizer steps, the intermediate task's best dev score (``best_dev_metric`` of its dev curve),
and the weight distance of its encoder from the base encoder (``encoder_movement``, written by
:mod:`xstilts.training.movement`; frozen tensors excluded). A chain whose intermediate barely
moved (relative distance ~0) or barely learned (dev score at chance) cannot show an effect of
that intermediate task, whatever the target tables say.
"""

from __future__ import annotations

from typing import Any

from xstilts.pipelines.experiment import ARROW
from xstilts.reporting.collect import ExperimentData
from xstilts.reporting.render import Grid

COLUMNS = ["steps", "dev score", "‖Δw‖₂", "‖Δw‖/‖w₀‖"]


def _path(stage: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    """Labels from the first intermediate to ``stage`` (``mnli→squad``)."""
    labels = []
    while stage and stage.get("role") != "base":
        labels.append(str(stage.get("label", "?")))
        stage = by_id.get(stage.get("parent_id") or "", {})
    return ARROW.join(reversed(labels))


def intermediate_stages(data: ExperimentData) -> list[dict[str, Any]]:
    """The intermediate stages on the chains of ``data``'s runs, first seen first."""
    by_id = {s["stage_id"]: s for s in data.stages}
    seen: dict[str, dict[str, Any]] = {}
    for run in data.runs:
        stage_id: str | None = run.stage_id
        chain = []
        while stage_id in by_id:
            chain.append(by_id[stage_id])
            stage_id = by_id[stage_id].get("parent_id")
        for stage in reversed(chain):
            if stage.get("role") == "intermediate":
                seen.setdefault(stage["stage_id"], stage)
    return list(seen.values())


def movement_grid(data: ExperimentData) -> Grid | None:
    """The movement table (None when the experiment has no intermediate stage)."""
    stages = intermediate_stages(data)
    if not stages:
        return None
    by_id = {s["stage_id"]: s for s in data.stages}
    grid = Grid("Intermediate stages: did they move the encoder?", COLUMNS, slug="movement",
                corner="intermediate (seed)")  # fmt: skip
    rows = []
    for stage in stages:
        metrics = stage.get("metrics") or {}
        move = metrics.get("encoder_movement") or {}
        dev = metrics.get("best_dev_metric")
        row = {
            "steps": str(metrics.get("steps", "")),
            "dev score": f"{dev:.1f}" if isinstance(dev, int | float) else "",
            "‖Δw‖₂": f"{move['l2']:.3g}" if "l2" in move else "",
            "‖Δw‖/‖w₀‖": f"{100 * move['relative']:.2f}%" if "relative" in move else "",
        }
        rows.append(((_path(stage, by_id), int(stage.get("seed") or 0)), row))
    for (path, seed), row in sorted(rows, key=lambda x: x[0]):
        grid.rows[f"{path} (seed {seed})"] = row
    grid.notes = [
        "dev score: the intermediate task's best dev score during its stage (its own metric; "
        "the last step of a chain, e.g. squad in mnli→squad). ‖Δw‖₂: L2 distance of the "
        "encoder's trainable weights from the base encoder (frozen tensors excluded), "
        "‖Δw‖/‖w₀‖ relative to their norm. Empty: a stage trained before xstilts recorded it."
    ]
    return grid
