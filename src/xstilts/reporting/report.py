"""``xstilts report``: tables (Markdown, CSV, LaTeX), plots and one HTML file per experiment.

Layout of ``<output_dir>/report/``: ``report.md``, ``report.html``, ``tables/<slug>.{csv,tex}``
and ``plots/<name>.{png,svg}``. Cells are mean ± std over the usable seeds; degenerate runs
(see :mod:`xstilts.reporting.collect`) are left out of every mean and test and marked ``†``.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path

from xstilts.metrics.xtreme_score import XTREME_TASKS
from xstilts.pipelines.experiment import ARROW
from xstilts.reporting.collect import (
    ExperimentData,
    cell_text,
    degenerate_notes,
    lang_score,
    split_usable,
    unscored_notes,
    unscored_reason,
)
from xstilts.reporting.deltas import (
    AVG,
    PRIMARY_TITLE,
    DeltaCell,
    DeltaTable,
    delta_tables,
    language_delta_table,
)
from xstilts.reporting.render import Grid, latex, markdown, to_csv
from xstilts.reporting.report_data import Report
from xstilts.reporting.study import study_grids
from xstilts.tasks.registry import get_task

ALPHA = 0.05


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "table"


def avg_label(targets: Sequence[str]) -> str:
    """``XTREME`` when every XTREME task is a target, else ``avg``."""
    return "XTREME" if set(XTREME_TASKS) <= set(targets) else AVG


def main_grid(data: ExperimentData) -> Grid:
    """Rows = conditions, columns = targets + the average over targets (XTREME when all 9)."""
    label = avg_label(data.avg_targets)
    grid = Grid(f"{data.name}: zero-shot cross-lingual results", [*data.targets, label])
    grid.slug = "main"
    for option in data.options:
        row: dict[str, str] = {}
        for t in data.targets:
            every = data.runs_of(option, t, usable=False)
            good = [r.score for r in every if not r.degenerate and r.score is not None]
            bad = [r.score for r in every if r.degenerate and r.score is not None]
            row[t] = cell_text(good, bad)
        seeds = sorted({r.seed for r in data.runs if r.option == option})
        overall = []
        for s in seeds:
            per = [[r for r in data.runs_of(option, t) if r.seed == s] for t in data.avg_targets]
            if per and all(per):
                overall.append(statistics.fmean(p[0].score for p in per))  # type: ignore[misc]
        row[label] = cell_text(overall, [])
        grid.rows[option] = row
    grid.notes.append(
        f"Cells: mean ± std over seeds. {label}: mean over {', '.join(data.avg_targets) or '—'} "
        "per seed (targets with usable runs for every condition; seeds with all of them)."
    )
    if label == AVG:
        missing = [t for t in XTREME_TASKS if t not in data.avg_targets]
        grid.notes.append("Not the XTREME score: missing or unscored " + ", ".join(missing))
    grid.notes.extend(unscored_notes(data.runs, data.targets))  # the same as `xstilts results`
    grid.notes.extend(degenerate_notes(data.runs))
    return grid


def not_scored_reason(data: ExperimentData, target: str) -> str | None:
    """Why ``target`` has no per-language score in any run (None when some language has one).

    The cause comes from what each evaluation recorded (:func:`collect.unscored_reason`), so
    "no gold labels" appears only when that is what the evaluation found.
    """
    runs = [r for r in data.runs if r.target == target]
    if any(r.lang_scores for r in runs):
        return None
    reasons = sorted({why for r in runs if (why := unscored_reason(r)) is not None})
    return "not evaluated: " + ("; ".join(reasons) or "no run of this target has a score")


def language_grid(data: ExperimentData, target: str) -> Grid:
    """One target per language (usable runs; degenerate ones marked †), with the average."""
    spec = get_task(target)
    seen = {lang for r in data.runs if r.target == target for lang in r.lang_scores}
    langs = [lang for lang in spec.eval_languages if lang in seen] + sorted(
        seen - set(spec.eval_languages)
    )
    metric = "(EM+F1)/2" if spec.type.value == "extractive_qa" else spec.metrics[0]
    grid = Grid(f"{target} per language ({metric})", [*langs, AVG], slug=f"lang-{target}")
    grid.empty = not_scored_reason(data, target) or ""
    if not grid.empty and not any(data.runs_of(o, target) for o in data.options):
        grid.empty = "every run of this target is degenerate: left out (see the † notes above)"
    for option in data.options:
        # As `xstilts results`: usable runs averaged, degenerate ones shown apart (†).
        every = data.runs_of(option, target, usable=False)
        row = {lang: cell_text(*split_usable(every, lang_score(lang))) for lang in langs}
        row[AVG] = cell_text(*split_usable(every, lambda r: r.score))
        grid.rows[option] = row
    runs = [r for r in data.runs if r.target == target]
    grid.notes = unscored_notes(runs, [target]) + degenerate_notes(runs)
    return grid


def delta_grid(table: DeltaTable, targets: Sequence[str], avg_name: str | None = None) -> Grid:
    """A tested-delta table as text cells (``avg_name``: the average column's header)."""
    label = avg_name or avg_label(targets)
    cols = [label if c == AVG else c for c in table.columns]
    grid = Grid(table.title, cols, slug=_slug(table.title), corner="comparison")
    for name, row in table.rows.items():
        grid.rows[name] = {(label if c == AVG else c): cell.text(ALPHA) for c, cell in row.items()}
    grid.notes = [
        *table.notes,
        "Δ in points, A − B, mean over common non-degenerate seeds; [95% CI]; p = two-sided, "
        "Holm–Bonferroni-adjusted over all cells of this table; ▲/▼ = significant win/loss at "
        f"α = {ALPHA}. Test: paired bootstrap over evaluation examples (the same resample for "
        "every seed) plus between-seed variance, t with Welch–Satterthwaite df.",
    ]
    methods = {c.method for row in table.rows.values() for c in row.values()}
    if "seeds" in methods:
        grid.notes.append("Some cells had no per-example data: paired t-test over seeds only.")
    if "untested" in methods:
        grid.notes.append(
            "untested: one seed and no per-example data (stages evaluated before the evaluator "
            "wrote <stage>/examples/); re-run `xstilts run` to re-evaluate them (no retraining)."
        )
    return grid


def missing_comparisons(data: ExperimentData) -> dict[str, list[str]]:
    """Chain ``A→B`` -> the references it is not compared with because they were not run.

    The questions a chain answers are A→B vs A, B, B→A and the A+B mixture; a reference that
    is not a condition of the experiment leaves its question open, and the report says so.
    """
    opts = set(data.options)
    out: dict[str, list[str]] = {}
    for option in data.options:
        steps = option.split(ARROW)
        if len(steps) != 2 or any("(" in s for s in steps):
            continue
        first, second = steps
        mixes = {f"mix({first}+{second})", f"mix({second}+{first})"}
        refs = [first, second, f"{second}{ARROW}{first}"]
        absent = [r for r in refs if r not in opts]
        if not mixes & opts:
            absent.append(f"mix({first}+{second})")
        if absent:
            out[option] = absent
    return out


def glance_grid(data: ExperimentData, tables: Sequence[DeltaTable]) -> Grid | None:
    """The chain questions as one grid: YES ▲ / WORSE ▼ / no, per target and on average.

    Questions whose reference condition was not run get a row saying so (``not run``).
    """
    chains = next((t for t in tables if t.title == "Δ chains"), None)
    primary = next((t for t in tables if t.title == PRIMARY_TITLE and t.rows), None)
    if (chains is None or not chains.rows) and primary is None:
        return None
    label = avg_label(data.avg_targets)
    cols = [*data.targets, label] if len(data.avg_targets) > 1 else list(data.targets)
    grid = Grid("Answer at a glance: does the chain win?", cols, slug="glance", corner="question")
    shown = [(t, prefix) for t, prefix in ((primary, "declared: "), (chains, "")) if t is not None]
    for table, prefix in shown:
        for name, row in table.rows.items():
            a, b = table.pairs[name]
            cells = {}
            for col, cell in row.items():
                r = cell.result
                word = "▲ YES" if cell.win(ALPHA) else "▼ WORSE" if cell.loss(ALPHA) else "no:"
                text = f"{word} {r.delta:+.1f} (p={cell.p_holm:.3f})"
                cells[label if col == AVG else col] = (
                    cell.text() if cell.method == "untested" else text
                )
            grid.rows[f"{prefix}does {a} beat {b}?"] = cells
    missing = missing_comparisons(data)
    for chain, refs in missing.items():
        for ref in refs:
            grid.rows[f"does {chain} beat {ref}?"] = {c: "not run" for c in cols}
    tested = [c for t, _ in shown for r in t.rows.values() for c in r.values()]
    seeds = sorted({c.result.n_seeds for c in tested})
    grid.notes = [
        f"Δ in points; p Holm-adjusted over the chain table ('declared:' rows: over the "
        f"declared question, report.primary); α = {ALPHA}; seeds per cell: "
        + ", ".join(map(str, seeds))
        + ". 'no' = no significant difference; — = no usable runs (degenerate or unscored)."
    ]
    for chain, refs in missing.items():
        them = "it" if len(refs) == 1 else "them"
        grid.notes.append(
            f"not run: {', '.join(refs)} {'is' if len(refs) == 1 else 'are'} not in this "
            f"experiment, so {chain} is not compared with {them}; add {them} to `intermediate` "
            "to answer."
        )
    return grid


def verdict_lines(data: ExperimentData, tables: Sequence[DeltaTable]) -> list[str]:
    """One sentence per chain question (the average column when there is one)."""
    chains = next((t for t in tables if t.title == "Δ chains"), None)
    primary = next((t for t in tables if t.title == PRIMARY_TITLE), None)
    lines = [] if primary is None else primary_lines(data, primary)
    if chains is None:
        return [*lines, "No chain A→B in this experiment: nothing to compare a chain with."]
    label = avg_label(data.avg_targets)
    for name, row in chains.rows.items():
        a, b = chains.pairs[name]
        for col, cell in row.items() if AVG not in row else [(AVG, row[AVG])]:
            where = label if col == AVG else col
            lines.append(_verdict(f"{where}: does {a} beat {b}?", cell, "Holm p"))
    for chain, refs in missing_comparisons(data).items():
        lines.append(f"does {chain} beat {' / '.join(refs)}? not run (not in this experiment)")
    return lines


def primary_lines(data: ExperimentData, table: DeltaTable) -> list[str]:
    """One sentence per declared comparison (``report.primary``), Holm over those only."""
    label = avg_label(data.avg_targets)
    lines = [f"declared question: {note}" for note in table.notes if "cannot" in note]
    for name, row in table.rows.items():
        a, b = table.pairs[name]
        if not row:
            lines.append(f"declared: does {a} beat {b}? no usable runs")
        for col, cell in row.items():
            where = label if col == AVG else col
            question = f"declared, {where}: does {a} beat {b}?"
            lines.append(_verdict(question, cell, "Holm p over the declared comparisons"))
    return lines


def _verdict(question: str, cell: DeltaCell, holm: str) -> str:
    """``question`` answered from one tested cell: YES / NO, worse / not shown, or untested."""
    r = cell.result
    if cell.method == "untested":
        return f"{question} untested (Δ {r.delta:+.1f}; 1 seed, no per-example data)"
    answer = "YES" if cell.win(ALPHA) else "NO, worse" if cell.loss(ALPHA) else "not shown"
    return (
        f"{question} {answer} (Δ {r.delta:+.1f}, 95% CI [{r.ci_low:+.1f}, {r.ci_high:+.1f}], "
        f"{holm}={cell.p_holm:.3g}, {r.n_seeds} seed{'s' if r.n_seeds != 1 else ''})"
    )


def build_report(data: ExperimentData, *, n_boot: int = 1000) -> Report:
    """Compute every table and the verdict (no files written)."""
    report = Report(data)
    report.grids.append(main_grid(data))
    report.delta_tables = delta_tables(data, n_boot=n_boot)
    report.verdict = verdict_lines(data, report.delta_tables)
    report.glance = glance_grid(data, report.delta_tables)
    for target in data.targets:
        reason = not_scored_reason(data, target)
        if reason:
            report.not_scored[target] = reason
    report.grids.extend(delta_grid(t, data.avg_targets) for t in report.delta_tables)
    report.grids.extend(study_grids(data, report.delta_tables, n_boot=n_boot))  # power, transfer
    for target in data.targets:
        report.grids.append(language_grid(data, target))
        lang_deltas = language_delta_table(data, target, n_boot=n_boot)
        if lang_deltas.rows:
            grid = delta_grid(lang_deltas, data.targets, avg_name=AVG)
            grid.slug = f"lang-delta-{target}"
            if not any(lang_deltas.rows.values()):  # a table of dashes says nothing
                grid.empty = "no comparison: no usable runs (degenerate or unscored)"
            report.grids.append(grid)
    return report


def write_report(
    report: Report, out_dir: Path, *, yaml_text: str = "", plots: bool = True
) -> list[Path]:
    """Write Markdown, CSV, LaTeX, plots and the HTML report under ``out_dir``.

    Returns:
        Every file written.
    """
    from xstilts.reporting import html
    from xstilts.reporting import plots as plotting

    out_dir = Path(out_dir)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for grid in report.grids:
        for ext, text in (("csv", to_csv(grid)), ("tex", latex(grid))):
            path = out_dir / "tables" / f"{grid.slug}.{ext}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    if plots:
        report.plots = plotting.make_plots(report, out_dir / "plots")
        for base in report.plots.values():
            written += [base.with_suffix(".png"), base.with_suffix(".svg")]
    md = out_dir / "report.md"
    md.write_text(report_markdown(report), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(html.render_html(report, yaml_text), encoding="utf-8")
    return [*written, md, page]


def report_markdown(report: Report) -> str:
    """The whole report as one Markdown document."""
    parts = [f"# Report: {report.data.name}", ""]
    if report.glance is not None:
        parts.append(markdown(report.glance))
    else:
        parts += [f"- {line}" for line in report.verdict] + [""]
    parts += [markdown(g) for g in report.grids]
    if report.plots:
        parts.append("## Plots\n")
        parts += [f"![{name}](plots/{p.name}.png)\n" for name, p in report.plots.items()]
    return "\n".join(parts)
