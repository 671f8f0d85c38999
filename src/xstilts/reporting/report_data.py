"""The :class:`Report` record that ``report.py`` builds and ``html.py`` / ``plots.py`` render.

In its own module so that the renderers can name the type without importing ``report.py``,
which imports them (one-way imports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xstilts.reporting.collect import ExperimentData
from xstilts.reporting.deltas import DeltaTable
from xstilts.reporting.render import Grid


@dataclass
class Report:
    """Everything rendered: grids in reading order, the verdict lines and the plot files."""

    data: ExperimentData
    grids: list[Grid] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    glance: Grid | None = None
    delta_tables: list[DeltaTable] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    not_scored: dict[str, str] = field(default_factory=dict)  # target -> why, for empty panels
