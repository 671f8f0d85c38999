"""One self-contained HTML report: no network, no scripts; plots inlined as base64 PNG.

Sections: the answer at a glance (chain verdicts), the results and Δ tables, plots, per-language
tables, the stage DAG (reuse = cache hits, seconds per stage), the experiment YAML, versions.
"""

from __future__ import annotations

import base64
import html
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from xstilts.reporting.render import html_table

if TYPE_CHECKING:
    from xstilts.reporting.report_data import Report

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
div.wide{overflow-x:auto;max-width:100%;margin:.5em 0 1em}
table.results{border-collapse:collapse;font-size:13px}
table.results th,table.results td{border:1px solid #ccc;padding:3px 7px;text-align:right;
white-space:nowrap}
table.results thead th{background:#f0f0f0}
table.results tbody th{text-align:left;background:#fafafa;position:sticky;left:0}
table.results thead th:first-child{position:sticky;left:0;z-index:1;text-align:left}
td.win{background:#d8f0d8;font-weight:600}td.loss{background:#f6d6d6}td.flag{color:#a05a00}
td.na{color:#888;background:#f4f4f4;font-style:italic}
ul.notes{font-size:12px;color:#555;max-width:110ch}
p.na{color:#666;font-style:italic}
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}
img{max-width:100%;border:1px solid #eee}
.verdict li{margin:.2em 0}
"""


def _img(path: Any, alt: str) -> str:
    data = base64.b64encode(path.with_suffix(".png").read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _dag(report: Report) -> str:
    """Stages as an indented tree with label, seed, status, reuse and seconds."""
    stages = report.data.stages
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for s in stages:
        children[s.get("parent_id")].append(s)
    uses: dict[str, int] = defaultdict(int)
    by_id = {s["stage_id"]: s for s in stages}
    for run in report.data.runs:
        sid: str | None = run.stage_id
        seen = set()
        while sid and sid in by_id and sid not in seen:
            seen.add(sid)
            uses[sid] += 1
            sid = by_id[sid].get("parent_id")
    rows = []
    total = 0.0

    def walk(parent: str | None, depth: int) -> None:
        nonlocal total
        for s in children.get(parent, []):
            secs = float(s.get("train_seconds") or 0.0)
            total += secs
            n = uses.get(s["stage_id"], 0)
            hits = f"{n} runs, {max(n - 1, 0)} cache hits" if n else "—"
            rows.append(
                f"<tr><th style='padding-left:{8 + 18 * depth}px'>"
                f"{'└ ' if depth else ''}{html.escape(str(s['label']))}</th>"
                f"<td>{html.escape(s['stage_id'][:12])}</td><td>{html.escape(str(s['role']))}</td>"
                f"<td>{s.get('seed')}</td><td>{html.escape(str(s['status']))}</td>"
                f"<td>{hits}</td><td>{secs:.1f}</td></tr>"
            )
            walk(s["stage_id"], depth + 1)

    walk(None, 0)
    head = "".join(
        f"<th>{h}</th>" for h in ("stage", "id", "role", "seed", "status", "reuse", "train seconds")
    )
    return (
        f'<div class="wide"><table class="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        f"<p>{len(stages)} distinct stages, {total:.1f} training seconds in all "
        f"({total / 3600:.3f} device-hours). Reuse: runs whose chain passes through the stage; "
        "every use after the first is served from the stage cache.</p>"
    )


def _versions(report: Report) -> str:
    seen: dict[str, str] = {}
    for s in report.data.stages:
        for k, v in (s.get("versions") or {}).items():
            seen.setdefault(k, str(v))
    return "<pre>" + html.escape(json.dumps(seen, indent=1, sort_keys=True)) + "</pre>"


def render_html(report: Report, yaml_text: str = "") -> str:
    """The complete page (UTF-8 text)."""
    name = html.escape(report.data.name)
    verdict = "".join(f"<li>{html.escape(v)}</li>" for v in report.verdict)
    grids = [g for g in report.grids if not g.slug.startswith("lang-")]
    langs = [g for g in report.grids if g.slug.startswith("lang-")]
    plots = "".join(f"<h3>{html.escape(n)}</h3>{_img(p, n)}" for n, p in report.plots.items())
    spec = yaml_text or json.dumps(report.data.spec, indent=1, sort_keys=True)
    body = [
        f"<h1>Report: {name}</h1>",
        html_table(report.glance) if report.glance else f'<ul class="verdict">{verdict}</ul>',
        "<h2>Results</h2>",
        *(html_table(g) for g in grids),
        "<h2>Plots</h2>",
        plots or "<p>No plots (nothing to plot).</p>",
        "<h2>Per language</h2>",
        *(html_table(g) for g in langs),
        "<h2>Stage DAG</h2>",
        _dag(report),
        "<h2>Experiment</h2>",
        f"<pre>{html.escape(spec)}</pre>",
        "<h2>Versions</h2>",
        _versions(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>xstilts report: {name}</title>"
        f'<link rel="icon" href="data:,"><style>{CSS}</style></head>\n<body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )
