"""``xstilts tasks``: the task catalog against the files on disk, and one task up close."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from xstilts.errors import DataError
from xstilts.tasks.data import available_languages, load_examples, undeclared_files
from xstilts.tasks.registry import get_task, list_tasks
from xstilts.tasks.spec import TaskSpec

SHOWN_EXAMPLES = 3


def _split_summary(spec: TaskSpec, data_dir: Path, split: str) -> str:
    """``en: 8,999`` for one language, ``15 langs: 9,000`` for several, ``-`` when absent.

    Files of languages the task does not declare are named: they are never read or scored.
    """
    unused = undeclared_files(spec, data_dir, split)
    note = ""
    if unused:
        files = ", ".join(escape(p) for paths in unused.values() for p in paths)
        note = f" [yellow](not used, not a language of {spec.name}: {files})[/]"
    return _split_counts(spec, data_dir, split) + note


def _split_counts(spec: TaskSpec, data_dir: Path, split: str) -> str:
    langs = available_languages(spec, data_dir, split)
    if not langs:
        return f"{split}: [dim]absent[/]"
    try:
        total = sum(len(load_examples(spec, data_dir, split, lang)) for lang in langs)
    except DataError as exc:  # shown, not hidden: the listing still covers the other tasks
        return f"{split}: [red]unreadable ({exc.message})[/]"
    where = langs[0] if len(langs) == 1 else f"{len(langs)} langs"
    stand_in = any(
        found and found[0][0].fallback
        for found in (spec.find_files(data_dir, split, lang) for lang in langs)
    )
    return f"{split}: {where} {total:,}" + (" [yellow](stand-in)[/]" if stand_in else "")


def tasks_table(data_dir: Path) -> Table:
    """Every registered task with its type, languages and the splits found under ``data_dir``."""
    table = Table(title=f"tasks (data: {data_dir})")
    for col in ("task", "type", "target", "eval langs", "splits on disk (examples)"):
        table.add_column(col)
    for name in list_tasks():
        spec = get_task(name)
        splits = "; ".join(_split_summary(spec, data_dir, s) for s in spec.splits)
        table.add_row(
            name, spec.type.value, "yes" if spec.is_target else "", str(len(spec.eval_languages)),
            splits,
        )  # fmt: skip
    return table


def _spec_table(spec: TaskSpec) -> Table:
    table = Table(title=f"{spec.name} v{spec.version}: {spec.description}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for f in dataclasses.fields(spec):
        if f.name in ("name", "description", "splits"):
            continue
        value = getattr(spec, f.name)
        table.add_row(f.name, str(dict(value) if hasattr(value, "items") else value))
    for split, sources in spec.splits.items():
        patterns = ", ".join(s.pattern or "(per language)" for s in sources)
        table.add_row(f"split {split}", f"{patterns} [{len(spec.languages(split))} langs]")
    return table


def _sample(spec: TaskSpec, data_dir: Path) -> tuple[str, str, list[Any]]:
    """(split, language, examples): train in the train language, else the first eval language."""
    if "train" in spec.splits and spec.find_files(data_dir, "train", spec.train_language):
        split, lang = "train", spec.train_language
    else:
        langs = available_languages(spec, data_dir, spec.eval_split)
        if not langs:
            raise DataError(
                f"task {spec.name!r} has no files under the data dir", file=data_dir,
                hint="pass --data-dir",
            )  # fmt: skip
        split, lang = spec.eval_split, langs[0]
    return split, lang, load_examples(spec, data_dir, split, lang, limit=SHOWN_EXAMPLES)


def show_task(console: Console, name: str, data_dir: Path, tokenizer_name: str | None) -> None:
    """Print the spec, then three examples featurized and decoded back to text."""
    from xstilts.models.tokenizer import load_tokenizer, train_tokenizer
    from xstilts.settings import FeaturizeSettings, resolve
    from xstilts.tasks.formats import FeaturizeConfig, get_format
    from xstilts.tasks.texts import example_texts

    spec = get_task(name)
    console.print(_spec_table(spec))
    split, lang, examples = _sample(spec, data_dir)
    if tokenizer_name is not None:
        tokenizer = load_tokenizer(tokenizer_name)
    else:  # a tiny tokenizer trained on the shown examples: no download, and enough to decode
        tokenizer = train_tokenizer([t for ex in examples for t in example_texts(ex)], 500)
    # The task's own settings (built-in < task defaults), resolved as a stage resolves them.
    cfg = FeaturizeConfig(
        **resolve(FeaturizeSettings, task=spec.defaults, task_type=spec.type.value)
    )
    features = get_format(spec.type).featurize(examples, tokenizer, spec, cfg)
    console.print(f"[bold]{len(features)} features from {len(examples)} {split}/{lang} examples[/]")
    for i, feat in enumerate(features[:SHOWN_EXAMPLES]):
        labels = {
            k: v for k, v in feat.items() if k not in ("sequences",) and not k.startswith("_")
        }
        console.print(f"[cyan]feature {i}[/] {labels}")
        for seq in feat["sequences"]:
            # One sequence decodes to one str; transformers annotates decode `str | list[str]`.
            console.print("  " + tokenizer.decode(seq), markup=False)  # type: ignore[operator]
