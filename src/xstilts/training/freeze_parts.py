"""What ``train.freeze`` accepts, parsed without torch (the planner validates YAML with it).

Parts: ``embeddings`` (the embedding layer), ``layer.N`` (transformer layer N, 0 = nearest the
embeddings) and ``layers.A-B`` (layers A to B inclusive). Freezing the embeddings and the lowest
layers is Wu & Dredze's (2019) recipe for zero-shot transfer, and on CPU it is also the cheapest
speed-up: no backward pass runs below the lowest trained layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FREEZE_HELP = "embeddings, layer.N (0 = lowest) or layers.A-B (A to B inclusive)"
_LAYER = re.compile(r"^layer\.(\d+)$")
_LAYERS = re.compile(r"^layers\.(\d+)-(\d+)$")


def expand_part(part: object) -> tuple[str, ...] | None:
    """One ``train.freeze`` entry -> the units it freezes, or ``None`` if it is not valid.

    ``"layers.0-2"`` -> ``("layer.0", "layer.1", "layer.2")``; ``"embeddings"`` -> itself.
    """
    if not isinstance(part, str):
        return None
    if part == "embeddings":
        return (part,)
    if m := _LAYER.match(part):
        return (f"layer.{int(m.group(1))}",)
    if (m := _LAYERS.match(part)) and int(m.group(1)) <= int(m.group(2)):
        return tuple(f"layer.{i}" for i in range(int(m.group(1)), int(m.group(2)) + 1))
    return None


def valid_freeze(value: object) -> bool:
    """A list of valid parts that freeze no unit twice."""
    if not isinstance(value, list):
        return False
    units: list[str] = []
    for part in value:
        expanded = expand_part(part)
        if expanded is None:
            return False
        units.extend(expanded)
    return len(set(units)) == len(units)


def freeze_units(parts: Sequence[str]) -> list[str]:
    """Every unit the parts freeze, in order (``embeddings`` / ``layer.N``); unknown parts kept."""
    units: list[str] = []
    for part in parts:
        units.extend(expand_part(part) or (part,))
    return units
