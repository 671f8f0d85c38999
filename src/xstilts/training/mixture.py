"""Which task a multi-task step draws its micro-batch from: seeded proportional/temperature/uniform.

With dataset sizes ``n_i``, the probability of task ``i`` is

* ``proportional``: ``p_i ∝ n_i`` (every example seen about equally often),
* ``temperature``: ``p_i ∝ n_i ** (1 / T)`` (``T = 1`` is proportional, ``T → ∞`` uniform),
* ``uniform``: ``p_i = 1 / k``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from xstilts.errors import ConfigError
from xstilts.settings import SAMPLING, MixtureSettings, default

SAMPLING_MODES = SAMPLING
# The schema's defaults (xstilts.settings.MixtureSettings), for samplers built by hand.
_SAMPLING = default(MixtureSettings, "sampling")
_TEMPERATURE = default(MixtureSettings, "temperature")


def mixture_probabilities(
    sizes: Sequence[int], sampling: str = _SAMPLING, temperature: float = _TEMPERATURE
) -> list[float]:
    """Sampling probability of each task.

    Args:
        sizes: Training-set size of each task (examples or features, > 0).
        sampling: One of :data:`SAMPLING_MODES`.
        temperature: ``T`` for ``"temperature"`` sampling (> 0).

    Raises:
        ConfigError: for an unknown mode, a non-positive temperature or an empty task.
    """
    if sampling not in SAMPLING_MODES:
        raise ConfigError(
            f"unknown mixture sampling {sampling!r} (choose from {', '.join(SAMPLING_MODES)})",
            key="mixture.sampling",
        )
    if any(n <= 0 for n in sizes):
        raise ConfigError(f"every mixed task needs training examples, got sizes {list(sizes)}")
    if sampling == "temperature" and temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}", key="mixture.temperature")
    exponent = {"proportional": 1.0, "uniform": 0.0}.get(sampling, 1.0 / temperature)
    weights = [float(n) ** exponent for n in sizes]
    total = sum(weights)
    return [w / total for w in weights]


class MixtureSampler:
    """Seeded draws of a task index; the same seed always gives the same sequence.

    Uses its own :class:`random.Random` so model code touching the global RNGs cannot change
    which tasks are drawn.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        sampling: str = _SAMPLING,
        temperature: float = _TEMPERATURE,
        seed: int = 0,
    ) -> None:
        self.probabilities = mixture_probabilities(sizes, sampling, temperature)
        self._rng = random.Random(seed)
        self._indices = list(range(len(sizes)))

    def state(self) -> list[object]:
        """The RNG state as JSON (what a checkpoint stores)."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def load_state(self, state: list[object]) -> None:
        """Continue the draws from a :meth:`state`."""
        version, internal, gauss = state
        self._rng.setstate((version, tuple(internal), gauss))  # type: ignore[arg-type]

    def next(self) -> int:
        """Index of the task the next micro-batch comes from."""
        if len(self._indices) == 1:
            return 0
        return self._rng.choices(self._indices, weights=self.probabilities)[0]
