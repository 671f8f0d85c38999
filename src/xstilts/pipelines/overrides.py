"""``key.path=value`` command-line overrides, applied to the raw YAML mapping before validation.

Values are parsed with ``yaml.safe_load`` so ``seeds=[1,2]``, ``train.lr=2e-5``,
``keep_heads=true`` and ``overrides.squad={epochs: 1}`` all mean what they look like.
A path segment that is an integer indexes into a list (``intermediate.1=mnli``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.yamlio import load_yaml

_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
# yaml.safe_load reads "1e-5" as a string (YAML 1.1 wants a dot); users mean a float.
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)$")


def parse_value(text: str) -> Any:
    """A YAML scalar/list/mapping from override text (``"[1,2]"`` -> ``[1, 2]``, ``1e-5`` float).

    Raises:
        ConfigError: if the text is not valid (strict) YAML.
    """
    if _FLOAT.match(text.strip()):
        return float(text)
    try:
        # The experiment file's strict loader: no duplicate keys, no alias bombs.
        return load_yaml(text) if text.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"cannot parse override value {text!r}: {exc.message}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into (``["a", "b"]``, parsed value).

    Raises:
        ConfigError: if there is no ``=``, the key path is malformed or the value is not YAML.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise ConfigError(
            f"bad override {item!r}", hint="expected key.path=value, e.g. train.lr=2e-5"
        )
    try:
        value = parse_value(raw)
    except ConfigError as exc:
        raise ConfigError(exc.message, key=key, hint="quote it or fix the YAML") from None
    return key.split("."), value


def _set(node: Any, path: list[str], value: Any, full: str) -> None:
    """Set ``value`` at ``path`` inside ``node``, creating mappings on the way."""
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise ConfigError(f"index {head!r} out of range for a list of {len(node)}", key=full)
        if rest:
            _set(node[int(head)], rest, value, full)
        else:
            node[int(head)] = value
        return
    if not isinstance(node, dict):
        raise ConfigError("cannot set a key inside a non-mapping value", key=full)
    if not rest:
        node[head] = value
        return
    if node.get(head) is None:
        node[head] = {}
    _set(node[head], rest, value, full)


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A deep copy of ``raw`` with every ``key.path=value`` override applied in order.

    Args:
        raw: The experiment mapping as loaded from YAML.
        overrides: Items like ``"train.lr=2e-5"`` or ``"seeds=[1,2]"``.

    Returns:
        The new mapping (``raw`` is not modified).

    Raises:
        ConfigError: for a malformed override, naming it.
    """
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        path, value = parse_override(item)
        _set(out, path, value, ".".join(path))
    return out
