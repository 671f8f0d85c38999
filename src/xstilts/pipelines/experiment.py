"""Experiment YAML -> validated :class:`ExperimentSpec`, every error named by its key path.

Overrides (``key.path=value``) are applied to the raw mapping first, so a bad override gets the
same message as the same mistake in the file. Relative paths (``data_dir``, ``output_dir``,
``cache_dir``) are relative to the YAML file's directory, so a config means the same thing
whatever the working directory. Validation (:mod:`xstilts.pipelines.validate`, then
:mod:`xstilts.pipelines.datacheck` for files) runs before anything is trained.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.overrides import apply_overrides
from xstilts.pipelines.yamlio import read_yaml_file
from xstilts.tasks.registry import did_you_mean, get_task

TOP_KEYS = (
    "name", "description", "data_dir", "output_dir", "cache_dir", "encoder", "seeds",
    "intermediate", "targets", "train", "overrides", "evaluation", "keep_heads", "mlm",
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
        # Deferred: evaluate imports torch (only when running); plan imports this module.
        from xstilts.pipelines.plan import eval_featurize_settings
        from xstilts.tasks.spec import TaskType
        from xstilts.training.evaluate import EvalSettings

        ev = self.evaluation
        untrained = [t for t in self.targets if get_task(t).type is TaskType.RETRIEVAL]
        return EvalSettings(
            max_eval_examples=ev["max_eval_examples"],
            max_tokens=ev["max_tokens"],
            retrieval_pooling=ev["retrieval"]["pooling"],
            retrieval_layer=ev["retrieval"]["layer"],
            languages={k: tuple(v) if v is not None else None for k, v in ev["languages"].items()},
            precision=ev["precision"],
            featurize={t: eval_featurize_settings(self, t) for t in untrained},
        )


def default_data_dir() -> Path:
    """``$XSTILTS_DATA_DIR``, else ``../shared/data`` from the working dir or from the repo."""
    env = os.environ.get("XSTILTS_DATA_DIR")
    if env:
        return Path(env)
    cwd_guess = Path.cwd().parent / "shared" / "data"
    repo_guess = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    return cwd_guess if cwd_guess.is_dir() or not repo_guess.is_dir() else repo_guess


def read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (strict: see :mod:`xstilts.pipelines.yamlio`).

    Raises:
        ConfigError: missing/unreadable file, not UTF-8, YAML syntax error (with line),
            duplicate key, alias bomb, or a non-mapping document.
    """
    path = Path(path)
    data = read_yaml_file(path)
    if not isinstance(data, dict):
        raise ConfigError("an experiment file must be a YAML mapping", file=path)
    return data


def load_experiment(
    path: str | Path, overrides: Sequence[str] = (), *, check_data: bool = True
) -> ExperimentSpec:
    """Read, override and validate an experiment YAML file.

    Args:
        path: The YAML file.
        overrides: ``key.path=value`` items applied before validation.
        check_data: Also run the plan-time checks (:mod:`~xstilts.pipelines.limits`,
            :mod:`~xstilts.pipelines.datacheck`): featurization limits, folders, and every
            data file the experiment reads, read with the real readers.

    Raises:
        ConfigError: naming the file and key path of the first problem found.
        DataError: a malformed data file (with ``check_data``), naming file, line and key.
    """
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides)
    return experiment_from_dict(raw, base_dir=path.parent, path=path, check_data=check_data)


def experiment_from_dict(
    raw: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    path: Path | None = None,
    check_data: bool = True,
) -> ExperimentSpec:
    """Validate an experiment mapping (already overridden).

    Args:
        raw: The experiment mapping.
        base_dir: Directory relative paths are resolved against (default: working directory).
        path: The source file, used in error messages.
        check_data: Also run the plan-time checks (:mod:`~xstilts.pipelines.limits`,
            :mod:`~xstilts.pipelines.datacheck`): featurization limits, folders, and every
            data file the experiment reads, read with the real readers.

    Raises:
        ConfigError: naming the key path of the first problem found (with ``file=path``).
        DataError: a malformed data file (with ``check_data``), naming file, line and key.
    """
    # Deferred: validate/datacheck import this module's dataclasses.
    from xstilts.pipelines import datacheck, validate

    try:
        exp = validate.build_spec(dict(raw), Path(base_dir or Path.cwd()), path)
        if check_data:
            from xstilts.pipelines.limits import check_limits  # imports the planner

            check_limits(exp)
            datacheck.check_data(exp)
    except ConfigError as exc:
        if path is not None and exc.file is None:
            raise ConfigError(exc.message, file=path, key=exc.key, hint=exc.hint) from None
        raise
    return exp


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
