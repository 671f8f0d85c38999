"""``encoder.trim_vocab: true``: a base encoder trimmed to the experiment's data, checked.

Why: XLM-R's 250,002-row word table is most of a small encoder (96 M of e5-small's 118 M
weights) and, for XLM-R Large on a GPU, nearly half of an AdamW step's memory traffic (weights,
gradients and two moments of every row, each step). An experiment reads a few tens of
thousands of pieces; the other rows are never looked up. Trimming them costs no accuracy:
for the texts the experiment reads, the Unigram segmentation (and so every input id, after
renumbering, and every output) is unchanged (:mod:`xstilts.models.trim_vocab`), and the base
stage proves it for each text before it is published.

What is checked, and where:

1. Materialisation (:func:`trim_base`): the texts are those of every split and every language
   on disk of every task the experiment reads (intermediate tasks, targets including BUCC and
   Tatoeba, MLM text), read by the same task readers training and evaluation use
   (:func:`xstilts.tasks.texts.task_corpus`), as strings and, for tagging, as word lists. The
   kept pieces are the ones they tokenise to, plus every special and added token. Every text
   is then tokenised again with the trimmed tokenizer and its ids must equal the original ids
   mapped through the renumbering, else a :class:`DataError` and no stage.
2. Identity (:func:`xstilts.pipelines.plan.base_fingerprint`): the base stage id hashes every
   file trimmed to, so new or changed data gives a new base stage. This replaces a per-text
   ``<unk>`` check at featurization (the option the design allowed): it is implied.
3. Use (:func:`check_reads`): a cached trimmed stage trained on or evaluated against other files
   (another ``data_dir``, a file edited after planning) would tokenise text the vocabulary was
   not trimmed to. Every file such a use reads must be one recorded in the base stage's
   ``trim.json`` with the same size and sha256, else a :class:`DataError` naming the file.
   A file-level check: cheap (hashes are cached per process), and stricter than needed (an
   edit whose pieces are all kept is refused too).

Not covered: text built at featurization by cutting inside a word. Only extractive QA does that
(questions longer than ``max_query_length`` are cut at a piece boundary); a cut word may
segment differently when its best full-vocabulary segmentation uses a piece no whole word did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from xstilts.errors import CheckpointError, ConfigError, DataError
from xstilts.models.model import XstiltsModel
from xstilts.models.trim_vocab import kept_ids, trim_embeddings, trim_tokenizer, used_piece_ids
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.tasks import get_task
from xstilts.tasks.data import data_files
from xstilts.tasks.texts import task_corpus
from xstilts.training.movement import base_stage_dir

TRIM_RECORD = "trim.json"
KEY = "encoder.trim_vocab"
_BATCH = 1000  # texts per tokenizer call while checking
# (task, splits, languages or None for every language present): files a use of a stage reads.
Reads = Iterable[tuple[str, Sequence[str], Sequence[str] | None]]


def is_trimmed(spec: StageSpec) -> bool:
    """True when the stage's encoder is (or descends from) a trimmed base."""
    return bool(spec.encoder.get("trim_vocab"))


def trim_base(
    spec: StageSpec, model: XstiltsModel, tokenizer: PreTrainedTokenizerBase, data_dir: Path
) -> tuple[PreTrainedTokenizerFast, dict[str, Any]]:
    """Trim ``model`` (in place) and ``tokenizer`` to the data of ``spec.train["trim_to"]``.

    Args:
        spec: The base stage (its ``train["trim_to"]`` lists the tasks, set by the planner).
        model: The pretrained encoder, full vocabulary.
        tokenizer: Its fast Unigram tokenizer.
        data_dir: Data root.

    Returns:
        ``(trimmed tokenizer, record)``; the record (``trim.json``) holds the sizes, the kept
        ids and their sha256, and the size:sha256 of every file read.

    Raises:
        ConfigError: naming ``encoder.trim_vocab`` for a tokenizer that cannot be trimmed.
        DataError: a task without data, or a text the trimmed tokenizer segments differently.
    """
    tasks = list(spec.train.get("trim_to") or [])
    if not tasks or not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ConfigError("needs a fast tokenizer and the experiment's tasks", key=KEY)
    texts, words = task_corpus(tasks, data_dir)
    try:
        keep = kept_ids(tokenizer, used_piece_ids(tokenizer, texts, words))
        small = trim_tokenizer(tokenizer, keep)
    except DataError as exc:  # not Unigram: refused at plan time for every known case
        raise ConfigError(exc.message, key=KEY, hint="remove trim_vocab for this encoder") from None
    _check_same_ids(tokenizer, small, keep, texts, words)
    sizes = trim_embeddings(model.encoder, keep)
    files: dict[str, str] = {}
    for name in tasks:
        task = get_task(name)
        files.update(data_files(task, data_dir, list(task.splits)))
    record = {
        "tasks": tasks, **sizes,
        "kept_ids_sha256": hashlib.sha256(json.dumps(keep).encode()).hexdigest(),
        "texts": len(texts), "word_lists": len(words), "kept_ids": keep, "files": files,
    }  # fmt: skip
    return small, record


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics.json`` records of a trim (no id or file lists)."""
    return {k: v for k, v in record.items() if k not in ("kept_ids", "files")}


def _check_same_ids(
    full: PreTrainedTokenizerBase,
    small: PreTrainedTokenizerBase,
    keep: Sequence[int],
    texts: Sequence[str],
    words: Sequence[Sequence[str]],
) -> None:
    """Every text's ids under ``small`` equal its ids under ``full``, renumbered (module doc)."""
    new_id = {old: new for new, old in enumerate(keep)}
    for items, split in ((texts, False), (words, True)):
        for start in range(0, len(items), _BATCH):
            batch: list[Any] = [list(x) if split else x for x in items[start : start + _BATCH]]
            kw = {"add_special_tokens": False, "is_split_into_words": split}
            before, after = full(batch, **kw)["input_ids"], small(batch, **kw)["input_ids"]
            for item, old, new in zip(batch, before, after, strict=True):
                if [new_id[i] for i in old] != new:
                    raise DataError(
                        f"the trimmed vocabulary segments {str(item)[:80]!r} differently from "
                        "the full one", hint="a tokenizer whose segmentation is not Unigram's "
                        "best path cannot be trimmed: remove encoder.trim_vocab",
                    )  # fmt: skip


def train_reads(spec: StageSpec) -> list[tuple[str, list[str], list[str] | None]]:
    """Files a training stage reads: each task's train and dev split, and MLM text."""
    reads: list[tuple[str, list[str], list[str] | None]] = []
    for name in spec.tasks:
        task = get_task(name)
        reads.append((name, ["train", task.dev_split], [task.train_language]))
    for name in (spec.mlm or {}).get("texts_from") or []:
        reads.append((name, list(get_task(name).splits), None))
    return reads


def check_reads(stage_dir: Path, data_dir: Path, reads: Reads) -> None:
    """Refuse files a trimmed stage (or its descendant) was not trimmed to (module doc, 3).

    Args:
        stage_dir: The stage whose encoder is used (a parent, or the stage evaluated).
        data_dir: Data root of this use.
        reads: ``(task, splits, languages)`` read by the use (``None``: every language).

    Raises:
        CheckpointError: the chain's base stage has no readable ``trim.json``.
        DataError: naming the first file that is new or changed since the trim.
    """
    base = base_stage_dir(Path(stage_dir))
    path = base / TRIM_RECORD
    try:
        known: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"trimmed base stage without its record: {exc}", file=path) from None
    for task, splits, langs in reads:
        for rel, stamp in data_files(get_task(task), data_dir, splits, langs).items():
            if known.get(rel) != stamp:
                what = "is new" if rel not in known else "changed"
                raise DataError(
                    f"{what} since the vocabulary of base stage {base.name} was trimmed to the "
                    "data: its text may tokenise to <unk>", file=Path(data_dir) / rel,
                    hint="plan and run again: the base stage id covers the data's hashes, so a "
                    "new trimmed base stage is built for this data",
                )  # fmt: skip
