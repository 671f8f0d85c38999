"""Loading a task's examples from disk, listing what is present, and fingerprinting the files."""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from xstilts import notices
from xstilts.errors import DataError
from xstilts.fileio import cached_sha256
from xstilts.tasks.examples import Example
from xstilts.tasks.readers import companion_files, get_reader
from xstilts.tasks.spec import TaskSpec

logger = logging.getLogger(__name__)
# Runs read the same files many times: each data warning once per run (see xstilts.notices).
notices.once_per_run(logger, logging.getLogger("xstilts.tasks.readers"))
# (resolved path, size, mtime_ns) -> sha256 hex; files are re-hashed only when they change.


def _check_split(spec: TaskSpec, split: str) -> None:
    """Raise DataError when ``split`` is not declared by ``spec``."""
    if split not in spec.splits:
        raise DataError(
            f"task {spec.name!r} has no {split!r} split (declared: {sorted(spec.splits)})"
        )


def available_languages(spec: TaskSpec, data_dir: Path, split: str) -> list[str]:
    """Declared languages of ``split`` that have at least one file under ``data_dir``.

    Raises:
        DataError: if ``split`` is not declared by the task.
    """
    _check_split(spec, split)
    return [lang for lang in spec.languages(split) if spec.find_files(Path(data_dir), split, lang)]


def _missing_error(spec: TaskSpec, data_dir: Path, split: str, lang: str) -> DataError:
    """DataError naming the expected path(s) and each source's download hint."""
    sources = [s for s in spec.splits[split] if lang in s.languages]
    if not sources:
        return DataError(
            f"task {spec.name!r} has no {split!r} data for language {lang!r} "
            f"(declared languages: {list(spec.languages(split))})"
        )
    expected = ", ".join(str(Path(data_dir) / s.pattern_for(lang)) for s in sources)
    hints = "; ".join(dict.fromkeys(s.download_hint for s in sources if s.download_hint))
    return DataError(
        f"no {split!r} file for task {spec.name!r}, language {lang!r}; expected {expected}",
        file=Path(data_dir),
        hint=hints or None,
    )


def load_examples(
    spec: TaskSpec, data_dir: Path, split: str, lang: str, limit: int | None = None
) -> list[Example]:
    """Read every file of one split for one language and concatenate the examples.

    Args:
        spec: The task.
        data_dir: Data root (holds ``xtreme/`` and ``english/``).
        split: Split name (``train``/``dev``/``test``).
        lang: Language code.
        limit: Keep only the first ``limit`` examples (file order); ``None`` keeps all.

    Raises:
        DataError: when no file exists (naming the expected paths and the download hint), or
            from the readers for malformed files.
    """
    _check_split(spec, split)
    found = spec.find_files(Path(data_dir), split, lang)
    if not found:
        raise _missing_error(spec, data_dir, split, lang)
    examples: list[Example] = []
    if found[0][0].fallback:
        primary = ", ".join(s.pattern_for(lang) for s in spec.splits[split] if not s.fallback)
        logger.warning(
            "%s %s/%s: %s not found; reading the documented stand-in %s",
            spec.name, split, lang, primary or "the primary file", found[0][1],
        )  # fmt: skip
    for source, path in found:
        examples.extend(get_reader(source.reader)(path, source, spec, lang))
        if limit is not None and len(examples) >= limit:
            break
    if not examples and limit != 0:
        # An empty split would train or score on nothing and report it as a result.
        raise DataError(
            f"the {split!r} split of task {spec.name!r} ({lang}) has no examples",
            file=found[0][1], hint="the file has no usable records (only a header, or all skipped)",
        )  # fmt: skip
    return examples if limit is None else examples[:limit]


def data_files(
    spec: TaskSpec, data_dir: Path, splits: Iterable[str], langs: Iterable[str] | None = None
) -> dict[str, str]:
    """Every file the splits read, as relative path -> ``"<size>:<sha256>"`` (sorted by path).

    Sibling files a reader reads too (Tatoeba/BUCC ``.en``, ``.gold``) are included.

    Args:
        spec: The task.
        data_dir: Data root; paths are relative to it, so moving the root keeps the result.
        splits: Splits to include (undeclared ones are ignored).
        langs: Languages to include; ``None`` = every declared language of each split.
    """
    root = Path(data_dir)
    files: set[Path] = set()
    for split in splits:
        if split not in spec.splits:
            continue
        for lang in spec.languages(split) if langs is None else langs:
            for source, path in spec.find_files(root, split, lang):
                files.add(path)
                files.update(companion_files(source.reader, path))
    out = {}
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        out[path.relative_to(root).as_posix()] = f"{path.stat().st_size}:{cached_sha256(path)}"
    return out


def data_fingerprint(
    spec: TaskSpec, data_dir: Path, splits: Iterable[str], langs: Iterable[str] | None = None
) -> str:
    """sha256 over (relative path, size, content hash) of every file the splits read.

    Args:
        spec: The task.
        data_dir: Data root; paths are hashed relative to it, so moving the root keeps the id.
        splits: Splits to include (undeclared ones are ignored).
        langs: Languages to include; ``None`` = every declared language of each split.

    Returns:
        A hex digest; equal data gives an equal fingerprint, any byte change a different one.
    """
    digest = hashlib.sha256()
    for rel, stamp in data_files(spec, data_dir, splits, langs).items():
        size, sha = stamp.split(":")
        digest.update(f"{rel}\t{size}\t{sha}\n".encode())
    return digest.hexdigest()


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a source pattern: ``{lang}`` captured (the same text each time), globs open."""
    out, seen_lang = [], False
    for part in re.split(r"(\{lang\}|\*|\?)", pattern):
        if part == "{lang}":
            out.append("(?P=lang)" if seen_lang else r"(?P<lang>[A-Za-z]{2,3}(?:[-_][A-Za-z]+)?)")
            seen_lang = True
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + "$")


def undeclared_files(spec: TaskSpec, data_dir: Path, split: str) -> dict[str, list[str]]:
    """Files on disk that look like ``split`` in a language the task does not declare.

    A source pattern with ``{lang}`` (e.g. ``xtreme/xquad/xquad.{lang}.json``) is matched with any
    language code; a match whose code is not one of the split's languages is never read (so
    never scored). Reported by ``xstilts tasks`` and by the evaluation, never silently ignored.

    Returns:
        Language code -> relative paths (sorted); empty when every file is declared.
    """
    root = Path(data_dir)
    declared = set(spec.languages(split))
    out: dict[str, list[str]] = {}
    for source in spec.splits.get(split, ()):
        if "{lang}" not in source.pattern:
            continue
        regex = _pattern_regex(source.pattern)
        wildcard = glob.escape(str(root)) + "/" + source.pattern.replace("{lang}", "*")
        for path in glob.glob(wildcard):
            rel = Path(path).relative_to(root).as_posix()
            match = regex.match(rel)
            if match and match["lang"] not in declared:
                out.setdefault(match["lang"], []).append(rel)
    return {lang: sorted(set(paths)) for lang, paths in sorted(out.items())}
