"""The Python API for notebooks: load, plan, run, tabulate and report an experiment.

>>> import xstilts
>>> exp = xstilts.load_experiment("configs/demo.yaml", seeds=[1, 2], train__lr=2e-4)
>>> xstilts.plan(exp)            # the stage DAG; nothing is trained
>>> out = xstilts.run(exp)       # trains what is not cached; returns the output directory
>>> df = xstilts.results(out)    # tidy pandas DataFrame, one row per score
>>> xstilts.report(out)          # writes report/report.html and returns its path

Everything here is what the CLI does, minus the printing; errors are the same
:class:`~xstilts.errors.XstiltsError` subclasses. ``import xstilts`` stays light: this module
(and torch) is imported on the first call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xstilts.errors import ConfigError, DataError
from xstilts.pipelines.experiment import ExperimentSpec, experiment_from_dict, read_yaml

if TYPE_CHECKING:
    import pandas as pd

    from xstilts.pipelines.plan import Plan

# The tidy columns of results(), in this order.
RESULT_COLUMNS = ("condition", "seed", "target", "language", "metric", "value", "degenerate")
RunLike = ExperimentSpec | str | Path


def _set_key(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """``raw[a][b] = value`` for ``dotted = "a.b"`` (intermediate mappings created)."""
    node = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"cannot set {dotted!r}: {'.'.join(parts[: i + 1])!r} is not a mapping",
                key=dotted,
            )
        node = child
    node[parts[-1]] = value


def load_experiment(
    source: str | Path | Mapping[str, Any], /, *, check_data: bool = True, **overrides: Any
) -> ExperimentSpec:
    """An experiment from a YAML file or a dict, with keyword overrides.

    Args:
        source: A YAML path, or the experiment mapping itself (relative paths in it are then
            resolved against the working directory).
        check_data: Also require every data file the experiment reads to exist.
        **overrides: Values replacing keys of the mapping; ``__`` separates nested keys
            (``train__lr=2e-5`` sets ``train.lr``), as ``key.path=value`` does on the CLI.

    Raises:
        ConfigError: naming the file and key of the first problem.
    """
    if isinstance(source, Mapping):
        raw, base, path = copy.deepcopy(dict(source)), Path.cwd(), None
    else:
        path = Path(source)
        raw, base = read_yaml(path), path.parent
    for key, value in overrides.items():
        _set_key(raw, key.replace("__", "."), value)
    return experiment_from_dict(raw, base_dir=base, path=path, check_data=check_data)


def _experiment(exp: ExperimentSpec | str | Path | Mapping[str, Any]) -> ExperimentSpec:
    return exp if isinstance(exp, ExperimentSpec) else load_experiment(exp)


def plan(exp: ExperimentSpec | str | Path | Mapping[str, Any], *, count: bool = True) -> Plan:
    """The stage DAG of ``exp``: stages (parents first, ``cached`` set), chains and savings.

    Args:
        exp: An experiment (or anything :func:`load_experiment` accepts).
        count: Count training examples for the savings estimate (reads the train files).
    """
    from xstilts.pipelines.plan import build_plan

    return build_plan(_experiment(exp), count_examples=count)


def run(exp: ExperimentSpec | str | Path | Mapping[str, Any], *, progress: bool = True) -> Path:
    """Train every stage not yet cached, evaluate and record, on this machine.

    Args:
        exp: An experiment (or anything :func:`load_experiment` accepts).
        progress: Show progress bars.

    Returns:
        The output directory (holding ``results.sqlite`` and ``results.json``); pass it to
        :func:`results`.
    """
    from xstilts.pipelines.executor import run_experiment
    from xstilts.pipelines.plan import build_plan

    spec = _experiment(exp)
    return run_experiment(spec, build_plan(spec), progress=progress)  # writes results.json


def _store(run: RunLike | Mapping[str, Any]) -> tuple[Path, Path | None]:
    """``(results.sqlite, stage cache or None)`` of an experiment, a YAML, a dir or the db."""
    if isinstance(run, ExperimentSpec | Mapping) or Path(run).suffix in (".yaml", ".yml"):
        spec = run if isinstance(run, ExperimentSpec) else load_experiment(run, check_data=False)
        db, stages = spec.store_path, spec.stages_dir
    else:
        path = Path(run)
        db = path / "results.sqlite" if path.is_dir() else path
        stages = db.parent / "stages"
    if not db.is_file():
        raise DataError("no results store found (run the experiment first)", file=db)
    return db, stages if stages.is_dir() else None


def results(run: RunLike | Mapping[str, Any], *, experiment: str | None = None) -> pd.DataFrame:
    """Every recorded score of an experiment as a tidy DataFrame.

    Args:
        run: What :func:`run` returned, or an experiment, its YAML, output dir or results.sqlite.
        experiment: Experiment name in the store (default: the most recently updated).

    Returns:
        One row per (condition, seed, target, language, metric): columns ``condition`` (the
        intermediate option, e.g. ``none`` or ``mnli→squad``), ``seed``, ``target``,
        ``language``, ``metric``, ``value`` (0-100) and ``degenerate`` (the run is left out of
        the report's means: diverged loss or majority-class predictions).
    """
    import pandas as pd

    from xstilts.reporting.collect import load_experiment_data
    from xstilts.results.store import ResultsStore

    db, stages = _store(run)
    data = load_experiment_data(db, stages, experiment)
    degenerate = {(r.option, r.target, r.seed): r.degenerate for r in data.runs}
    rows: list[tuple[Any, ...]] = []
    with ResultsStore(db) as store:
        for r in store.runs(data.name):
            for lang, metrics in store.task_metrics(r.target_stage_id, r.target).items():
                for metric, value in metrics.items():
                    flag = degenerate[(r.option, r.target, r.seed)]
                    rows.append((r.option, r.seed, r.target, lang, metric, value, flag))
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return frame.astype({"seed": "int64", "value": "float64", "degenerate": "bool"})


def report(
    run: RunLike | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    experiment: str | None = None,
    n_boot: int = 1000,
    plots: bool = True,
) -> Path:
    """Write the report (HTML, Markdown, CSV/LaTeX tables, plots) of a finished experiment.

    Args:
        run: As for :func:`results`.
        out: Output folder (default: ``<output dir>/report``).
        experiment: Experiment name in the store.
        n_boot: Bootstrap replicates per comparison (at least 100).
        plots: Draw the plots.

    Returns:
        The path of ``report.html``.
    """
    import yaml

    from xstilts.reporting.collect import load_experiment_data
    from xstilts.reporting.report import build_report, write_report

    if n_boot < 100:
        raise ConfigError(f"n_boot={n_boot} is too few for a p-value", key="n_boot",
                          hint="use at least 100 (default 1000)")  # fmt: skip
    db, stages = _store(run)
    data = load_experiment_data(db, stages, experiment)
    built = build_report(data, n_boot=n_boot)
    yaml_text = yaml.safe_dump(data.spec, sort_keys=False, allow_unicode=True) if data.spec else ""
    target = Path(out) if out is not None else db.parent / "report"
    write_report(built, target, yaml_text=yaml_text, plots=plots)
    return target / "report.html"
