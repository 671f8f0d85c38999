"""Check, before any training, every file and folder an experiment will touch.

Three passes, each raising ONE error that names the YAML key that needs the file:

1. folders: ``data_dir`` is a directory, ``output_dir``/``cache_dir`` are (or can become)
   directories, a local ``encoder.name`` exists;
2. presence: every split a stage reads has a file (expected path and download hint otherwise);
3. contents: every file every stage will read (train and dev of each trained task, the
   evaluation split of each target in every evaluated language, the tokenizer and MLM texts) is
   read with the real readers, so a bad row in a dev file is reported now, not after hours of
   training. Reads are remembered per (file, size, mtime, inode) within the process, so planning
   twice, or planning then running, reads each unchanged file once here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from xstilts.errors import ConfigError, DataError
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.tasks.data import load_examples
from xstilts.tasks.formats import format_of
from xstilts.tasks.readers import companion_files
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec

# (task, version, split, lang, file stamps) of reads that passed; only successes are kept, so a
# stale entry can skip a re-check of an unchanged file but never hide an error.
_CHECKED: set[tuple[object, ...]] = set()
_CHECKED_LOCK = threading.Lock()
# Readers warn about skipped records, unlabelled QAs and stand-in files when a stage loads the
# data; the check reads the same files and stays quiet so each warning is printed once, then.
_QUIET = ("xstilts.tasks.readers", "xstilts.tasks.data")


def _missing(spec: TaskSpec, data_dir: Path, split: str, lang: str, key: str) -> ConfigError:
    """The error for an absent split: expected path(s) and the download hint."""
    sources = [s for s in spec.splits[split] if lang in s.languages]
    paths = [data_dir / s.pattern_for(lang) for s in sources]
    expected = ", ".join(map(str, paths)) or "(none declared)"
    hints = "; ".join(dict.fromkeys(s.download_hint for s in sources if s.download_hint))
    return ConfigError(
        f"task {spec.name!r} needs its {split!r} data ({lang}) but no file exists; "
        f"expected {expected}",
        key=key,
        hint=hints or None,
    )


def _check_links(spec: TaskSpec, data_dir: Path, split: str, langs: list[str], key: str) -> None:
    """A data file that is a dangling symlink or a loop is an error, not an absent language.

    ``Path.exists()`` is False for both, so the language would otherwise be silently skipped.
    """
    for source in spec.splits.get(split, ()):
        for lang in (lang for lang in langs if lang in source.languages):
            path = data_dir / source.pattern_for(lang)
            if not any(ch in str(path) for ch in "*?[") and path.is_symlink() and not path.exists():
                raise ConfigError(
                    f"task {spec.name!r} reads {path}, a symlink that does not resolve "
                    "(a loop or a missing target)",
                    key=key,
                    hint="fix or remove the link",
                )


def _require_training_data(name: str, data_dir: Path, key: str) -> None:
    """Train split (and the dev split used for model selection, when declared) must exist."""
    spec = get_task(name)
    for split in dict.fromkeys(("train", spec.dev_split)):
        _check_links(spec, data_dir, split, [spec.train_language], key)
        if split in spec.splits and not spec.find_files(data_dir, split, spec.train_language):
            raise _missing(spec, data_dir, split, spec.train_language, key)


def _present_eval_languages(spec: TaskSpec, data_dir: Path) -> list[str]:
    split = spec.eval_split
    return [lang for lang in spec.languages(split) if spec.find_files(data_dir, split, lang)]


def _require_eval_data(exp: ExperimentSpec, name: str, key: str) -> None:
    """At least one language of the eval split, and every language explicitly requested."""
    spec = get_task(name)
    wanted = exp.evaluation["languages"].get(name)
    declared = list(spec.languages(spec.eval_split))
    _check_links(spec, exp.data_dir, spec.eval_split, wanted or declared, key)
    present = _present_eval_languages(spec, exp.data_dir)
    if not present:
        raise _missing(spec, exp.data_dir, spec.eval_split, spec.languages(spec.eval_split)[0], key)
    for i, lang in enumerate(wanted or []):
        if lang not in present:
            raise _missing(
                spec, exp.data_dir, spec.eval_split, lang, f"evaluation.languages.{name}.{i}"
            )


def _text_parts(spec: TaskSpec, data_dir: Path) -> list[tuple[str, str]]:
    """(split, lang) read for tokenizer/MLM text: train, else the eval split in every language.

    The same rule as :func:`xstilts.tasks.texts.task_texts`.
    """
    if "train" in spec.splits and spec.find_files(data_dir, "train", spec.train_language):
        return [("train", spec.train_language)]
    return [(spec.eval_split, lang) for lang in _present_eval_languages(spec, data_dir)]


def _require_text(name: str, data_dir: Path, key: str) -> None:
    """Tokenizer/MLM text comes from the train split, else from the eval split."""
    spec = get_task(name)
    if not _text_parts(spec, data_dir):
        split = "train" if "train" in spec.splits else spec.eval_split
        raise _missing(spec, data_dir, split, spec.train_language, key)


def _check_output_dir(path: Path, key: str) -> None:
    """``path`` is a directory, or its first existing ancestor is one (so it can be created)."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return
        if folder.exists() or folder.is_symlink():
            what = "a file" if folder.is_file() else "not a directory"
            raise ConfigError(
                f"{folder} is {what}, so {path} cannot be an output folder",
                key=key,
                hint="move the file away or choose another output_dir",
            )


def _check_folders(exp: ExperimentSpec) -> None:
    data = exp.data_dir
    if not data.is_dir():
        what = "is a file, not a directory" if data.exists() else "does not exist"
        raise ConfigError(
            f"data directory {data} {what}",
            key="data_dir",
            hint="set data_dir in the experiment (relative to the YAML file) or XSTILTS_DATA_DIR",
        )
    _check_output_dir(exp.output_dir, "output_dir")
    if exp.cache_dir != exp.output_dir / "stages":
        _check_output_dir(exp.cache_dir, "cache_dir")
    name = str(exp.encoder.get("name", ""))
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
        raise ConfigError(
            f"local encoder directory {name} does not exist",
            key="encoder.name",
            hint="give a model directory (config.json and weights) or a hub id",
        )


def _reads(exp: ExperimentSpec) -> Iterator[tuple[str, str, str, str]]:
    """``(task, split, lang, yaml key)`` of every split any stage of ``exp`` reads."""
    data = exp.data_dir
    for i, option in enumerate(exp.options):
        for j, step in enumerate(option.steps):
            key = f"intermediate.{i}.{j}" if len(option.steps) > 1 else f"intermediate.{i}"
            for task in step.tasks:
                spec = get_task(task)
                for split in dict.fromkeys(("train", spec.dev_split)):
                    if split in spec.splits:
                        yield task, split, spec.train_language, key
    for k, target in enumerate(exp.targets):
        spec = get_task(target)
        if format_of(spec).trainable:
            for split in dict.fromkeys(("train", spec.dev_split)):
                if split in spec.splits:
                    yield target, split, spec.train_language, f"targets.{k}"
        wanted = exp.evaluation["languages"].get(target)
        for lang in _present_eval_languages(spec, data):
            if wanted is None or lang in wanted:
                yield target, spec.eval_split, lang, f"targets.{k}"
    texts = list(exp.encoder["tokenizer"]["train_on"]) if "tiny" in exp.encoder else []
    keys = [f"encoder.tokenizer.train_on.{i}" for i in range(len(texts))]
    texts += list(exp.mlm.get("texts_from", []))
    keys += [f"mlm.texts_from.{i}" for i in range(len(exp.mlm.get("texts_from", [])))]
    for name, key in zip(texts, keys, strict=True):
        for split, lang in _text_parts(get_task(name), data):
            yield name, split, lang, key


def _stamp(spec: TaskSpec, data_dir: Path, split: str, lang: str) -> tuple[object, ...] | None:
    """What identifies the files of one split (None when one cannot be stat'ed)."""
    stamps: list[tuple[object, ...]] = []
    try:
        for source, path in spec.find_files(data_dir, split, lang):
            for p in (path, *companion_files(source.reader, path)):
                st = p.stat()
                stamps.append((str(p), st.st_size, st.st_mtime_ns, st.st_ino))
    except OSError:
        return None
    return (spec.name, spec.version, split, lang, tuple(stamps))


@contextlib.contextmanager
def _quiet_readers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def read_every_file(exp: ExperimentSpec) -> int:
    """Read every file any stage of ``exp`` will read, with the readers the stages use.

    Returns:
        How many (task, split, language) reads were done (not answered from the cache).

    Raises:
        DataError: the reader's error (file, line, problem) with the YAML key that needs it.
    """
    done: set[tuple[str, str, str]] = set()
    read = 0
    with _quiet_readers():
        for task, split, lang, key in _reads(exp):
            if (task, split, lang) in done:
                continue
            done.add((task, split, lang))
            spec = get_task(task)
            stamp = _stamp(spec, exp.data_dir, split, lang)
            with _CHECKED_LOCK:
                if stamp is not None and stamp in _CHECKED:
                    continue
            try:
                load_examples(spec, exp.data_dir, split, lang)
            except DataError as exc:
                raise DataError(
                    exc.message, file=exc.file, line=exc.line, key=key, hint=exc.hint
                ) from None
            read += 1
            if stamp is not None:
                with _CHECKED_LOCK:
                    _CHECKED.add(stamp)
    return read


def check_data(exp: ExperimentSpec) -> None:
    """Raise one error for an absent, unusable or malformed file or folder (see module doc).

    Raises:
        ConfigError: data_dir missing or a file, an output folder that cannot be created, a
            missing local encoder, or a needed split without files.
        DataError: a malformed data file (file, line, problem, and the YAML key needing it).
    """
    _check_folders(exp)
    data = exp.data_dir
    for i, option in enumerate(exp.options):
        for j, step in enumerate(option.steps):
            key = f"intermediate.{i}.{j}" if len(option.steps) > 1 else f"intermediate.{i}"
            for task in step.tasks:
                _require_training_data(task, data, key)
    for k, target in enumerate(exp.targets):
        if format_of(get_task(target)).trainable:
            _require_training_data(target, data, f"targets.{k}")
        _require_eval_data(exp, target, f"targets.{k}")
    if "tiny" in exp.encoder:
        for i, name in enumerate(exp.encoder["tokenizer"]["train_on"]):
            _require_text(name, data, f"encoder.tokenizer.train_on.{i}")
    for i, name in enumerate(exp.mlm.get("texts_from", [])):
        _require_text(name, data, f"mlm.texts_from.{i}")
    read_every_file(exp)
