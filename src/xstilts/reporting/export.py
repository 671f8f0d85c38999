"""``xstilts export --format xtreme``: predictions in the layout XTREME's ``evaluate.py`` reads.

XTREME's leaderboard layout (its README, "Leaderboard Submission", and ``evaluate.py``): one
folder per task (``udpos panx xnli pawsx xquad mlqa tydiqa bucc2018 tatoeba``), inside it
``test-{lang}.json`` for QA and ``test-{lang}.tsv`` otherwise. File formats, as its readers
parse them: classification = one label per line; tagging = one tag per line, a blank line
between sentences; QA = a JSON object ``{question id: answer text}``; BUCC =
``source_id<TAB>target_id`` per mined pair; Tatoeba = the index of the retrieved English
sentence per line. Labels and tags are written exactly as XTREME spells them
(:data:`XTREME_LABELS`): ``evaluate.py`` compares strings, so one spelling off (XNLI-MT's
``contradictory`` for XTREME's ``contradiction``) scores a perfect file at 66.7.

Every (condition, seed) becomes one submission folder ``<out>/<condition>/seed-<n>/``. Gold
files in the same formats go to ``<out>/labels/`` (QA in SQuAD JSON), so
``python evaluate.py --prediction_folder <out>/<condition>/seed-<n> --label_folder
<out>/labels`` scores them; :func:`rescore` re-reads the files the same way and scores them with
xstilts' official-equivalent metrics. ``manifest.json`` records which split each file holds:
the shared data's labelled sets are dev sets, so files named ``test-*`` then hold dev
predictions (fine for scoring, not for a leaderboard submission). A QA file whose source
repeats question ids (XTREME's TyDiQA train files) is scored under re-identified ids
``<id>#<position>``; the manifest lists that file's ``old id -> new ids`` mapping.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.metrics.xtreme_score import XTREME_TASKS
from xstilts.reporting.collect import ExperimentData
from xstilts.tasks.formats import format_of
from xstilts.tasks.formats.base import read_label, read_tag
from xstilts.tasks.formats.extractive_qa import REIDENTIFIED_WHY
from xstilts.tasks.registry import get_task

FOLDER = {"bucc": "bucc2018"}  # xstilts task name -> XTREME folder name, where they differ
_UPOS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
_PANX = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
# xstilts label name -> the string XTREME's label files and classifiers use. XNLI:
# processors/xnli.py get_labels() and utils_preprocess.py, which rewrites XNLI-MT's
# "contradictory" to "contradiction"; PAWS-X: processors/pawsx.py get_labels() ["0", "1"];
# UD-POS: the CoNLL-U UPOS column as utils_preprocess.py copies it; PAN-X: WikiANN's BIO tags.
XTREME_LABELS: dict[str, dict[str, str]] = {
    "xnli": {name: name for name in ("entailment", "neutral", "contradiction")},
    "pawsx": {"not_paraphrase": "0", "paraphrase": "1"},
    "udpos": {tag: tag for tag in _UPOS},
    "panx": {tag: tag for tag in _PANX},
}
# File layouts, gold files, re-scoring and manifest notes are the task type's
# (``prediction_file``, ``gold_file``, ``rescore``, ``export_note`` in xstilts.tasks.formats).
__all__ = [
    "REIDENTIFIED_WHY", "XTREME_LABELS", "export_xtreme", "folder_of", "read_label", "read_tag",
    "reidentified", "rescore", "xtreme_label",
]  # fmt: skip


def folder_of(task: str) -> str:
    """XTREME's folder (task) name for an xstilts task."""
    return FOLDER.get(task, task)


def _ext(task: str) -> str:
    return format_of(get_task(task)).export_suffix


def xtreme_label(task: str, name: Any) -> str:
    """XTREME's spelling of the label or tag ``name`` of ``task`` (others: ``str(name)``).

    Raises:
        DataError: for a label/tag XTREME's label set does not have (never written as is).
    """
    table = XTREME_LABELS.get(task)
    if table is None:
        return str(name)
    if str(name) not in table:
        raise DataError(
            f"{task} label {name!r} has no XTREME spelling (known: {sorted(table)})",
            hint="the task's labels changed: update XTREME_LABELS in reporting/export.py",
        )
    return table[str(name)]


def reidentified(task: str, rec: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest note for a QA record scored under re-identified ids (else ``None``)."""
    return format_of(get_task(task)).export_note(rec)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _pred_file(task: str, rec: dict[str, Any]) -> str:
    return format_of(get_task(task)).prediction_file(rec, lambda v: xtreme_label(task, v))


def _gold_file(task: str, rec: dict[str, Any]) -> str | None:
    return format_of(get_task(task)).gold_file(rec, lambda v: xtreme_label(task, v))


def _slug(option: str) -> str:
    return re.sub(r"[^A-Za-z0-9+._-]+", "_", option.replace("→", "-then-"))


def export_xtreme(data: ExperimentData, out: Path) -> dict[str, Any]:
    """Write every target run's predictions (and the gold) in XTREME's layout.

    Returns:
        The manifest (also written as ``manifest.json``).

    Raises:
        DataError: when no run has per-example predictions to export.
    """
    out = Path(out)
    manifest: dict[str, Any] = {"submissions": {}, "labels": "labels", "skipped": []}
    for run in data.runs:
        if run.target not in XTREME_TASKS:
            manifest["skipped"].append(f"{run.target}: not an XTREME task")
            continue
        if not run.details:
            manifest["skipped"].append(f"{run.option}/{run.target}/seed {run.seed}: no data")
            continue
        sub = f"{_slug(run.option)}/seed-{run.seed}"
        entry = manifest["submissions"].setdefault(
            sub, {"condition": run.option, "seed": run.seed, "files": {}}
        )
        spec = get_task(run.target)
        for lang, rec in run.details.items():
            name = f"{folder_of(run.target)}/test-{lang}.{_ext(run.target)}"
            _write(out / sub / name, _pred_file(run.target, rec))
            gold = _gold_file(run.target, rec)
            if gold is not None:
                _write(out / "labels" / name, gold)
            entry["files"][name] = {
                "task": run.target, "split": spec.eval_split, "stage_id": run.stage_id,
                "labelled": gold is not None,
            }  # fmt: skip
            note = reidentified(run.target, rec)
            if note is not None:
                entry["files"][name]["reidentified_ids"] = note
    if not manifest["submissions"]:
        raise DataError(
            "no run has per-example predictions to export",
            file=data.stages_dir,
            hint="re-run `xstilts run` (evaluation writes <stage>/examples/) or pass --stages-dir",
        )
    _write(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


# ------------------------------------------------------------------ re-reading (as evaluate.py)


def rescore(pred: Path, labels: Path, task: str, lang: str) -> float:
    """The headline score (percent) of one exported file against its gold file."""
    spec = get_task(task)
    return format_of(spec).rescore(spec, pred, labels, lang)
