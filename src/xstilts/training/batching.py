"""Length-grouped micro-batches: keep the padded attention cost close to the real token count.

Packed batches (:func:`xstilts.packing.pack`) never pad inside linear layers, but attention (and
HF's padded fallback) still pays ``num_sequences * max_seqlen`` per batch. Grouping features of
similar length into the same batch keeps that close to the real token count.

The classic *megabatch* recipe is used: shuffle all features, cut the shuffled list into
megabatches of ``MEGABATCH_BATCHES * batch_size`` features, sort each megabatch by length, cut it
into batches (by count, or by a token budget on the padded cost), then shuffle the batch order.
Training order therefore stays random at the megabatch scale while each batch is homogeneous.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from xstilts.packing import Feature

# Batches per megabatch: large enough that sorting finds close lengths, small enough that the
# order of examples stays random across an epoch.
MEGABATCH_BATCHES = 64


def feature_cost(feature: Feature) -> tuple[int, int]:
    """``(num_sequences, longest_sequence)`` of one feature (multiple choice has several)."""
    seqs = feature["sequences"]
    return len(seqs), max(len(s) for s in seqs)


def _cut(
    order: Sequence[int],
    costs: Sequence[tuple[int, int]],
    batch_size: int,
    max_tokens: int | None,
) -> list[list[int]]:
    """Cut length-sorted (longest first) indices into batches by count and padded-token budget."""
    batches: list[list[int]] = []
    current: list[int] = []
    n_seq = 0
    max_len = 0
    for idx in order:
        seqs, length = costs[idx]
        new_max = max(max_len, length)
        too_many = len(current) >= batch_size
        # The padded cost of a batch is S * T: every sequence is padded to the longest one.
        over_budget = max_tokens is not None and (n_seq + seqs) * new_max > max_tokens
        if current and (too_many or over_budget):
            batches.append(current)
            current, n_seq, new_max = [], 0, length
        current.append(idx)
        n_seq += seqs
        max_len = new_max
    if current:
        batches.append(current)
    return batches


def make_batches(
    features: Sequence[Feature],
    *,
    batch_size: int,
    max_tokens: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """Group feature indices into length-homogeneous micro-batches.

    Args:
        features: Featurized examples (``"sequences"`` key, see :mod:`xstilts.packing`).
        batch_size: Maximum features per batch.
        max_tokens: Optional budget on the padded cost ``num_sequences * max_seqlen``; a single
            feature over budget still forms its own batch (never dropped).
        shuffle: Training order (megabatch recipe). ``False``: one global sort, longest
            first, so evaluation meets its largest batch (and any out-of-memory) immediately.
        seed: Shuffling seed.
        epoch: Epoch number, mixed into the seed so every epoch has a different order.

    Returns:
        Lists of indices into ``features``; every index appears exactly once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    costs = [feature_cost(f) for f in features]
    indices = list(range(len(features)))
    if not shuffle:
        indices.sort(key=lambda i: (-costs[i][1], i))
        return _cut(indices, costs, batch_size, max_tokens)
    # An int seed (not a tuple/str hash) keeps the order identical across Python processes.
    rng = random.Random(seed * 1_000_003 + epoch)
    rng.shuffle(indices)
    size = MEGABATCH_BATCHES * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(indices), size):
        mega = sorted(indices[start : start + size], key=lambda i: -costs[i][1])
        batches.extend(_cut(mega, costs, batch_size, max_tokens))
    rng.shuffle(batches)
    return batches


class BatchStream:
    """Endless micro-batches of one task, re-shuffled every epoch; its position is saveable."""

    def __init__(
        self, features: Sequence[Feature], batch_size: int, max_tokens: int | None, seed: int
    ) -> None:
        self.features, self.batch_size, self.max_tokens = features, batch_size, max_tokens
        self.seed = seed
        self.epoch, self.pos = 0, 0
        self._batches = self._make()

    def _make(self) -> list[list[int]]:
        return make_batches(
            self.features, batch_size=self.batch_size, max_tokens=self.max_tokens,
            shuffle=True, seed=self.seed, epoch=self.epoch,
        )  # fmt: skip

    def next(self) -> list[int]:
        """Indices of the next micro-batch."""
        if self.pos >= len(self._batches):
            self.epoch, self.pos = self.epoch + 1, 0
            self._batches = self._make()
        self.pos += 1
        return self._batches[self.pos - 1]

    def state(self) -> dict[str, int]:
        """Epoch and position (the order itself is recomputed from the seed)."""
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state`."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._batches = self._make()


def padding_efficiency(
    batches: Sequence[Sequence[int]], features: Sequence[Feature]
) -> tuple[int, int]:
    """Real tokens and attention-padded tokens processed by ``batches``.

    Returns:
        ``(real_tokens, processed_tokens)`` where processed is the sum over batches of
        ``num_sequences * max_seqlen``; their ratio is the padding efficiency.
    """
    real = 0
    processed = 0
    for batch in batches:
        lens = [len(s) for i in batch for s in features[i]["sequences"]]
        real += sum(lens)
        processed += len(lens) * max(lens)
    return real, processed
