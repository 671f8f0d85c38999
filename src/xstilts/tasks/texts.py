"""The texts of a task's examples: MLM text, tokenizer training data, vocabulary trimming.

Type-agnostic: :func:`example_texts` reads every string field of any example dataclass, so a
new task type needs nothing here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from xstilts.errors import DataError
from xstilts.tasks.data import available_languages, load_examples
from xstilts.tasks.examples import Example
from xstilts.tasks.registry import get_task

_NOT_TEXT = ("guid", "origin")


def example_texts(example: Example) -> list[str]:
    """Every text of an example, whatever its type (sentences, choices, joined word tokens)."""
    texts: list[str] = []
    for f in dataclasses.fields(example):
        value = getattr(example, f.name)
        if f.name in _NOT_TEXT or not value:
            continue
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            # Pre-tokenised words (tagging) form one sentence; other tuples are separate texts.
            texts.extend([" ".join(value)] if f.name == "tokens" else list(value))
    return texts


def task_texts(task_names: Sequence[str], data_dir: Path, max_lines: int) -> list[str]:
    """Texts of the first ``max_lines`` examples of each task's train split (deterministic).

    Used to train a tiny tokenizer and as MLM text. Tasks without a train split contribute
    their eval split in every language present.

    Raises:
        DataError: if no text at all is found.
    """
    texts: list[str] = []
    for name in task_names:
        spec = get_task(name)
        if "train" in spec.splits and spec.find_files(data_dir, "train", spec.train_language):
            parts = [("train", spec.train_language)]
        else:
            langs = available_languages(spec, data_dir, spec.eval_split)
            parts = [(spec.eval_split, lang) for lang in langs]
        for split, lang in parts:
            for ex in load_examples(spec, data_dir, split, lang, limit=max_lines):
                texts.extend(example_texts(ex))
    if not texts:
        raise DataError(f"no text found for tasks {list(task_names)}", file=data_dir)
    return texts


def task_corpus(
    task_names: Sequence[str], data_dir: Path
) -> tuple[list[str], list[tuple[str, ...]]]:
    """All text of every split and language of the given tasks, as strings and word lists.

    Raises:
        DataError: If a task has no file on disk at all.
    """
    texts: list[str] = []
    words: list[tuple[str, ...]] = []
    for name in task_names:
        spec = get_task(name)
        found = 0
        for split in spec.splits:
            for lang in available_languages(spec, data_dir, split):
                for ex in load_examples(spec, data_dir, split, lang):
                    found += 1
                    texts.extend(example_texts(ex))
                    tokens = getattr(ex, "tokens", None)
                    if tokens:
                        words.append(tuple(tokens))
        if not found:
            raise DataError(f"no data files found for task {name!r}", file=data_dir)
    return texts, words
