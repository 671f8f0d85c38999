"""Experiment YAML -> validated :class:`ExperimentSpec`, every error named by its key path.

Overrides (``key.path=value``) are applied to the raw mapping first, so a bad override gets the
same message as the same mistake in the file. Relative paths (``data_dir``, ``output_dir``,
``cache_dir``) are relative to the YAML file's directory, so a config means the same thing
whatever the working directory. Validation (:mod:`xstilts.pipelines.validate`, then
:mod:`xstilts.pipelines.datacheck` for files) runs before anything is trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines import datacheck, validate
from xstilts.pipelines.experiment_spec import (  # re-exported: the names callers know
    ARROW,
    TOP_KEYS,
    ExperimentSpec,
    IntermediateOption,
    Step,
    check_keys,
    default_data_dir,
)
from xstilts.pipelines.limits import check_limits
from xstilts.pipelines.overrides import apply_overrides
from xstilts.pipelines.yamlio import read_yaml_file

__all__ = [
    "ARROW", "TOP_KEYS", "ExperimentSpec", "IntermediateOption", "Step", "check_keys",
    "default_data_dir", "experiment_from_dict", "load_experiment", "read_yaml",
]  # fmt: skip


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
    try:
        exp = validate.build_spec(dict(raw), Path(base_dir or Path.cwd()), path)
        if check_data:
            check_limits(exp)
            datacheck.check_data(exp)
    except ConfigError as exc:
        if path is not None and exc.file is None:
            raise ConfigError(exc.message, file=path, key=exc.key, hint=exc.hint) from None
        raise
    return exp
