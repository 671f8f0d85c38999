"""Container types of an experiment mapping: a list where a list goes, a mapping where a mapping.

Run before the value checks of :mod:`xstilts.pipelines.validate`, so ``overrides: [squad]`` or
``evaluation.languages.xnli: de`` is one error at its key path instead of a traceback from
``dict(...)`` or a string iterated character by character (``'d'`` is not a language).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from xstilts.errors import ConfigError

MAPPING = "a mapping (key: value)"
LIST = "a list ([a, b])"
_NONE = type(None)

# (key path, allowed types, what to write); ``*`` is every key of a mapping, ``#`` every index
# of a list. A path whose parent is absent or of the wrong type is skipped: the parent's own
# rule reports it. ``seeds``, ``intermediate`` and ``targets`` themselves are checked (in their
# own words) by validate.
SHAPES: tuple[tuple[str, tuple[type, ...], str], ...] = (
    ("intermediate.#", (str, list, dict, _NONE), "a task, a list (chain) or a mapping (mixture)"),
    ("intermediate.#.#", (str, dict), "a task or a mixture mapping"),
    ("intermediate.#.chain", (list, str), LIST + " of steps"),
    ("intermediate.#.chain.#", (str, dict), "a task or a mixture mapping"),
    ("intermediate.#.mixture", (list,), LIST + " of tasks"),
    ("intermediate.#.#.mixture", (list,), LIST + " of tasks"),
    ("intermediate.#.chain.#.mixture", (list,), LIST + " of tasks"),
    ("intermediate.#.train", (dict, _NONE), MAPPING + " of training settings"),
    ("intermediate.#.#.train", (dict, _NONE), MAPPING + " of training settings"),
    ("intermediate.#.chain.#.train", (dict, _NONE), MAPPING + " of training settings"),
    ("train", (dict, _NONE), MAPPING + " of training settings"),
    ("overrides", (dict, _NONE), MAPPING + " of task: {settings}"),
    ("overrides.*", (dict, _NONE), MAPPING + " of training settings"),
    ("encoder", (dict, str), "a model name or " + MAPPING),
    ("encoder.tiny", (dict, _NONE), MAPPING + " of tiny-encoder settings"),
    ("encoder.tokenizer", (dict, _NONE), MAPPING + " of tokenizer settings"),
    ("encoder.tokenizer.train_on", (list,), LIST + " of tasks"),
    ("evaluation", (dict, _NONE), MAPPING + " of evaluation settings"),
    ("evaluation.languages", (dict, _NONE), MAPPING + " of task: [languages]"),
    ("evaluation.languages.*", (list, _NONE), LIST + " of language codes (null: all)"),
    ("evaluation.retrieval", (dict, _NONE), MAPPING + " of retrieval settings"),
    ("mlm", (dict, _NONE), MAPPING + " of MLM settings"),
    ("mlm.texts_from", (list,), LIST + " of tasks"),
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"the {type(value).__name__} {value!r}"


def _matches(node: Any, parts: list[str], path: str) -> Iterator[tuple[str, Any]]:
    """``(key path, value)`` of every value at ``parts`` below ``node``."""
    if not parts:
        yield path, node
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, list) and head == "#":
        items: list[tuple[Any, Any]] = list(enumerate(node))
    elif isinstance(node, Mapping) and head == "*":
        items = list(node.items())
    elif isinstance(node, Mapping) and head in node:
        items = [(head, node[head])]
    else:
        return
    for key, child in items:
        yield from _matches(child, rest, f"{path}.{key}" if path else str(key))


def check_shapes(raw: Mapping[str, Any]) -> None:
    """Raise one ConfigError for the first container of the wrong type.

    Raises:
        ConfigError: ``[key.path]: must be a list ..., got a mapping``.
    """
    for pattern, allowed, wanted in SHAPES:
        for path, value in _matches(raw, pattern.split("."), ""):
            if not isinstance(value, allowed):
                raise ConfigError(f"must be {wanted}, got {_kind(value)}", key=path)
