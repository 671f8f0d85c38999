"""Result tables from the results store: the XTREME table and per-language tables.

Numbers first (:class:`ResultTable` of :class:`Cell`), rendering second (:func:`render`), so
tests check values and the CLI only prints. A cell is the mean over seeds (± sample standard
deviation when there are several). Per language the task type's headline number is used
(QA: (EM + F1) / 2), the task type's ``language_score`` (:mod:`xstilts.tasks.formats`).

Runs are read through :mod:`xstilts.reporting.collect`, as ``xstilts report`` reads them: a
degenerate run is left out of every mean and marked ``†`` with its reason, and what is not
scored is said with its cause, so both commands print the same numbers and notes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from xstilts.errors import DataError
from xstilts.metrics.xtreme_score import XTREME_TASKS, xtreme_score
from xstilts.reporting.collect import (
    ExperimentData,
    RunData,
    cell_text,
    degenerate_notes,
    experiment_data,
    lang_score,
    split_usable,
    unscored_notes,
)
from xstilts.results.store import ResultsStore
from xstilts.tasks.registry import get_task

XTREME_COLUMN = "XTREME"


@dataclass(frozen=True)
class Cell:
    """Mean (and std when > 1 value) over usable seeds; ``mean is None`` = no usable result.

    ``degenerate`` holds the scores of runs left out as degenerate (shown, never averaged).
    """

    values: tuple[float, ...] = ()
    degenerate: tuple[float, ...] = ()

    @property
    def mean(self) -> float | None:
        """Mean over seeds, or None."""
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (None with fewer than two)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self) -> str:
        """``81.2``, ``81.2 ± 0.4``, ``81.2 †1`` (one run excluded) or ``—``."""
        return cell_text(self.values, self.degenerate) or "—"


@dataclass
class ResultTable:
    """Rows (intermediate options) x columns of cells, with a title and caption."""

    title: str
    columns: list[str]
    rows: dict[str, dict[str, Cell]] = field(default_factory=dict)
    caption: str = ""

    def value(self, row: str, column: str) -> float | None:
        """Mean of one cell (None when absent)."""
        return self.rows.get(row, {}).get(column, Cell()).mean


def _data(store: ResultsStore, experiment: str | None, stages_dir: Path | None) -> ExperimentData:
    return experiment_data(store, stages_dir, experiment)


def _cell(runs: Sequence[RunData], value: Callable[[RunData], float | None]) -> Cell:
    """Usable values (seed order) and the degenerate ones of some runs."""
    good, bad = split_usable(runs, value)
    return Cell(tuple(good), tuple(bad))


def _versions_caption(store: ResultsStore, tasks: Sequence[str]) -> str:
    """``pawsx v1, xnli v1``: versions recorded with the results (the catalog's when none)."""
    versions = store.task_versions(tasks)
    return ", ".join(f"{t} v{'/'.join(versions[t]) or get_task(t).version}" for t in tasks)


def xtreme_table(
    store: ResultsStore, experiment: str | None = None, *, stages_dir: Path | None = None
) -> ResultTable:
    """Rows = intermediate options, columns = target task scores, then the XTREME score.

    The XTREME column is filled only for rows with all nine XTREME tasks (usable runs of the
    same seed); otherwise the caption names the missing tasks.

    Args:
        store: The results store.
        experiment: Experiment name (default: the most recently updated).
        stages_dir: The stage cache (per-example files for the degenerate checks; default
            ``<store dir>/stages``).
    """
    data = _data(store, experiment, stages_dir)
    targets = data.targets
    table = ResultTable(f"{data.name}: zero-shot cross-lingual results", [*targets, XTREME_COLUMN])
    missing_any: set[str] = set()
    for option in data.options:
        runs = {t: data.runs_of(option, t, usable=False) for t in targets}
        row = {t: _cell(runs[t], lambda r: r.score) for t in targets}
        usable = {t: {r.seed: r.score for r in data.runs_of(option, t)} for t in targets}
        seeds = sorted({seed for by_seed in usable.values() for seed in by_seed})
        overall: list[float] = []
        for seed in seeds:
            scores = {t: s[seed] for t, s in usable.items() if seed in s}
            score, missing = xtreme_score(scores)  # type: ignore[arg-type]
            missing_any.update(missing)
            if score is not None:
                overall.append(score)
        if not seeds:
            missing_any.update(XTREME_TASKS)
        row[XTREME_COLUMN] = Cell(tuple(overall))
        table.rows[option] = row
    notes = [_versions_caption(store, targets)]
    notes += unscored_notes(data.runs, targets)
    if missing_any:
        ordered = [t for t in XTREME_TASKS if t in missing_any]
        notes.append("XTREME score needs all 9 tasks; missing: " + ", ".join(ordered))
    notes += degenerate_notes(data.runs)
    table.caption = "\n".join(notes)
    return table


def language_table(
    store: ResultsStore,
    task: str,
    experiment: str | None = None,
    *,
    stages_dir: Path | None = None,
) -> ResultTable:
    """Rows = intermediate options, columns = the task's languages, then their average.

    Raises:
        DataError: if the experiment has no run with ``task`` as its target.
    """
    if experiment is not None and experiment not in store.experiments():
        raise DataError(
            f"experiment {experiment!r} has no results for task {task!r}", key=task,
            hint=f"experiments in the store: {', '.join(store.experiments()) or 'none'}",
        )  # fmt: skip
    data = _data(store, experiment, stages_dir)
    runs = [r for r in data.runs if r.target == task]
    if not runs:
        raise DataError(f"experiment {data.name!r} has no results for task {task!r}", key=task)
    spec = get_task(task)
    seen = {lang for r in runs for lang in r.lang_scores}
    order = [lang for lang in spec.eval_languages if lang in seen]
    langs = order + sorted(seen - set(order))
    table = ResultTable(f"{data.name}: {task} per language", [*langs, "avg"])
    for option in data.options:
        mine = data.runs_of(option, task, usable=False)
        if not mine:
            continue
        row = {lang: _cell(mine, lang_score(lang)) for lang in langs}
        row["avg"] = _cell(mine, lambda r: r.score)
        table.rows[option] = row
    metric = "(EM+F1)/2" if spec.type.value == "extractive_qa" else spec.metrics[0]
    notes = [f"{_versions_caption(store, [task])}; per language: {metric}"]
    notes += unscored_notes(runs, [task]) + degenerate_notes(runs)
    table.caption = "\n".join(notes)
    return table


def render(table: ResultTable, *, max_columns: int | None = None) -> Table:
    """A rich table; transposed (one row per column) when it has more than ``max_columns``.

    Wide language tables (Tatoeba has 36 languages) stay readable in a terminal that way.
    """
    # Notes quote stage ids in brackets ("mnli [ab12cd34]"): text, never rich markup.
    caption = escape(table.caption) if table.caption else None
    out = Table(title=escape(table.title), caption=caption, caption_justify="left")
    if max_columns is not None and len(table.columns) > max_columns:
        out.add_column("", style="bold")
        for option in table.rows:
            out.add_column(option, justify="right")
        for col in table.columns:
            texts = [table.rows[o].get(col, Cell()).text() for o in table.rows]
            out.add_row(col, *texts, style="cyan" if col in ("avg", XTREME_COLUMN) else "")
        return out
    out.add_column("intermediate", style="bold")
    for col in table.columns:
        out.add_column(col, justify="right", style="cyan" if col in ("avg", XTREME_COLUMN) else "")
    for option, cells in table.rows.items():
        out.add_row(option, *(cells.get(c, Cell()).text() for c in table.columns))
    return out
