"""Everything a report needs, read once: runs, scores, per-example data, degenerate flags.

Scores come from the results store; per-example statistics from each target stage's
``examples/<task>-<evaluation key>.json`` (written by the evaluator; the store names the key of
the latest evaluation). A run is *degenerate* when a stage of its chain diverged (a non-finite
training loss, or a final loss far above the first) or its target predictions sit at the
majority class (classification) or score ~0 (tagging, QA). Degenerate runs are kept in the data
with their reasons; means and tests drop them, and every table (``xstilts results`` and
``xstilts report`` alike) says so. What is not scored is said too, with its exact cause
(:func:`unscored_notes`): no gold labels, a failed or interrupted stage, or files on disk that
are not a language of the task.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.errors import DataError, XstiltsError
from xstilts.metrics.per_example import score_from_stats
from xstilts.results.store import ResultsStore
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task

# A final training loss this many times the first one counts as diverged.
RISING_LOSS_FACTOR = 1.5
# Accuracy within this many points of the majority-class rate counts as degenerate.
MAJORITY_MARGIN = 1.0
# Share of predictions in one class above which a classifier has collapsed.
COLLAPSE_SHARE = 0.98


@dataclass
class RunData:
    """One (option, target, seed) run: its scores, per-example data and flags."""

    option: str
    target: str
    seed: int
    stage_id: str
    lang_scores: dict[str, float]
    score: float | None
    details: dict[str, dict[str, Any]] | None = None
    flags: list[str] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None  # the store's latest evaluation of the target
    stage: dict[str, Any] | None = None  # the store's row of the target stage

    @property
    def degenerate(self) -> bool:
        """True when any degenerate check fired."""
        return bool(self.flags)


@dataclass
class ExperimentData:
    """A whole experiment as the report sees it."""

    name: str
    spec: dict[str, Any]
    options: list[str]
    targets: list[str]
    runs: list[RunData]
    stages: list[dict[str, Any]]
    stages_dir: Path | None

    @property
    def scored_targets(self) -> list[str]:
        """Targets with at least one scored run (an unlabelled set, e.g. TyDiQA dev, has none)."""
        return [t for t in self.targets if any(r.score is not None for r in self.runs
                                               if r.target == t)]  # fmt: skip

    @property
    def avg_targets(self) -> list[str]:
        """Scored targets where every condition has a usable run: what averages are over."""
        return [t for t in self.scored_targets if all(self.runs_of(o, t) for o in self.options)]

    def runs_of(self, option: str, target: str, *, usable: bool = True) -> list[RunData]:
        """Runs of one cell (by default without degenerate or unscored ones), seed order."""
        out = [r for r in self.runs if r.option == option and r.target == target]
        if usable:
            out = [r for r in out if not r.degenerate and r.score is not None]
        return sorted(out, key=lambda r: r.seed)


def _lang_scores(metrics: dict[str, dict[str, float]], task: str) -> dict[str, float]:
    out = {}
    spec = get_task(task)
    for lang, values in metrics.items():
        try:
            out[lang] = format_of(spec).language_score(spec, lang, values)
        except XstiltsError:
            continue  # e.g. an unlabelled QA set: nothing to score
    return out


def _details(
    stages_dir: Path | None, stage_id: str, task: str, key: str | None
) -> dict[str, Any] | None:
    """The per-example file of the evaluation ``key`` (None when absent).

    Stores written before evaluation keys were recorded (``key`` None): the newest file.
    """
    if stages_dir is None:
        return None
    folder = stages_dir / stage_id / "examples"
    if key is not None:
        path = folder / f"{task}-{key}.json"
        if path.is_file():
            return json.loads(path.read_text())
        packed = path.with_name(path.name + ".gz")  # a committed snapshot (reporting/snapshot.py)
        return json.loads(gzip.decompress(packed.read_bytes())) if packed.is_file() else None
    files = sorted(folder.glob(f"{task}-*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(files[-1].read_text()) if files else None


def _chain(stage_id: str, by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    while stage_id in by_id:
        out.append(by_id[stage_id])
        stage_id = by_id[stage_id].get("parent_id") or ""
    return out


def loss_flags(stage: dict[str, Any]) -> list[str]:
    """Divergence reasons of one stage from its dev curve's training losses."""
    curve = (stage.get("metrics") or {}).get("dev_curve") or []
    losses = [c.get("train_loss") for c in curve if c.get("train_loss") is not None]
    label = f"{stage.get('label', '?')} [{str(stage.get('stage_id', ''))[:8]}]"
    if any(not math.isfinite(float(x)) for x in losses):
        return [f"{label}: training loss not finite"]
    if len(losses) >= 2 and float(losses[-1]) > RISING_LOSS_FACTOR * float(losses[0]):
        return [f"{label}: training loss rose {losses[0]:.3g} → {losses[-1]:.3g}"]
    return []


def prediction_flags(task: str, details: dict[str, Any] | None, score: float | None) -> list[str]:
    """Majority-class / chance checks on a run's target predictions."""
    check = format_of(get_task(task)).degenerate_check  # declared by the task type
    if check == "near_zero":
        return [f"{task}: score {score:.2f} ≈ 0"] if score is not None and score < 1.0 else []
    if check != "majority" or not details:
        return []
    gold = [g for d in details.values() for g in (d.get("gold") or [])]
    pred = [p for d in details.values() for p in (d.get("pred") or [])]
    if not gold or not pred:
        return []
    majority = 100.0 * Counter(map(str, gold)).most_common(1)[0][1] / len(gold)
    top_share = Counter(map(str, pred)).most_common(1)[0][1] / len(pred)
    accuracy = float(np.mean([score_from_stats("mean", d["stats"]) for d in details.values()]))
    if top_share >= COLLAPSE_SHARE:
        return [f"{task}: {100 * top_share:.0f}% of predictions are one class"]
    if accuracy <= majority + MAJORITY_MARGIN:
        return [f"{task}: accuracy {accuracy:.1f} ≤ majority class {majority:.1f} + 1"]
    return []


def load_experiment_data(
    db: Path, stages_dir: Path | None = None, experiment: str | None = None
) -> ExperimentData:
    """Read the store (and stage directories) of one experiment.

    Args:
        db: ``results.sqlite``.
        stages_dir: The stage cache (default: ``<db dir>/stages`` when it exists).
        experiment: Experiment name (default: the most recently updated).

    Raises:
        DataError: an empty store or an unknown experiment.
    """
    with ResultsStore(db) as store:
        return experiment_data(store, stages_dir, experiment)


def experiment_data(
    store: ResultsStore, stages_dir: Path | None = None, experiment: str | None = None
) -> ExperimentData:
    """:func:`load_experiment_data` on an open store (``xstilts results`` uses it too)."""
    db = store.path
    if stages_dir is None and (db.parent / "stages").is_dir():
        stages_dir = db.parent / "stages"
    names = store.experiments()
    if not names:
        raise DataError("the results store holds no experiment yet", file=db)
    name = experiment or names[0]
    if name not in names:
        raise DataError(f"no experiment {name!r} in the store (has {names})", file=db)
    row = store.conn.execute("SELECT spec FROM experiments WHERE name = ?", (name,)).fetchone()
    spec = json.loads(row[0]) if row and row[0] else {}
    runs_rows = store.runs(name)
    stages = store.stage_rows()
    evaluations = store.evaluations()
    metrics = {
        (r.target_stage_id, r.target): store.task_metrics(r.target_stage_id, r.target)
        for r in runs_rows
    }
    by_id = {s["stage_id"]: s for s in stages}
    runs = []
    for r in runs_rows:
        langs = _lang_scores(metrics[(r.target_stage_id, r.target)], r.target)
        score = sum(langs.values()) / len(langs) if langs else None
        run = RunData(r.option, r.target, r.seed, r.target_stage_id, langs, score)
        run.evaluation = evaluations.get((r.target_stage_id, r.target))
        run.stage = by_id.get(r.target_stage_id)
        key = run.evaluation["eval_key"] if run.evaluation else None
        run.details = _details(stages_dir, r.target_stage_id, r.target, key)
        for stage in _chain(r.target_stage_id, by_id):
            run.flags.extend(loss_flags(stage))
        run.flags.extend(prediction_flags(r.target, run.details, score))
        runs.append(run)
    options = list(dict.fromkeys(r.option for r in runs_rows))
    targets = list(dict.fromkeys(r.target for r in runs_rows))
    return ExperimentData(name, spec, options, targets, runs, stages, stages_dir)


NO_GOLD = (
    "evaluation data has no gold labels (e.g. TyDiQA-GoldP dev as XTREME distributes it); "
    "predictions were written, nothing could be scored"
)


def unscored_reason(run: RunData) -> str | None:
    """Why a run has no score (None when it has one), from what the store recorded."""
    if run.score is not None:
        return None
    ev = run.evaluation
    if ev is not None:
        if not ev["languages"]:
            return "no language was evaluated"
        if set(ev["languages"]) <= set(ev["unlabelled"]):
            return NO_GOLD
        return "its evaluation recorded no score"
    status = (run.stage or {}).get("status")
    if status == "failed":
        error = ((run.stage or {}).get("metrics") or {}).get("error") or "see the run's log"
        return f"not evaluated: its stage failed ({error}); fix it and run `xstilts run` again"
    if status == "complete" and run.lang_scores == {}:
        return "no score recorded for it (evaluated before xstilts recorded why); run again"
    return "not evaluated: the run stopped before this stage was evaluated; run again"


def unscored_notes(runs: Sequence[RunData], targets: Sequence[str]) -> list[str]:
    """What is not scored and why, one line per (target, cause), in target order.

    Whole runs without a score (:func:`unscored_reason`), languages without gold labels inside
    scored runs, and evaluation files or languages on disk that were not scored.
    """
    notes: list[str] = []
    for target in targets:
        mine = [r for r in runs if r.target == target]
        reasons = Counter(reason for r in mine if (reason := unscored_reason(r)) is not None)
        for reason, n in reasons.items():
            share = "" if n == len(mine) else f"{n} of {len(mine)} runs: "
            notes.append(f"{target}: {share}{reason}")
        partial = sorted({lang for r in mine if r.score is not None and r.evaluation
                          for lang in r.evaluation["unlabelled"]})  # fmt: skip
        if partial:
            notes.append(f"{target}: {', '.join(partial)} have no gold labels (not averaged)")
        left_out: dict[str, list[str]] = {}
        for r in mine:
            for item, why in (r.evaluation or {}).get("not_scored", {}).items():
                if item not in left_out.setdefault(why, []):
                    left_out[why].append(item)
        notes += [f"{target}: not scored: {', '.join(items)} ({why})"
                  for why, items in left_out.items()]  # fmt: skip
        notes += subsample_notes(mine, target)
    return notes


def subsample_notes(runs: Sequence[RunData], target: str) -> list[str]:
    """``BUCC subsampled: N x M sentences`` when ``evaluation.retrieval.max_sentences`` cut
    the mined corpora (a smaller corpus has fewer distractors: its F1 is not XTREME's)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in runs:
        for lang, rec in sorted((r.details or {}).items()):
            info = rec.get("sentences") if isinstance(rec, dict) else None
            if info and (info["source"], info["target"]) != (info["source_total"],
                                                             info["target_total"]):  # fmt: skip
                seen.setdefault(lang, info)
    if not seen:
        return []
    sizes = {lang: f"{i['source']} x {i['target']}" for lang, i in seen.items()}
    shown = (
        next(iter(sizes.values()))
        if len(set(sizes.values())) == 1
        else ", ".join(f"{lang} {size}" for lang, size in sizes.items())
    )
    totals = ", ".join(
        f"{lang} {i['source_total']} x {i['target_total']}" for lang, i in seen.items()
    )
    over = [lang for lang, i in seen.items() if i["gold_over_cap"]]
    extra = f"; gold alone exceeds the cap in {', '.join(over)}" if over else ""
    return [f"{target}: BUCC subsampled: {shown} sentences (of {totals}; every gold pair kept, "
            f"evaluation.retrieval.max_sentences){extra}"]  # fmt: skip


def degenerate_notes(runs: Sequence[RunData]) -> list[str]:
    """One visible line per degenerate run: which run and why it was excluded."""
    return [
        f"† excluded (degenerate): {r.option} → {r.target}, seed {r.seed}: " + "; ".join(r.flags)
        for r in runs
        if r.degenerate
    ]


def lang_score(lang: str) -> Callable[[RunData], float | None]:
    """A ``value`` for :func:`split_usable`: a run's score in ``lang`` (None where unscored)."""
    return lambda r: r.lang_scores.get(lang)


def split_usable(
    runs: Sequence[RunData], value: Callable[[RunData], float | None]
) -> tuple[list[float], list[float]]:
    """``value`` of the usable runs and of the degenerate ones (seed order; None skipped)."""
    ordered = sorted(runs, key=lambda r: r.seed)
    good = [v for r in ordered if not r.degenerate and (v := value(r)) is not None]
    bad = [v for r in ordered if r.degenerate and (v := value(r)) is not None]
    return good, bad


def cell_text(values: Sequence[float], degenerate: Sequence[float]) -> str:
    """A cell: mean ± std of the usable values, ``†k`` when k degenerate ones were left out.

    Only degenerate values: their mean in parentheses, marked. No value at all: ``""``.
    """
    if not values:
        if degenerate:
            return f"({statistics.fmean(degenerate):.1f})† all {len(degenerate)} degenerate"
        return ""
    text = f"{statistics.fmean(values):.1f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.1f}"
    return text + (f" †{len(degenerate)}" if degenerate else "")
