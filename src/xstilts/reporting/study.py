"""The study tables of a report: encoder movement, power (MDE) and per-language evidence.

Kept apart from :mod:`xstilts.reporting.report` so the report only calls :func:`study_grids`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xstilts.reporting.collect import ExperimentData
from xstilts.reporting.deltas import DeltaTable
from xstilts.reporting.movement import movement_grid
from xstilts.reporting.power import power_grid
from xstilts.reporting.render import Grid
from xstilts.reporting.transfer import transfer_grids


def study_grids(
    data: ExperimentData, tables: Sequence[DeltaTable], *, n_boot: int = 1000
) -> list[Grid]:
    """Movement of each intermediate stage, the MDE of every Δ table, and transfer evidence."""
    grids: list[Grid] = []
    moved = movement_grid(data)
    if moved is not None:
        grids.append(moved)
    for table in tables:
        grid = power_grid(data, table, n_boot=n_boot)
        if grid is not None and grid.rows:
            grids.append(grid)
    grids += transfer_grids(data)
    return grids
