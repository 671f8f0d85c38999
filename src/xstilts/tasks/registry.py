"""The task registry: duplicate names are rejected, unknown names get "did you mean"."""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from xstilts.errors import ConfigError
from xstilts.tasks.spec import TaskSpec

_TASKS: dict[str, TaskSpec] = {}
_CATALOG_LOADED = False


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add ``spec`` to the registry.

    Raises:
        ConfigError: if a task of the same name is already registered.
    """
    if spec.name in _TASKS:
        raise ConfigError(f"task {spec.name!r} is already registered", key=spec.name)
    _TASKS[spec.name] = spec
    return spec


def _load_catalog() -> None:
    """Import every module of ``xstilts.tasks.catalog`` once (each registers its tasks)."""
    global _CATALOG_LOADED
    if _CATALOG_LOADED:
        return
    _CATALOG_LOADED = True
    from xstilts.tasks import catalog

    for info in sorted(pkgutil.iter_modules(catalog.__path__), key=lambda m: m.name):
        importlib.import_module(f"{catalog.__name__}.{info.name}")


def did_you_mean(name: str, choices: list[str]) -> str:
    """A hint naming the closest valid choices, or listing them all."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "known: " + ", ".join(sorted(choices))


def get_task(name: str) -> TaskSpec:
    """The registered spec called ``name``.

    Raises:
        ConfigError: for an unknown name, suggesting the closest registered names.
    """
    _load_catalog()
    key = name.lower().strip()
    if key not in _TASKS:
        raise ConfigError(f"unknown task {name!r}", hint=did_you_mean(key, list(_TASKS)))
    return _TASKS[key]


def list_tasks() -> list[str]:
    """Names of all registered tasks, sorted."""
    _load_catalog()
    return sorted(_TASKS)
