"""Result tables from the results store: the XTREME table and per-language tables.

Numbers first (:class:`ResultTable` of :class:`Cell`), rendering second (:func:`render`), so
tests check values and the CLI only prints. A cell is the mean over seeds (± sample standard
deviation when there are several). Per language the task type's headline number is used
(QA: (EM + F1) / 2), via :func:`xstilts.metrics.xtreme_score.task_score`.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rich.table import Table

from xstilts.errors import DataError, XstiltsError
from xstilts.metrics.xtreme_score import XTREME_TASKS, task_score, xtreme_score
from xstilts.results.store import ResultsStore, Run
from xstilts.tasks.registry import get_task

XTREME_COLUMN = "XTREME"


@dataclass(frozen=True)
class Cell:
    """Mean (and std when > 1 value) over seeds; ``mean is None`` = no result."""

    values: tuple[float, ...] = ()

    @property
    def mean(self) -> float | None:
        """Mean over seeds, or None."""
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (None with fewer than two)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self) -> str:
        """``81.2``, ``81.2 ± 0.4`` or ``—``."""
        if self.mean is None:
            return "—"
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f} ± {self.std:.1f}"


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


def _experiment(store: ResultsStore, experiment: str | None) -> str:
    if experiment is not None:
        return experiment
    names = store.experiments()
    if not names:
        raise DataError("the results store holds no experiment yet", file=store.path)
    return names[0]


def _options(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(r.option for r in runs))


def _score(metrics: Mapping[str, Mapping[str, float]], task: str) -> float | None:
    """Headline score, or None when the task reported no usable numbers."""
    if not metrics:
        return None
    try:
        return task_score(metrics, get_task(task).type)
    except XstiltsError:
        return None  # e.g. a QA set without gold answers scores nothing


def _per_seed(
    store: ResultsStore, runs: Sequence[Run], option: str, target: str
) -> dict[int, float]:
    """Seed -> task score of one option on one target."""
    out: dict[int, float] = {}
    for r in runs:
        if r.option == option and r.target == target:
            score = _score(store.task_metrics(r.target_stage_id, target), target)
            if score is not None:
                out[r.seed] = score
    return out


def _versions_caption(store: ResultsStore, tasks: Sequence[str]) -> str:
    """``pawsx v1, xnli v1``: versions recorded with the results (the catalog's when none)."""
    versions = store.task_versions(tasks)
    return ", ".join(f"{t} v{'/'.join(versions[t]) or get_task(t).version}" for t in tasks)


def _unscored_note(targets: Sequence[str], scored: Mapping[str, bool]) -> str | None:
    """Name the targets that ran but produced no score (evaluation data without gold labels)."""
    unscored = [t for t in targets if not scored.get(t)]
    if not unscored:
        return None
    return (
        ", ".join(unscored) + ": evaluation data has no gold labels (e.g. TyDiQA-GoldP dev as "
        "XTREME distributes it); predictions were written, nothing could be scored"
    )


def xtreme_table(store: ResultsStore, experiment: str | None = None) -> ResultTable:
    """Rows = intermediate options, columns = target task scores, then the XTREME score.

    The XTREME column is filled only for rows with all nine XTREME tasks; otherwise the
    caption names the missing tasks.
    """
    name = _experiment(store, experiment)
    runs = store.runs(name)
    targets = list(dict.fromkeys(r.target for r in runs))
    table = ResultTable(f"{name}: zero-shot cross-lingual results", [*targets, XTREME_COLUMN])
    missing_any: set[str] = set()
    for option in _options(runs):
        per_target = {t: _per_seed(store, runs, option, t) for t in targets}
        row = {t: Cell(tuple(v for _, v in sorted(s.items()))) for t, s in per_target.items()}
        seeds = sorted({seed for s in per_target.values() for seed in s})
        overall: list[float] = []
        for seed in seeds:
            scores = {t: s[seed] for t, s in per_target.items() if seed in s}
            score, missing = xtreme_score(scores)
            missing_any.update(missing)
            if score is not None:
                overall.append(score)
        if not seeds:
            missing_any.update(XTREME_TASKS)
        row[XTREME_COLUMN] = Cell(tuple(overall))
        table.rows[option] = row
    notes = [_versions_caption(store, targets)]
    scored = {
        t: any(r.get(t, Cell()).mean is not None for r in table.rows.values()) for t in targets
    }
    unscored = _unscored_note(targets, scored)
    if unscored:
        notes.append(unscored)
    if missing_any:
        ordered = [t for t in XTREME_TASKS if t in missing_any]
        notes.append("XTREME score needs all 9 tasks; missing: " + ", ".join(ordered))
    table.caption = "\n".join(notes)
    return table


def language_table(store: ResultsStore, task: str, experiment: str | None = None) -> ResultTable:
    """Rows = intermediate options, columns = the task's languages, then their average.

    Raises:
        DataError: if the experiment has no run with ``task`` as its target.
    """
    name = _experiment(store, experiment)
    runs = [r for r in store.runs(name) if r.target == task]
    if not runs:
        raise DataError(f"experiment {name!r} has no results for task {task!r}", key=task)
    spec = get_task(task)
    by_option: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        metrics = store.task_metrics(r.target_stage_id, task)
        values = by_option.setdefault(r.option, {})
        for lang, scores in metrics.items():
            score = _score({lang: scores}, task)
            if score is not None:
                values.setdefault(lang, []).append(score)
        avg = _score(metrics, task)
        if avg is not None:
            values.setdefault("avg", []).append(avg)
    seen = {lang for v in by_option.values() for lang in v if lang != "avg"}
    order = [lang for lang in spec.eval_languages if lang in seen]
    langs = order + sorted(seen - set(order))
    table = ResultTable(f"{name}: {task} per language", [*langs, "avg"])
    for option, values in by_option.items():
        table.rows[option] = {c: Cell(tuple(values.get(c, ()))) for c in table.columns}
    metric = "(EM+F1)/2" if spec.type.value == "extractive_qa" else spec.metrics[0]
    table.caption = f"{_versions_caption(store, [task])}; per language: {metric}"
    unscored = _unscored_note([task], {task: bool(seen)})
    if unscored:
        table.caption += "\n" + unscored
    return table


def render(table: ResultTable, *, max_columns: int | None = None) -> Table:
    """A rich table; transposed (one row per column) when it has more than ``max_columns``.

    Wide language tables (Tatoeba has 36 languages) stay readable in a terminal that way.
    """
    out = Table(title=table.title, caption=table.caption or None, caption_justify="left")
    if max_columns is not None and len(table.columns) > max_columns:
        out.add_column("", style="bold")
        for option in table.rows:
            out.add_column(option, justify="right")
        for col in table.columns:
            cells = [table.rows[o].get(col, Cell()).text() for o in table.rows]
            out.add_row(col, *cells, style="cyan" if col in ("avg", XTREME_COLUMN) else "")
        return out
    out.add_column("intermediate", style="bold")
    for col in table.columns:
        out.add_column(col, justify="right", style="cyan" if col in ("avg", XTREME_COLUMN) else "")
    for option, cells in table.rows.items():
        out.add_row(option, *(cells.get(c, Cell()).text() for c in table.columns))
    return out
