"""The reader registry: name -> function reading one file of one split into examples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xstilts.errors import ConfigError
from xstilts.tasks.examples import Example
from xstilts.tasks.spec import SplitSource, TaskSpec

Reader = Callable[[Path, SplitSource, TaskSpec, str], list[Example]]
"""``reader(path, source, spec, lang) -> examples``; raises ``DataError`` on malformed input."""

_READERS: dict[str, Reader] = {}
# Reader name -> suffixes of sibling files it also reads (e.g. Tatoeba's ``.en`` side).
_COMPANIONS: dict[str, tuple[str, ...]] = {}


def register_reader(name: str, companions: tuple[str, ...] = ()) -> Callable[[Reader], Reader]:
    """Decorator registering a reader under ``name``.

    Args:
        name: Registry name used in ``SplitSource.reader``.
        companions: Suffixes replacing the last suffix of the split's file to give the sibling
            files the reader also reads (they count towards data fingerprints).

    Raises:
        ConfigError: if ``name`` is already taken.
    """

    def wrap(fn: Reader) -> Reader:
        if name in _READERS:
            raise ConfigError(f"reader {name!r} is already registered", key=name)
        _READERS[name] = fn
        _COMPANIONS[name] = companions
        return fn

    return wrap


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``.

    Raises:
        ConfigError: for an unknown name, suggesting the closest ones.
    """
    from xstilts.tasks.registry import did_you_mean

    if name not in _READERS:
        raise ConfigError(f"unknown reader {name!r}", hint=did_you_mean(name, list(_READERS)))
    return _READERS[name]


def list_readers() -> list[str]:
    """Names of all registered readers, sorted."""
    return sorted(_READERS)


def companion_files(name: str, path: Path) -> list[Path]:
    """Existing sibling files that reader ``name`` reads together with ``path``."""
    get_reader(name)
    siblings = (path.with_suffix(suffix) for suffix in _COMPANIONS[name])
    return [p for p in siblings if p.is_file()]
