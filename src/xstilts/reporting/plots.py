"""Report figures (matplotlib, Agg backend), each saved as PNG and SVG.

* ``heatmap``: condition x target of Δ vs ``none`` (▲/▼ = significant after Holm);
* ``languages``: per-language Δ vs ``none``, languages grouped by family (a static map);
* ``curves``: dev metric and training loss over steps for every trained stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on servers and in CI

import matplotlib.pyplot as plt
import numpy as np

from xstilts.reporting.deltas import AVG

if TYPE_CHECKING:
    from xstilts.reporting.report import Report

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
            if c in table.rows[r]:
                values[i, j] = table.rows[r][c].result.delta
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2.5, 0.6 * len(rows) + 1.6))
    im = ax.imshow(values, cmap="RdBu", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = table.rows[r].get(c)
            if cell is not None:
                mark = "▲" if cell.win(0.05) else "▼" if cell.loss(0.05) else ""
                dark = abs(cell.result.delta) > 0.6 * (lim or 1)  # white text on dark cells
                ax.text(j, i, f"{cell.result.delta:+.1f}{mark}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), [c if c != AVG else "avg" for c in cols], rotation=30)
    ax.set_yticks(range(len(rows)), [r.replace(" vs none", "") for r in rows])
    ax.set_title("Δ vs no intermediate task (points; ▲/▼ significant after Holm)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, base)


def languages(report: Report, base: Path) -> Path | None:
    """Per-language Δ vs ``none`` of every condition, languages grouped by family."""
    data = report.data
    if "none" not in data.options:
        return None
    panels = []
    for target in data.targets:
        ref = {lang: [] for lang in FAMILY}
        for r in data.runs_of("none", target):
            for lang, v in r.lang_scores.items():
                ref.setdefault(lang, []).append(v)
        langs = sorted((lg for lg, v in ref.items() if v), key=lambda lg: (FAMILY.get(lg, "~"), lg))
        if langs:
            panels.append((target, langs, {lg: float(np.mean(ref[lg])) for lg in langs}))
    options = [o for o in data.options if o != "none"]
    if not panels or not options:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
    width = 0.8 / len(options)
    for ax, (target, langs, base_scores) in zip(axes[:, 0], panels, strict=True):
        for k, option in enumerate(options):
            runs = data.runs_of(option, target)
            deltas = [
                np.mean([r.lang_scores[lg] for r in runs if lg in r.lang_scores] or [np.nan])
                - base_scores[lg]
                for lg in langs
            ]
            ax.bar(np.arange(len(langs)) + k * width, deltas, width, label=option)
        labels = [f"{lg}\n{FAMILY.get(lg, '?').split(' ')[0][:9]}" for lg in langs]
        ax.set_xticks(np.arange(len(langs)) + 0.4 - width / 2, labels, fontsize=7)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(f"{target} Δ")
    axes[0, 0].legend(fontsize=7, ncol=min(4, len(options)))
    axes[0, 0].set_title("Per-language Δ vs no intermediate task, grouped by language family")
    fig.tight_layout()
    return _save(fig, base)


def curves(report: Report, base: Path) -> Path | None:
    """Dev metric and training loss over steps of every trained stage."""
    stages = [s for s in report.data.stages if (s.get("metrics") or {}).get("dev_curve")]
    if not stages:
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for s in stages:
        curve = s["metrics"]["dev_curve"]
        steps = [c["step"] for c in curve]
        label = f"{s['label']} (seed {s['seed']}, {s['stage_id'][:6]})"
        top.plot(steps, [c.get("metric") for c in curve], marker="o", markersize=3, label=label)
        loss = [c.get("train_loss") for c in curve]
        bottom.plot(steps, [np.nan if v is None else v for v in loss], marker="o", markersize=3)
    top.set_ylabel("dev selection metric")
    bottom.set_ylabel("training loss")
    bottom.set_xlabel("optimizer step")
    top.legend(fontsize=7, ncol=2)
    top.set_title("Learning curves per stage")
    return _save(fig, base)


def make_plots(report: Report, out_dir: Path) -> dict[str, Path]:
    """Every figure that applies to the experiment: name -> base path (``.png``/``.svg``)."""
    out: dict[str, Path] = {}
    for name, fn in (("heatmap", heatmap), ("languages", languages), ("curves", curves)):
        path = fn(report, out_dir / name)
        if path is not None:
            out[name] = path
    return out
