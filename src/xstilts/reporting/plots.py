"""Report figures (matplotlib, Agg backend), each saved as PNG and SVG.

* ``heatmap``: condition x target of Δ vs ``none`` (▲/▼ = significant after Holm; ``n/a`` where
  no comparison could be made, ``untested`` where one seed without per-example data gave a Δ);
* ``languages``: per-language Δ vs ``none``, one panel per target, languages grouped by family
  (a static map) with vertical ``code · family`` labels, so Tatoeba's 36 languages never
  overprint; a target without scores gets a one-line panel saying why;
* ``curves``: dev metric and training loss over steps, one row per trained task, one colour per
  condition the stage was trained after (one legend for the figure, above it); the loss of
  every logged step comes from the stage's TensorBoard files where it has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on servers and in CI

import matplotlib.pyplot as plt
import numpy as np

from xstilts.pipelines.experiment import ARROW
from xstilts.reporting.deltas import AVG

if TYPE_CHECKING:
    from matplotlib.typing import LineStyleType

    from xstilts.reporting.report_data import Report

# Language -> family (script in brackets where a family spans several), XTREME's 40 languages.
FAMILY = {
    "en": "Germanic", "de": "Germanic", "nl": "Germanic", "af": "Germanic",
    "fr": "Romance", "es": "Romance", "it": "Romance", "pt": "Romance",
    "ru": "Slavic (Cyrillic)", "bg": "Slavic (Cyrillic)", "el": "Greek", "fa": "Iranian",
    "hi": "Indo-Aryan", "mr": "Indo-Aryan", "bn": "Indo-Aryan", "ur": "Indo-Aryan (Arabic)",
    "ar": "Semitic", "he": "Semitic", "ta": "Dravidian", "te": "Dravidian", "ml": "Dravidian",
    "zh": "Sino-Tibetan", "my": "Sino-Tibetan", "ja": "Japonic", "ko": "Koreanic",
    "th": "Kra-Dai", "vi": "Austroasiatic", "id": "Austronesian", "ms": "Austronesian",
    "jv": "Austronesian", "tl": "Austronesian", "tr": "Turkic", "kk": "Turkic",
    "fi": "Uralic", "et": "Uralic", "hu": "Uralic", "eu": "Basque (isolate)",
    "ka": "Kartvelian", "sw": "Niger-Congo", "yo": "Niger-Congo",
}  # fmt: skip


def _save(fig: plt.Figure, base: Path) -> Path:
    base.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(base.with_suffix(".png"), dpi=110, bbox_inches="tight")
    fig.savefig(base.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return base


def heatmap(report: Report, base: Path) -> Path | None:
    """Condition x target Δ vs no intermediate training, annotated, significant ones marked."""
    table = next((t for t in report.delta_tables if t.title == "Δ vs no intermediate task"), None)
    if table is None or not table.rows:
        return None
    rows, cols = list(table.rows), table.columns
    values = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = table.rows[r].get(c)
            if cell is not None and cell.method != "untested":
                values[i, j] = cell.result.delta
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.5, 0.6 * len(rows) + 1.6))
    ax.set_facecolor("#e8e8e8")  # NaN cells (not compared, untested) show this grey
    im = ax.imshow(values, cmap="RdBu", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = table.rows[r].get(c)
            if cell is None:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="#666")
            elif cell.method == "untested":
                ax.text(j, i, f"{cell.result.delta:+.1f}\nuntested", ha="center", va="center",
                        fontsize=7, color="#444")  # fmt: skip
            else:
                mark = "▲" if cell.win(0.05) else "▼" if cell.loss(0.05) else ""
                dark = abs(cell.result.delta) > 0.6 * (lim or 1)  # white text on dark cells
                ax.text(j, i, f"{cell.result.delta:+.1f}{mark}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), [c if c != AVG else "avg" for c in cols], rotation=30)
    ax.set_yticks(range(len(rows)), [r.replace(" vs none", "") for r in rows])
    ax.set_title("Δ vs no intermediate task (points; ▲/▼ significant after Holm)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if np.isnan(values).any():
        fig.text(0.01, -0.02, "n/a: not compared (no usable run on one side: degenerate or "
                 "unscored); untested: one seed without per-example data", fontsize=8,
                 color="#555", va="top")  # fmt: skip
    return _save(fig, base)


def languages(report: Report, base: Path) -> Path | None:
    """Per-language Δ vs ``none`` of every condition, languages grouped by family.

    A target without usable baseline scores gets no (empty) panel: a line under the figure
    names it and says why.
    """
    data = report.data
    options = [o for o in data.options if o != "none"]
    if "none" not in data.options or not options:
        return None
    panels: list[tuple[str, list[str], dict[str, float]]] = []
    skipped: list[str] = []
    for target in data.targets:
        ref: dict[str, list[float]] = {}
        for r in data.runs_of("none", target):
            for lang, v in r.lang_scores.items():
                ref.setdefault(lang, []).append(v)
        langs = sorted(ref, key=lambda lg: (FAMILY.get(lg, "~"), lg))
        if langs:
            panels.append((target, langs, {lg: float(np.mean(ref[lg])) for lg in langs}))
        else:
            why = report.not_scored.get(target) or (
                "not evaluated: every run without intermediate training is degenerate"
            )
            skipped.append(f"{target}: {why}")
    if not panels:
        return None
    widest = max(len(p[1]) for p in panels)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(8.0, 0.3 * widest + 2.0), 4.0 * len(panels) + 0.6),
        squeeze=False,
    )  # fmt: skip
    colors = {o: f"C{k % 10}" for k, o in enumerate(options)}
    width = 0.8 / len(options)
    for ax, (target, langs, base_scores) in zip(axes[:, 0], panels, strict=True):
        missing, drawn = [], []
        for k, option in enumerate(options):
            runs = data.runs_of(option, target)
            if not runs:
                missing.append(option)
                continue
            deltas = [
                np.mean([r.lang_scores[lg] for r in runs if lg in r.lang_scores] or [np.nan])
                - base_scores[lg]
                for lg in langs
            ]
            drawn += deltas
            ax.bar(np.arange(len(langs)) + k * width, deltas, width, color=colors[option])
        ticks = np.arange(len(langs)) + 0.4 - width / 2
        ax.set_xticks(ticks, [f"{lg} · {FAMILY.get(lg, 'other')}" for lg in langs],
                      rotation=90, fontsize=7.5)  # fmt: skip
        for k in range(1, len(langs)):  # a thin line between two language families
            if FAMILY.get(langs[k], "other") != FAMILY.get(langs[k - 1], "other"):
                ax.axvline(k - 0.1 - width / 2, color="#bbb", linewidth=0.6)
        ax.set_xlim(-0.6, len(langs) - 0.2)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{target}\nΔ points")
        notes = []
        if missing:
            notes.append("not evaluated: " + ", ".join(missing))
        if drawn and np.nanmax(np.abs(drawn)) == 0:  # zero-height bars: say so
            notes.append("Δ = 0.0 for every condition and language")
        if notes:
            ax.text(0.01, 0.97, "; ".join(notes), fontsize=8, va="top", transform=ax.transAxes,
                    color="#555")  # fmt: skip
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[o]) for o in options]
    fig.legend(handles, options, loc="upper center", ncol=min(6, len(options)), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    fig.suptitle("Per-language Δ vs no intermediate task, languages grouped by family", y=1.03)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if skipped:
        fig.text(0.01, 0.0, "Not shown: " + "; ".join(skipped), fontsize=8, color="#555",
                 va="top", wrap=True)  # fmt: skip
    return _save(fig, base)


def _trained_after(stage: dict, by_id: dict[str, dict]) -> str:
    """The chain a stage was trained after: ``none``, ``mnli``, ``mnli→squad``."""
    labels, pid, seen = [], stage.get("parent_id"), set()
    while pid in by_id and pid not in seen:
        seen.add(pid)
        if by_id[pid].get("kind") != "base":
            labels.append(str(by_id[pid]["label"]))
        pid = by_id[pid].get("parent_id")
    return ARROW.join(reversed(labels)) or "none"


def _logged_losses(stages_dir: Path | None, stage_id: str) -> list[tuple[int, float]]:
    """``train/loss`` of every logged step from a stage's TensorBoard files (``[]``: none)."""
    folder = None if stages_dir is None else Path(stages_dir) / stage_id / "tb"
    if folder is None or not folder.is_dir():
        return []
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    runs = EventMultiplexer(size_guidance={"scalars": 0}).AddRunsFromDirectory(str(folder))
    runs.Reload()
    for run in runs.Runs():
        if "train/loss" in runs.GetAccumulator(run).Tags()["scalars"]:
            return [(e.step, e.value) for e in runs.Scalars(run, "train/loss")]
    return []


def curves(report: Report, base: Path) -> Path | None:
    """Dev metric and training loss over steps: a row per trained task, a colour per condition."""
    by_id = {s["stage_id"]: s for s in report.data.stages}
    stages = [s for s in report.data.stages if (s.get("metrics") or {}).get("dev_curve")]
    if not stages:
        return None
    rows: dict[str, list[dict]] = {}
    for s in stages:
        rows.setdefault(str(s["label"]), []).append(s)
    after = {s["stage_id"]: _trained_after(s, by_id) for s in stages}
    conditions = list(dict.fromkeys(after[s["stage_id"]] for s in stages))
    colors = {c: f"C{k % 10}" for k, c in enumerate(conditions)}
    seeds = sorted({s.get("seed") for s in stages}, key=str)
    dashes: list[LineStyleType] = ["-", "--", ":", "-."]
    styles = dict(zip(seeds, dashes * (len(seeds) // 4 + 1), strict=False))
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 1.9 * len(rows) + 0.9), squeeze=False)
    for (label, group), (top, bottom) in zip(rows.items(), axes, strict=True):
        for s in group:
            curve = s["metrics"]["dev_curve"]
            steps = [c["step"] for c in curve]
            style = {"color": colors[after[s["stage_id"]]], "linestyle": styles[s.get("seed")],
                     "marker": "o", "markersize": 3}  # fmt: skip
            metric = [np.nan if c.get("metric") is None else c["metric"] for c in curve]
            top.plot(steps, metric, **style)
            logged = _logged_losses(report.data.stages_dir, s["stage_id"])
            if logged:  # every logged step, from the stage's TensorBoard files
                bottom.plot(*zip(*logged, strict=True), **{**style, "marker": None})
            else:  # stages trained before TensorBoard logging: the dev evaluations' losses
                loss = [np.nan if c.get("train_loss") is None else c["train_loss"] for c in curve]
                bottom.plot(steps, loss, **style)
        top.set_ylabel(f"{label}\ndev metric", fontsize=8)
        bottom.set_ylabel("training loss", fontsize=8)
        if all(c.get("metric") is None for st in group for c in st["metrics"]["dev_curve"]):
            top.set_yticks([])
            top.text(0.5, 0.5, "no dev metric: the dev set has no gold labels", fontsize=8,
                     ha="center", va="center", transform=top.transAxes, color="#555")  # fmt: skip
        last = max(c["step"] for st in group for c in st["metrics"]["dev_curve"])
        for ax in (top, bottom):
            ax.tick_params(labelsize=7)
            ax.set_xlim(0, last * 1.05 + 1)  # from step 0: one evaluation is a point, not a line
    for ax in axes[-1]:
        ax.set_xlabel("optimizer step", fontsize=8)
    handles = [plt.Line2D([], [], color=colors[c], marker="o", markersize=3) for c in conditions]
    names = [f"after {c}" for c in conditions]
    if len(seeds) > 1:
        handles += [plt.Line2D([], [], color="black", linestyle=styles[s]) for s in seeds]
        names += [f"seed {s}" for s in seeds]
    fig.legend(handles, names, loc="upper center", ncol=min(6, len(names)), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    fig.suptitle("Learning curves: one row per trained task, colour = what it was trained after",
                 y=1.03)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, base)


def make_plots(report: Report, out_dir: Path) -> dict[str, Path]:
    """Every figure that applies to the experiment: name -> base path (``.png``/``.svg``)."""
    out: dict[str, Path] = {}
    for name, fn in (("heatmap", heatmap), ("languages", languages), ("curves", curves)):
        path = fn(report, out_dir / name)
        if path is not None:
            out[name] = path
    return out
