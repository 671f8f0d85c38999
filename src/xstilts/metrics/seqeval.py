"""Entity-level precision/recall/F1 exactly as ``seqeval.metrics`` computes them by default.

XTREME scores both PAN-X (IOB2 NER tags) and UD-POS (bare UPOS tags) with seqeval's default,
lenient, conlleval-style mode, so this module reproduces that behaviour tag for tag, including
its quirks on tags without a ``B-``/``I-`` prefix:

* A tag is split into a *prefix* (its first character) and a *type* (what follows the first
  ``-`` after the first character, or the whole rest when there is no ``-``; ``"_"`` when
  empty). ``"B-PER"`` -> (``B``, ``PER``); ``"NOUN"`` -> (``N``, ``OUN``);
  ``"X"`` -> (``X``, ``_``).
* Chunks are delimited by prefix transitions (B/I/E/S/O logic) *and* by type changes, so a run
  of identical POS tags merges into one "entity", while ``"INTJ"`` (prefix ``I``) or ``"SCONJ"``
  (prefix ``S``) also take part in the IOBES transition rules.
* Sentences are concatenated with an ``"O"`` after each. That "O" has type ``"_"``, like
  ``"X"``: so a sentence-final ``"X"`` is never closed (dropped) and ``"X"`` runs merge
  across sentences, exactly as in seqeval.

Scores are micro-averaged over chunk types and returned in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

from xstilts.errors import DataError

Entity = tuple[str, int, int]

# Prefixes after which a B or S or O tag closes the running chunk (conlleval rules).
_OPEN_PREFIXES = frozenset("BI")
_CLOSING_NEXT = frozenset("BSO")
# Prefixes that never continue a chunk: the chunk ends right after them.
_SINGLE_END = frozenset("ES")
# An I or E tag opens a new chunk when it follows one of these prefixes.
_NO_CHUNK_BEFORE = frozenset("ESO")
# Prefixes exempt from "type changed" boundaries ('.' is a conlleval sentence marker).
_OUTSIDE = frozenset("O.")


def _split_tag(tag: str) -> tuple[str, str]:
    """Prefix and type: ``"B-PER"`` -> ``("B", "PER")``, ``"NOUN"`` -> ``("N", "OUN")``."""
    rest = tag[1:]
    dash = rest.find("-")
    kind = rest[dash + 1 :] if dash >= 0 else rest
    return tag[0], kind or "_"


def _chunk_ends(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """Whether the chunk running at the previous position stops before the current one."""
    if prev in _SINGLE_END:
        return True
    if prev in _OPEN_PREFIXES and cur in _CLOSING_NEXT:
        return True
    return prev not in _OUTSIDE and prev_type != cur_type


def _chunk_starts(prev: str, cur: str, prev_type: str, cur_type: str) -> bool:
    """Whether a new chunk begins at the current position."""
    if cur in "BS":
        return True
    if cur in "EI" and prev in _NO_CHUNK_BEFORE:
        return True
    return cur not in _OUTSIDE and prev_type != cur_type


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """Chunks of one tag sequence, as ``seqeval.metrics.sequence_labeling.get_entities``.

    Args:
        tags: One tag per token (IOB/IOBES tags such as ``"B-PER"`` or bare POS tags).

    Returns:
        ``(type, first_index, last_index)`` per chunk, inclusive indices, in order.

    Raises:
        DataError: If a tag is the empty string (seqeval cannot read it either).
    """
    entities: list[Entity] = []
    prev, prev_type, begin = "O", "", 0
    # A trailing "O" flushes the last chunk, exactly as seqeval appends one.
    for i, tag in enumerate([*tags, "O"]):
        if not tag:
            raise DataError(f"empty tag at token {i}", hint="every token needs a tag string")
        cur, cur_type = _split_tag(tag)
        if _chunk_ends(prev, cur, prev_type, cur_type):
            entities.append((prev_type, begin, i - 1))
        if _chunk_starts(prev, cur, prev_type, cur_type):
            begin = i
        prev, prev_type = cur, cur_type
    return entities


def _flatten(sentences: Sequence[Sequence[str]]) -> list[str]:
    """All sentences joined with an ``"O"`` after each, as seqeval does for nested input."""
    flat: list[str] = []
    for sentence in sentences:
        flat.extend(sentence)
        flat.append("O")
    return flat


def _check_aligned(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]
) -> None:
    """Raise :class:`DataError` naming the first sentence whose lengths disagree."""
    if len(references) != len(predictions):
        raise DataError(
            f"{len(predictions)} predicted sentences for {len(references)} reference sentences"
        )
    for i, (ref, hyp) in enumerate(zip(references, predictions, strict=True)):
        if len(ref) != len(hyp):
            raise DataError(
                f"sentence {i}: {len(ref)} reference tags but {len(hyp)} predicted tags",
                line=i + 1,
            )


def entity_scores(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Micro precision, recall and F1 over chunks, as ``seqeval.metrics.f1_score`` defaults.

    Args:
        references: Gold tags, one list per sentence.
        predictions: Predicted tags, aligned with ``references``.

    Returns:
        ``{"precision", "recall", "f1"}`` in percent. A zero denominator gives 0, as seqeval's
        default ``zero_division="warn"`` does.

    Raises:
        DataError: If sentence counts or per-sentence lengths differ, or a tag is empty.
    """
    _check_aligned(references, predictions)
    gold = set(get_entities(_flatten(references)))
    pred = set(get_entities(_flatten(predictions)))
    # Entities carry global offsets, so one set intersection equals seqeval's per-type micro sum.
    correct = len(gold & pred)
    precision = correct / len(pred) if pred else 0.0
    recall = correct / len(gold) if gold else 0.0
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}
