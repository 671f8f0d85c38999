"""The validated experiment as data: :class:`ExperimentSpec` and its grid's steps and options.

Only dataclasses and small helpers, so the validator, the planner and the plan-time checks can
all import it without importing each other (:mod:`xstilts.pipelines.experiment` reads and
validates a YAML file into these).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts import settings
from xstilts.errors import ConfigError
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import did_you_mean, get_task

TOP_KEYS = (
    "name", "description", "data_dir", "output_dir", "cache_dir", "encoder", "seeds",
    "intermediate", "targets", "train", "overrides", "evaluation", "keep_heads", "mlm", "report",
)  # fmt: skip
ARROW = "→"


@dataclass(frozen=True)
class Step:
    """One stage of an intermediate option: a single task or a mixture of tasks.

    Attributes:
        tasks: Task names trained together in this stage.
        mixture: ``{}`` for one task, else ``{"sampling": ..., "temperature": ...}``.
        train: Stage-level training overrides given on the mixture entry itself.
    """

    tasks: tuple[str, ...]
    mixture: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``mnli`` or ``mix(mnli+squad)`` (the same as the stage label)."""
        return self.tasks[0] if len(self.tasks) == 1 else "mix(" + "+".join(self.tasks) + ")"


@dataclass(frozen=True)
class IntermediateOption:
    """One row of the grid: no intermediate training, one task, a mixture or a chain."""

    steps: tuple[Step, ...]

    @property
    def label(self) -> str:
        """``none``, ``mnli``, ``mnli→squad`` or ``mix(mnli+squad)``."""
        return ARROW.join(s.label for s in self.steps) if self.steps else "none"

    @property
    def tasks(self) -> list[str]:
        """Every task trained by the option, in order (mixtures flattened)."""
        return [t for s in self.steps for t in s.tasks]


@dataclass(frozen=True)
class Primary:
    """A declared comparison ``a`` vs ``b`` on one report column (:mod:`~.primary`)."""

    a: str
    b: str
    target: str

    @property
    def name(self) -> str:
        """``mnli→squad vs mnli`` (the row name of the report's Δ tables)."""
        return f"{self.a} vs {self.b}"


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment (see the module doc and ``configs/*.yaml``)."""

    name: str
    data_dir: Path
    output_dir: Path
    cache_dir: Path
    encoder: Mapping[str, Any]
    seeds: tuple[int, ...]
    options: tuple[IntermediateOption, ...]
    targets: tuple[str, ...]
    train: Mapping[str, Any]
    overrides: Mapping[str, Mapping[str, Any]]
    evaluation: Mapping[str, Any]
    keep_heads: bool = False
    mlm: Mapping[str, Any] = field(default_factory=dict)
    primary: tuple[Primary, ...] = ()
    description: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def stages_dir(self) -> Path:
        """Where stage directories live (``cache_dir``; default ``<output_dir>/stages``)."""
        return self.cache_dir

    @property
    def store_path(self) -> Path:
        """The experiment's SQLite results store."""
        return self.output_dir / "results.sqlite"

    def eval_settings(self) -> Any:
        """The :class:`~xstilts.training.evaluate.EvalSettings` of this experiment."""
        # Deferred: evaluate imports torch (only when running).
        from xstilts.training.evaluate import EvalSettings

        ev = self.evaluation
        untrained = [t for t in self.targets if not format_of(get_task(t)).trainable]
        return EvalSettings(
            max_eval_examples=ev["max_eval_examples"],
            max_tokens=ev["max_tokens"],
            retrieval_pooling=ev["retrieval"]["pooling"],
            retrieval_layer=ev["retrieval"]["layer"],
            retrieval_max_sentences=ev["retrieval"]["max_sentences"],
            languages={k: tuple(v) if v is not None else None for k, v in ev["languages"].items()},
            precision=ev["precision"],
            featurize={t: self.eval_featurize(t) for t in untrained},
        )

    def eval_featurize(self, task: str) -> dict[str, Any]:
        """Featurization of a task evaluated without training (retrieval), resolved.

        ``train:`` is left out: it sets how tasks *train*, and a retrieval task never does.
        """
        spec = get_task(task)
        return settings.resolve(
            settings.FeaturizeSettings, task=spec.defaults, override=self.overrides.get(task),
            task_type=spec.type.value,
        )  # fmt: skip


def default_data_dir() -> Path:
    """``$XSTILTS_DATA_DIR``, else ``../shared/data`` from the working dir or from the repo."""
    env = os.environ.get("XSTILTS_DATA_DIR")
    if env:
        return Path(env)
    cwd_guess = Path.cwd().parent / "shared" / "data"
    repo_guess = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return cwd_guess if cwd_guess.is_dir() or not repo_guess.is_dir() else repo_guess


def check_keys(mapping: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    """Reject keys of ``mapping`` not in ``allowed``, suggesting the closest allowed key.

    Raises:
        ConfigError: ``[where.key]: unknown key`` with a did-you-mean hint.
    """
    for key in mapping:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"unknown key {key!r}", key=path, hint=did_you_mean(str(key), list(allowed))
            )
