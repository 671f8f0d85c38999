"""Honest per-language evidence for classification targets: what transferred, and how.

Per-language accuracies above chance in 14 languages are not 14 pieces of evidence when every
language repeats the English prediction (the issue-16 CPU study: 89–93 % agreement with English
in every language, one class almost never predicted, every negated hypothesis "contradiction").
For each classification target (from the per-example files the evaluator writes) this module
shows:

* **Agreement with English**: per language, the share of items whose prediction equals the
  English prediction on the same item in the same run. XNLI and PAWS-X evaluation files are
  row-aligned translations (``shared/data/README.md``); items pair by their row number, the
  last ``-`` field of the example id (``de-dev-de-17`` ↔ ``en-dev-en-17``).
* **Class prediction rates**: per condition, the share of English items predicted as each
  class, and the lowest rate of any class in any language. A classifier whose English
  predictions give some class < 5 % of items is flagged **near-degenerate**: unlike a
  *degenerate* run (one class, :mod:`xstilts.reporting.collect`) it stays in the means, but the
  reader is told.
* **Above chance**: per language, the exact one-sided binomial test of the accuracy against
  the share of the language's most frequent gold class (what always predicting it scores), over
  all the language's rows; the largest p over seeds is shown, so one lucky seed cannot carry it.
* **Shortcut baseline (NLI, English only)**: the hypothesis-negation rule (Gururangan et al.,
  2018): a hypothesis with a negation word → contradiction, else the majority of entailment /
  neutral among the non-negated MNLI training hypotheses (learned on train, never on the
  evaluation set). Scored on English XNLI beside the model, with the model's accuracy on the
  negated and the other items. English only: negation word lists for the other 14 languages
  are not part of this tool.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from scipy import stats

from xstilts.errors import XstiltsError
from xstilts.reporting.collect import ExperimentData, RunData
from xstilts.reporting.render import Grid
from xstilts.tasks.data import load_examples
from xstilts.tasks.examples import ClassificationExample, of_type
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskType

NEAR_DEGENERATE_SHARE = 0.05
NEGATION = frozenset(
    ["no", "not", "never", "nobody", "nothing", "none", "neither", "nor", "nowhere", "cannot",
     "n't", "without"]
)  # fmt: skip
_WORD = re.compile(r"[a-z]+(?=n't)|n't|[a-z]+")  # "don't" -> "do", "n't"
NLI_TARGETS = ("xnli",)


def item_key(guid: str) -> str:
    """The row an example id names (``de-dev-de-17`` -> ``17``): the key across languages."""
    return guid.rsplit("-", 1)[-1]


def has_negation(text: str) -> bool:
    """A negation word in ``text`` (English; ``don't`` counts through ``n't``)."""
    return any(w in NEGATION for w in _WORD.findall(text.lower().replace("’", "'")))


def classification_targets(data: ExperimentData) -> list[str]:
    """Targets of ``data`` that are classification tasks."""
    return [t for t in data.targets if get_task(t).type is TaskType.CLASSIFICATION]


def _preds(run: RunData, lang: str) -> dict[str, str]:
    rec = (run.details or {}).get(lang) or {}
    return {item_key(i): str(p) for i, p in zip(rec.get("ids") or [], rec.get("pred") or [],
                                                strict=False)}  # fmt: skip


def agreement(run: RunData, lang: str, ref: str = "en") -> float | None:
    """% of ``lang`` items predicted like the ``ref`` item of the same row (None: no pairs)."""
    mine, theirs = _preds(run, lang), _preds(run, ref)
    common = mine.keys() & theirs.keys()
    if not common:
        return None
    return 100.0 * sum(mine[k] == theirs[k] for k in common) / len(common)


def class_rates(run: RunData, lang: str, labels: Sequence[str]) -> dict[str, float]:
    """% of ``lang`` items predicted as each label (empty when no predictions)."""
    preds = list(_preds(run, lang).values())
    if not preds:
        return {}
    counts = Counter(preds)
    return {label: 100.0 * counts.get(label, 0) / len(preds) for label in labels}


def near_degenerate(run: RunData, labels: Sequence[str]) -> str | None:
    """Why ``run`` is near-degenerate (some class < 5 % of English predictions), else None."""
    rates = class_rates(run, "en", labels)
    low = {k: v for k, v in rates.items() if v < 100 * NEAR_DEGENERATE_SHARE}
    if not rates or not low:
        return None
    what = ", ".join(f"{k} {v:.1f}%" for k, v in low.items())
    return f"{run.option} → {run.target}, seed {run.seed}: English predictions {what}"


def _mean(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.fmean(got):.1f}" if got else ""


def agreement_grid(data: ExperimentData, target: str) -> Grid:
    """Rows = conditions, columns = languages: % agreement with English, mean over seeds."""
    langs = sorted({lg for r in data.runs if r.target == target for lg in (r.details or {})}
                   - {"en"})  # fmt: skip
    grid = Grid(f"{target}: agreement with the English prediction (%)", [*langs, "avg"],
                slug=f"agree-{target}")  # fmt: skip
    for option in data.options:
        runs = data.runs_of(option, target)
        row = {lg: _mean([agreement(r, lg) for r in runs]) for lg in langs}
        per_run = [_mean([agreement(r, lg) for lg in langs]) for r in runs]
        row["avg"] = _mean([float(x) for x in per_run if x])
        grid.rows[option] = row
    grid.notes = [
        "% of items whose prediction equals the English prediction on the same item (row-"
        "aligned translations), same run; mean over usable seeds. Near 100 %: the languages "
        "repeat the English decision and are not independent evidence of transfer."
    ]
    if not langs:
        grid.empty = "no per-example predictions outside English"
    return grid


def class_rate_grid(data: ExperimentData, target: str) -> Grid:
    """Per condition: English prediction rate of each class, and the lowest in any language."""
    labels = list(get_task(target).labels)
    cols = [*(f"en: {lab}" for lab in labels), "lowest class rate (language)"]
    grid = Grid(f"{target}: class prediction rates (%)", cols, slug=f"classes-{target}")
    gold_row: dict[str, str] = {}
    flags = []
    for option in data.options:
        runs = data.runs_of(option, target)
        row = {f"en: {lab}": _mean([class_rates(r, "en", labels).get(lab) for r in runs])
               for lab in labels}  # fmt: skip
        lowest: tuple[float, str, str] | None = None
        langs = sorted({lg for r in runs for lg in (r.details or {})})
        for lg in langs:
            for lab in labels:
                v = statistics.fmean([class_rates(r, lg, labels).get(lab, 0.0) for r in runs])
                if lowest is None or v < lowest[0]:
                    lowest = (v, lab, lg)
        if lowest is not None:
            row[cols[-1]] = f"{lowest[0]:.1f} ({lowest[1]}, {lowest[2]})"
        grid.rows[option] = row
        flags += [why for r in runs if (why := near_degenerate(r, labels))]
        for r in runs[:1]:
            gold = [str(g) for g in ((r.details or {}).get("en") or {}).get("gold") or []]
            if gold and not gold_row:
                counts = Counter(gold)
                gold_row = {f"en: {lab}": f"{100 * counts[lab] / len(gold):.1f}"
                            for lab in labels}  # fmt: skip
    if gold_row:
        grid.rows["gold (en)"] = gold_row
    grid.notes = ["Mean over usable seeds. A class predicted for < 5 % of English items marks "
                  "the run near-degenerate (kept in the means, flagged here)."]  # fmt: skip
    grid.notes += [f"⚠ near-degenerate: {why}" for why in flags]
    return grid


CHANCE_ALPHA = 0.01


def chance_p(run: RunData, lang: str) -> float | None:
    """One-sided exact binomial p of ``lang``'s accuracy against its majority-class share.

    Returns:
        ``P(X >= correct)`` for ``X ~ Binomial(n, majority share)``; ``None`` without
        per-example predictions and gold labels.
    """
    rec = (run.details or {}).get(lang) or {}
    preds, gold = rec.get("pred") or [], rec.get("gold") or []
    if not gold or len(preds) != len(gold):
        return None
    correct = sum(str(p) == str(g) for p, g in zip(preds, gold, strict=True))
    majority = max(Counter(str(g) for g in gold).values()) / len(gold)
    return float(stats.binomtest(correct, len(gold), majority, alternative="greater").pvalue)


def _p_text(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def chance_grid(data: ExperimentData, target: str) -> Grid:
    """Per condition and language: is the accuracy above the majority-class share? (p)."""
    langs = sorted({lg for r in data.runs if r.target == target for lg in (r.details or {})})
    grid = Grid(f"{target}: above chance? (exact binomial p, largest over seeds)",
                [*langs, f"p ≥ {CHANCE_ALPHA}"], slug=f"chance-{target}")  # fmt: skip
    for option in data.options:
        runs = data.runs_of(option, target)
        row: dict[str, str] = {}
        weak = []
        for lg in langs:
            ps = [p for r in runs if (p := chance_p(r, lg)) is not None]
            if ps:
                row[lg] = _p_text(max(ps))
                if max(ps) >= CHANCE_ALPHA:
                    weak.append(lg)
        row[f"p ≥ {CHANCE_ALPHA}"] = ", ".join(weak) if weak else "none"
        grid.rows[option] = row
    grid.notes = [
        "One-sided exact binomial test of each language's accuracy over all its rows against "
        "the share of its most frequent gold class (always predicting that class scores it); "
        f"per cell the largest p over seeds. Last column: languages not above chance at p < "
        f"{CHANCE_ALPHA}. Not adjusted for the number of cells; and the languages are not "
        "independent of English (agreement table)."
    ]
    return grid


def _data_dir(data: ExperimentData, target: str) -> Path | None:
    for run in data.runs:
        if run.target == target and run.evaluation and run.evaluation.get("data_dir"):
            return Path(run.evaluation["data_dir"])
    return Path(data.spec["data_dir"]) if data.spec.get("data_dir") else None


def negation_rule(data_dir: Path) -> tuple[str, dict[str, str]]:
    """The rule's fallback label (learned on MNLI train) and its English XNLI predictions.

    Returns:
        ``(fallback label, {row key: predicted label})``.
    """
    xnli, mnli = get_task("xnli"), get_task("mnli")
    names = list(xnli.labels)
    train = of_type(load_examples(mnli, data_dir, "train", "en"), ClassificationExample)
    plain = Counter(names[ex.label] for ex in train if not has_negation(ex.text_b or ""))
    fallback = max(("entailment", "neutral"), key=lambda lab: plain.get(lab, 0))
    test = of_type(load_examples(xnli, data_dir, xnli.eval_split, "en"), ClassificationExample)
    preds = {item_key(ex.guid): "contradiction" if has_negation(ex.text_b or "") else fallback
             for ex in test}  # fmt: skip
    return fallback, preds


def shortcut_grid(data: ExperimentData, target: str = "xnli") -> Grid:
    """English accuracy of the negation rule beside each condition's model."""
    cols = ["accuracy", "agrees with rule", "acc. negated hyp.", "acc. other hyp."]
    grid = Grid(f"{target}: shortcut baseline (negation rule, English)", cols,
                slug=f"shortcut-{target}")  # fmt: skip
    data_dir = _data_dir(data, target)
    try:
        if data_dir is None:
            raise XstiltsError("no data_dir recorded")
        fallback, rule = negation_rule(data_dir)
    except XstiltsError as exc:
        grid.empty = f"baseline not computed: the English data is not readable here ({exc})"
        return grid
    gold: dict[str, str] = {}
    for run in data.runs:
        rec = (run.details or {}).get("en") or {}
        if run.target == target and rec.get("gold"):
            gold = {item_key(i): str(g) for i, g in zip(rec["ids"], rec["gold"], strict=True)}
            break
    keys = [k for k in gold if k in rule]
    if not keys:
        grid.empty = "no English per-example predictions to compare with"
        return grid
    negated = [k for k in keys if rule[k] == "contradiction"]
    other = [k for k in keys if rule[k] != "contradiction"]

    def acc(pred: dict[str, str], subset: Sequence[str]) -> float | None:
        subset = [k for k in subset if k in pred]
        return 100.0 * sum(pred[k] == gold[k] for k in subset) / len(subset) if subset else None

    grid.rows["negation rule"] = {"accuracy": _mean([acc(rule, keys)]),
                                  "acc. negated hyp.": _mean([acc(rule, negated)]),
                                  "acc. other hyp.": _mean([acc(rule, other)])}  # fmt: skip
    for option in data.options:
        runs = data.runs_of(option, target)
        preds = [_preds(r, "en") for r in runs]
        agree = [100.0 * sum(p.get(k) == rule[k] for k in keys) / len(keys) for p in preds]
        grid.rows[option] = {
            "accuracy": _mean([acc(p, keys) for p in preds]),
            "agrees with rule": _mean(agree),
            "acc. negated hyp.": _mean([acc(p, negated) for p in preds]),
            "acc. other hyp.": _mean([acc(p, other) for p in preds]),
        }
    grid.notes = [
        f"Rule: a negation word ({', '.join(sorted(NEGATION))}) in the hypothesis → "
        f"contradiction, else {fallback} (the majority of entailment/neutral among non-negated "
        f"MNLI training hypotheses). {len(negated)} of {len(keys)} English items have a negated "
        "hypothesis. English only (no word lists for the other languages). Models: mean over "
        "usable seeds."
    ]
    return grid


def transfer_grids(data: ExperimentData) -> list[Grid]:
    """Agreement, class rates and (NLI) the shortcut baseline for every classification target."""
    grids: list[Grid] = []
    for target in classification_targets(data):
        if not any(r.details for r in data.runs if r.target == target):
            continue
        grids += [chance_grid(data, target), agreement_grid(data, target)]
        grids.append(class_rate_grid(data, target))
        if target in NLI_TARGETS:
            grids.append(shortcut_grid(data, target))
    return grids
