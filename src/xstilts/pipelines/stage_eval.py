"""Evaluating a finished stage: which cached scores are still valid, and scoring the rest.

Every evaluation of a task on a stage is cached as ``<stage>/eval/<task>-<key>.json`` with the
*identity* it was computed under (:func:`xstilts.training.evaluate.eval_identity`: task version,
languages, every evaluation file's size and sha256, row cap, featurization, precision) and its
key ``= hash(identity)``. A cache file is used only when it holds exactly today's identity, so a
fixed label, added rows, a new language file or another ``data_dir`` with other files re-scores
the stage (never retrains it) and the log says what changed. The per-example file
(``examples/``) and the predictions (``predictions/``) are written first, the cache file last:
its presence means the evaluation is complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from xstilts.errors import CheckpointError, ConfigError, DataError
from xstilts.fileio import write_json
from xstilts.models import model_io
from xstilts.models.model import XstiltsModel
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.settings import FeaturizeSettings, resolve
from xstilts.tasks import get_task
from xstilts.tasks.data import available_languages, data_files, load_examples, undeclared_files
from xstilts.tasks.formats import FeaturizeConfig, format_of
from xstilts.tasks.formats.retrieval import subsample_mining
from xstilts.tasks.spec import TaskSpec
from xstilts.training.evaluate import (
    EvalRecord,
    EvalResults,
    EvalSettings,
    EvalSummary,
    eval_identity,
    eval_key,
    evaluate_task,
)

logger = logging.getLogger(__name__)
RETRIEVAL_HEAD = "_retrieval"
FIRST_EVALUATION = "first evaluation of this task on this stage"
_FEATURIZE_KEYS = {f.name for f in dataclasses.fields(FeaturizeConfig)}
# What a subsampled mining evaluation records per language (next to max_sentences).
SENTENCE_COUNTS = ("source", "target", "gold", "source_total", "target_total")
ModelLoader = Callable[[], tuple[XstiltsModel, PreTrainedTokenizerBase]]


def evaluate_tasks(
    spec: StageSpec,
    stage_dir: Path,
    data_dir: Path,
    tasks: Sequence[str],
    settings: EvalSettings,
    device: torch.device,
    load_model: ModelLoader,
) -> EvalResults:
    """Evaluate a finished stage on ``tasks`` in every language present (cached per identity).

    Classification/QA/tagging/multiple-choice tasks need their trained head in the stage;
    retrieval tasks pool the encoder's hidden states with a temporary parameter-free head.
    A cached evaluation is used only when its identity (:func:`eval_identity`: task version,
    languages, the exact files and their hashes, row cap, featurization, precision) equals
    today's: changed data re-scores the stage without retraining it, and says so in the log.

    Returns:
        All records (language x metric) of all tasks, with one :class:`EvalSummary` per task.

    Args:
        spec: The stage's spec (label and id in messages).
        stage_dir: The complete stage directory (its ``heads.json`` is read here).
        data_dir: Data root.
        tasks: Tasks to evaluate.
        settings: Evaluation settings.
        device: Where the model runs (``auto`` precision resolves against it).
        load_model: Loads the stage's model and tokenizer; called only if something is not
            cached.

    Raises:
        CheckpointError: the stage lacks the head a task needs.
        ConfigError: an empty language list.
        DataError: a task has no evaluation data.
    """
    where = f"{spec.label} [{spec.stage_id[:8]}]"
    loaded: tuple[XstiltsModel, PreTrainedTokenizerBase] | None = None
    heads_info = model_io.load_heads_info(stage_dir)
    results = EvalResults()
    for name in tasks:
        task = get_task(name)
        langs = _eval_languages(task, data_dir, settings)
        fcfg = _eval_featurize(spec, heads_info, task, settings)
        files = data_files(task, data_dir, [task.eval_split], langs)
        identity = eval_identity(task, settings, fcfg, langs, files, device)
        key = eval_key(identity)
        not_scored = _not_scored(task, data_dir, langs)
        summary = EvalSummary(name, task.version, key, "cached", files=files,
                              data_dir=str(data_dir), not_scored=not_scored)  # fmt: skip
        for item, why in summary.not_scored.items():
            if "/" in item:  # a file on disk, not a language left out on purpose
                logger.warning("%s: %s on disk is not scored: %s", name, item, why)
        cache = stage_dir / "eval" / f"{name}-{key}.json"
        per_example = stage_dir / "examples" / cache.name  # ids, predictions, gold, stats
        entry = _read_cache(cache, identity) if per_example.is_file() else None
        if entry is None:
            summary.status = "evaluated"
            summary.reason = _why_evaluated(stage_dir, name, key, identity, str(data_dir))
            log = logger.info if summary.reason == FIRST_EVALUATION else logger.warning
            log("%s on stage %s: %s", name, where, _evaluating_message(summary.reason))
            if loaded is None:  # only when something is not cached
                model, tokenizer = load_model()
                loaded = (model.to(device), tokenizer)
            details: dict[str, dict[str, Any]] = {}
            records, predictions, counts = _evaluate_one(
                *loaded, task, data_dir, langs, fcfg, settings, device, details
            )
            write_json(per_example, details)
            if predictions:  # retrieval has none worth keeping (embeddings are huge)
                write_json(stage_dir / "predictions" / cache.name, predictions)
            entry = {
                "identity": identity, "records": [r.to_dict() for r in records],
                "languages": counts,
                "unlabelled": sorted({*langs} - {r.language for r in records}),
                "data_dir": str(data_dir), "reason": summary.reason,
            }  # fmt: skip
            write_json(cache, entry)  # last: its presence means the evaluation is complete
        else:
            records = entry["records"]
        summary.languages = {lang: int(n) for lang, n in entry["languages"].items()}
        summary.unlabelled = list(entry["unlabelled"])
        results.extend(records)
        results.summaries.append(summary)
    return results


def _evaluating_message(reason: str) -> str:
    if reason == FIRST_EVALUATION:
        return "evaluating"
    return f"re-evaluating (the trained stage is reused): {reason}"


def _read_cache(cache: Path, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached evaluation when it exists, parses and holds exactly ``identity``; else None."""
    if not cache.is_file():
        return None
    try:
        entry = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("%s: unreadable cached evaluation (%s): evaluating again", cache, exc)
        return None
    # JSON round trip: tuples in ``identity`` compare as the lists the file holds.
    wanted = json.loads(json.dumps(identity))
    shapes = {"records": list, "languages": dict, "unlabelled": list}
    complete = isinstance(entry, dict) and all(
        isinstance(entry.get(k), t) for k, t in shapes.items()
    )
    if complete and entry.get("identity") == wanted:
        try:
            entry["records"] = [EvalRecord.from_dict(r) for r in entry["records"]]
            return entry
        except (TypeError, ValueError):
            pass
    logger.warning("%s does not hold the evaluation its name claims: evaluating again", cache)
    return None


def _why_evaluated(
    stage_dir: Path, task: str, key: str, identity: Mapping[str, Any], data_dir: str
) -> str:
    """What differs from the newest earlier evaluation of ``task`` on this stage (or first)."""
    earlier = sorted(
        (p for p in (stage_dir / "eval").glob(f"{task}-*.json") if p.stem != f"{task}-{key}"),
        key=lambda p: p.stat().st_mtime,
    )
    if not earlier:
        return FIRST_EVALUATION
    try:
        entry = json.loads(earlier[-1].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        entry = None
    old = entry.get("identity") if isinstance(entry, dict) else None
    if not isinstance(old, dict):
        return "the cached scores carry no data fingerprint (written by an older xstilts)"
    return describe_change(old, json.loads(json.dumps(identity)), entry.get("data_dir"), data_dir)


def describe_change(
    old: Mapping[str, Any], new: Mapping[str, Any], old_dir: str | None, new_dir: str
) -> str:
    """One line naming what differs between two evaluation identities (files first)."""
    parts: list[str] = []
    old_files, new_files = dict(old.get("files") or {}), dict(new.get("files") or {})
    for verb, names in (
        ("changed", [f for f in new_files if f in old_files and old_files[f] != new_files[f]]),
        ("added", [f for f in new_files if f not in old_files]),
        ("removed", [f for f in old_files if f not in new_files]),
    ):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{verb} {shown}")
    if parts:
        parts = ["evaluation data " + "; ".join(parts)]
    if old_dir and old_dir != new_dir:
        parts.append(f"data_dir {old_dir} -> {new_dir}")
    for name in sorted((set(old) | set(new)) - {"files"}):
        was, now = old.get(name), new.get(name)
        if isinstance(was, dict) and isinstance(now, dict):  # featurize: only what moved
            parts += [f"{name}.{k} {was.get(k)} -> {now.get(k)}"
                      for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]  # fmt: skip
        elif was != now:
            parts.append(f"{name} {was} -> {now}")
    return "; ".join(parts) or "the cached evaluation is incomplete"


def _eval_featurize(
    spec: StageSpec, heads_info: Mapping[str, Any], task: TaskSpec, settings: EvalSettings
) -> FeaturizeConfig:
    """The trained head's featurization, or (retrieval) ``settings.featurize`` as resolved by
    the experiment (else, for settings built by hand, the task's own resolved defaults)."""
    if not format_of(task).trainable:  # no trained head brings its featurization
        values = settings.featurize.get(task.name) or resolve(
            FeaturizeSettings, task=task.defaults, task_type=task.type.value
        )
        values = {k: v for k, v in values.items() if k in _FEATURIZE_KEYS}
        values.update(pooling=settings.retrieval_pooling, layer=settings.retrieval_layer)
        return FeaturizeConfig(**values)
    if task.head not in heads_info:
        raise CheckpointError(
            f"stage has no {task.head!r} head to evaluate task {task.name!r} "
            f"(heads: {sorted(heads_info) or 'none'})",
            file=spec.stage_id,
        )
    return FeaturizeConfig(**heads_info[task.head].get("featurize", {}))


def _evaluate_one(
    model: XstiltsModel,
    tokenizer: PreTrainedTokenizerBase,
    task: TaskSpec,
    data_dir: Path,
    langs: Sequence[str],
    fcfg: FeaturizeConfig,
    settings: EvalSettings,
    device: torch.device,
    details: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[EvalRecord], dict[str, list[Any]], dict[str, int]]:
    """Records, per-language predictions and example counts (and ``details``) of one task."""
    examples = {
        lang: load_examples(task, data_dir, task.eval_split, lang, limit=settings.max_eval_examples)
        for lang in langs
    }
    predictions: dict[str, list[Any]] = {}
    fmt = format_of(task)
    sentences = _subsample(task, examples, settings.retrieval_max_sentences)
    # As EvalRecord.n_examples: retrieval counts its gold pairs (one corpus per language).
    counts = {lang: fmt.scored_count(exs) for lang, exs in examples.items()}
    if not fmt.trainable:  # retrieval: a parameter-free head added for this evaluation only
        layer = fcfg.layer
        if layer is None:
            layer = model.num_layers // 2  # XTREME's choice, as in XstiltsModel.head_layer
        fcfg = dataclasses.replace(fcfg, layer=layer)
        keep = [h for h in model.heads if h != RETRIEVAL_HEAD]
        model.add_head(RETRIEVAL_HEAD, fmt.make_head(task, model.hidden_size, fcfg))
        try:
            recs = evaluate_task(model, task, examples, tokenizer, fcfg, settings, device,
                                 head=RETRIEVAL_HEAD, details_out=details)  # fmt: skip
        finally:
            model.drop_heads(keep)
        for rec in recs:  # what was mined: in the scores' record and the per-example file
            if rec.language in sentences:
                rec.extra = {**rec.extra, "sentences": sentences[rec.language]}
        if details is not None:
            for lang, info in sentences.items():
                details.setdefault(lang, {})["sentences"] = info
        return recs, predictions, counts
    recs = evaluate_task(model, task, examples, tokenizer, fcfg, settings, device,
                         predictions_out=predictions, details_out=details)  # fmt: skip
    return recs, predictions, counts


def _subsample(
    task: TaskSpec, examples: dict[str, list[Any]], cap: int | None
) -> dict[str, dict[str, Any]]:
    """Cut each mining corpus to ``cap`` sentences per side, in place; language -> counts.

    ``evaluation.retrieval.max_sentences``: every gold pair's sentences are kept, then the
    first others in file order. Tatoeba (search) is left alone: ``max_eval_examples`` caps it.
    """
    if cap is None or task.retrieval != "mining":
        return {}
    out: dict[str, dict[str, Any]] = {}
    for lang, corpora in examples.items():
        cut = [subsample_mining(corpus, cap) for corpus in corpora]
        examples[lang] = [corpus for corpus, _ in cut]
        infos = [info for _, info in cut]
        # One corpus per language in BUCC; several (never seen) add up.
        info: dict[str, Any] = {k: sum(i[k] for i in infos) for k in SENTENCE_COUNTS}
        info.update(max_sentences=cap, gold_over_cap=any(i["gold_over_cap"] for i in infos))
        out[lang] = info
        if info["gold_over_cap"]:
            logger.warning(
                "%s %s: the gold pairs alone need more than evaluation.retrieval.max_sentences="
                "%d sentences per side: all %d gold pairs kept (%d x %d sentences)",
                task.name, lang, cap, info["gold"], info["source"], info["target"],
            )  # fmt: skip
    return out


def _eval_languages(task: TaskSpec, data_dir: Path, settings: EvalSettings) -> list[str]:
    """Languages present on disk, restricted to the requested ones (missing ones are an error)."""
    present = available_languages(task, data_dir, task.eval_split)
    wanted = settings.languages_for(task.name)
    if wanted is not None and not wanted:
        raise ConfigError(
            f"task {task.name!r}: an empty language list scores nothing",
            key=f"evaluation.languages.{task.name}",
            hint="list languages, or null for every language present",
        )
    if not present:
        raise DataError(
            f"task {task.name!r}: no {task.eval_split} file in any language", file=data_dir,
            hint=next((s.download_hint for s in task.splits[task.eval_split]), None),
        )  # fmt: skip
    if wanted is None:
        return list(present)
    missing = [lang for lang in wanted if lang not in present]
    if missing:
        raise DataError(
            f"task {task.name!r}: no {task.eval_split} data for languages {missing} "
            f"(present: {present})",
            file=data_dir,
        )
    return [lang for lang in present if lang in wanted]


def _not_scored(task: TaskSpec, data_dir: Path, langs: Sequence[str]) -> dict[str, str]:
    """Evaluation files or languages on disk that this evaluation leaves out, and why."""
    out = {}
    for lang, paths in undeclared_files(task, data_dir, task.eval_split).items():
        for path in paths:
            out[path] = f"{lang!r} is not a language of {task.name} v{task.version}"
    for lang in available_languages(task, data_dir, task.eval_split):
        if lang not in langs:
            out[lang] = f"not in evaluation.languages.{task.name}"
    return out
