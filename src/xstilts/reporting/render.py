"""Render text grids as Markdown, CSV, LaTeX and HTML (numbers are formatted before this)."""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field


@dataclass
class Grid:
    """A titled table of already formatted cells (``""`` = empty) with notes below it."""

    title: str
    columns: list[str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    corner: str = "condition"
    slug: str = "table"
    empty: str = ""  # why there is nothing to show: rendered instead of an empty table

    def cell(self, row: str, column: str) -> str:
        """One cell's text (``—`` when absent)."""
        return self.rows.get(row, {}).get(column) or "—"


def markdown(grid: Grid) -> str:
    """A Markdown section: heading, pipe table, notes as a bullet list."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"### {grid.title}", ""]
    if grid.empty:
        return "\n".join([*lines, grid.empty, ""])
    lines.append("| " + " | ".join([grid.corner, *map(esc, grid.columns)]) + " |")
    lines.append("|" + "---|" + "---:|" * len(grid.columns))
    for row in grid.rows:
        cells = [esc(grid.cell(row, c)) for c in grid.columns]
        lines.append("| " + " | ".join([esc(row), *cells]) + " |")
    lines.append("")
    lines.extend(f"- {note}" for note in grid.notes)
    return "\n".join(lines).rstrip() + "\n"


def to_csv(grid: Grid) -> str:
    """CSV with a header row (the corner name first)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([grid.corner, *grid.columns])
    for row in grid.rows:
        writer.writerow([row, *(grid.rows[row].get(c, "") for c in grid.columns)])
    return buf.getvalue()


_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "→": r"$\rightarrow$", "▲": r"$\blacktriangle$",
    "▼": r"$\blacktriangledown$", "†": r"$\dagger$", "—": "--", "Δ": r"$\Delta$",
    "≤": r"$\leq$", "≈": r"$\approx$",
}  # fmt: skip


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and map the report's symbols to math-mode ones."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def latex(grid: Grid) -> str:
    """A ``table`` float with a booktabs ``tabular`` and the notes in the caption."""
    cols = "l" + "r" * len(grid.columns)
    out = [
        r"\begin{table}[t]",
        r"\centering\small",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(tex_escape(c) for c in [grid.corner, *grid.columns]) + r" \\",
        r"\midrule",
    ]
    for row in grid.rows:
        cells = [tex_escape(grid.cell(row, c)) for c in grid.columns]
        out.append(" & ".join([tex_escape(row), *cells]) + r" \\")
    caption = tex_escape(grid.title + (". " + " ".join(grid.notes) if grid.notes else ""))
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


# Wider than the page (about 150 characters of 13 px text in the report's 1200 px column) and
# more columns than rows: the HTML table is drawn transposed.
PAGE_CHARS = 150


def _width_chars(grid: Grid) -> int:
    """Rough width of the table in characters (cells padded by about 2 characters)."""
    rows = list(grid.rows)
    first = max([len(grid.corner), *(len(r) for r in rows)])
    cols = [max([len(c), *(len(grid.cell(r, c)) for r in rows)]) for c in grid.columns]
    return first + sum(cols) + 2 * (len(cols) + 1)


def _td(text: str) -> str:
    cls = ' class="win"' if "▲" in text else ' class="loss"' if "▼" in text else ""
    cls = ' class="flag"' if "†" in text and not cls else cls
    cls = ' class="na"' if text in ("not run", "n/a") and not cls else cls
    return f"<td{cls}>{html.escape(text)}</td>"


def html_table(grid: Grid) -> str:
    """An HTML ``<table>`` (wins/losses get a class for colouring) with notes below.

    A table wider than the page with more columns than rows (Tatoeba's 36 languages by 3
    comparisons) is transposed, so it grows down the page, not across it; what is still wider
    than the page scrolls inside its own box.
    """
    title = f'<h3 id="{html.escape(grid.slug)}">{html.escape(grid.title)}</h3>\n'
    if grid.empty:
        return title + f'<p class="na">{html.escape(grid.empty)}</p>\n'
    rows, cols = list(grid.rows), list(grid.columns)
    corner = grid.corner
    if _width_chars(grid) > PAGE_CHARS and len(cols) > len(rows):
        corner = "language" if grid.slug.startswith("lang") else ""
        head = "".join(f"<th>{html.escape(c)}</th>" for c in [corner, *rows])
        body = [
            f"<tr><th>{html.escape(c)}</th>{''.join(_td(grid.cell(r, c)) for r in rows)}</tr>"
            for c in cols
        ]
    else:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in [corner, *cols])
        body = [
            f"<tr><th>{html.escape(r)}</th>{''.join(_td(grid.cell(r, c)) for c in cols)}</tr>"
            for r in rows
        ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in grid.notes)
    return (
        title + f'<div class="wide"><table class="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>\n" + (f"<ul class='notes'>{notes}</ul>\n")
    )
