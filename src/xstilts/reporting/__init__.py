"""Reports built from the results store (queries only: a report never trains)."""

from xstilts.reporting.tables import Cell, ResultTable, language_table, render, xtreme_table

__all__ = ["Cell", "ResultTable", "language_table", "render", "xtreme_table"]
