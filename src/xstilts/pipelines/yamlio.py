"""Strict YAML loading for experiment files and override values.

``yaml.safe_load`` alone accepts three things an experiment file must not contain:

* a key written twice in one mapping (PyYAML silently keeps the last one, so the first setting
  is ignored without a word);
* aliases that expand into a huge or recursive document (a "billion laughs" bomb: ten nested
  levels of ten aliases is a few hundred bytes of YAML but 10**10 values once anything walks
  it); the node graph is measured *before* any Python object is built, so a bomb is refused in
  milliseconds;
* bytes that are not UTF-8 (a traceback from the decoder otherwise).

Every problem is one :class:`ConfigError` with the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from xstilts.errors import ConfigError

# An experiment file has a few hundred values; aliases may repeat a block, not multiply it.
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node, deep=False)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} (first given at line {seen[key]})",
                    line=line,
                    hint="a YAML mapping keeps only the last value: remove one of them",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: Node) -> int:
    """Number of nodes once every alias is expanded; raises on a recursive alias.

    Shared nodes are counted once per reference (that is what expansion costs), but each
    distinct node is visited once (memoised), so a bomb is measured in linear time.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(
                "recursive YAML alias (a value that contains itself)",
                line=node.start_mark.line + 1,
                hint="remove the alias that refers to its own anchor",
            )
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _located(exc: ConfigError, file: Path | None) -> ConfigError:
    return ConfigError(exc.message, file=file, line=exc.line, key=exc.key, hint=exc.hint)


def load_yaml(text: str, file: Path | None = None) -> Any:
    """Parse one YAML document strictly (see the module doc).

    Args:
        text: The YAML text.
        file: Named in errors (``None`` for an override value).

    Raises:
        ConfigError: syntax error (with line), duplicate key, alias bomb or recursive alias.
    """
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader rejects control characters right here
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"YAML aliases expand to {expanded:,} values (limit {MAX_EXPANDED_NODES:,}): "
                "refused without expanding (an alias bomb?)",
                file=file,
                line=1,
                hint="write the experiment without nested aliases",
            )
        return loader.construct_document(node)
    except ConfigError as exc:
        raise _located(exc, file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        if context and problem != context:  # "expected a single document ..., but found ..."
            problem = f"{context}, {problem}"
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line) from None
    except RecursionError:
        # Thousands of nested brackets exhaust the composer's recursion before any limit.
        raise ConfigError("invalid YAML: nested too deeply", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(path: Path) -> Any:
    """The parsed document of a YAML file (UTF-8, BOM allowed).

    Raises:
        ConfigError: the file is missing, a directory, a symlink loop, unreadable, not UTF-8,
            or not valid strict YAML (see :func:`load_yaml`).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        what = "a broken symlink" if path.is_symlink() else "not found"
        raise ConfigError(f"experiment file {what}", file=path) from None
    except IsADirectoryError:
        raise ConfigError(
            "experiment file is a directory", file=path, hint="give the path of a .yaml file"
        ) from None
    except OSError as exc:  # a symlink loop (ELOOP), no permission, an I/O error
        raise ConfigError(f"cannot read the experiment file: {exc.strerror}", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not valid UTF-8 (byte {exc.start})", file=path, line=line,
            hint="save the file as UTF-8",
        ) from None  # fmt: skip
    return load_yaml(text, path)
