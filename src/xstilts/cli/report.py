"""``xstilts report`` and ``xstilts export``: read a finished experiment, never train.

Registered on the main app by :mod:`xstilts.cli`. Both accept an experiment output directory,
its ``results.sqlite`` or the experiment YAML (as ``xstilts results`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.app import OverridesArg, _load, app, console, guarded
from xstilts.errors import ConfigError, DataError

PathArg = Annotated[
    Path, typer.Argument(help="Experiment output dir, its results.sqlite, or the experiment YAML.")
]
StagesOpt = Annotated[
    Path | None, typer.Option(help="Stage cache dir (default: from the YAML, else <dir>/stages).")
]
ExperimentOpt = Annotated[str | None, typer.Option(help="Experiment name in the store.")]


@dataclass(frozen=True)
class Resolved:
    """Where a finished experiment's results live (:func:`resolve`)."""

    db: Path
    stages_dir: Path | None
    out_dir: Path
    yaml_text: str = ""
    experiment: str | None = None


def resolve(path: Path, stages_dir: Path | None, overrides: list[str] | None = None) -> Resolved:
    """The results store, stage cache, output dir, YAML text and experiment name of ``path``.

    A YAML is read with its ``key.path=value`` overrides, so ``output_dir=...`` or ``name=...``
    given to ``run`` find the same store and experiment here (not a stale one).

    Raises:
        ConfigError: overrides given with something other than the experiment YAML.
        DataError: no results store where one is expected.
    """
    yaml_text, name = "", None
    if path.suffix in (".yaml", ".yml"):
        exp = _load(path, overrides, check_data=False)
        db, out_dir, name = exp.store_path, exp.output_dir, exp.name
        stages_dir = stages_dir or exp.stages_dir
        yaml_text = path.read_text(encoding="utf-8")
    elif overrides:
        raise ConfigError(
            f"override {overrides[0]!r} given with {path}, which is not an experiment YAML",
            key=overrides[0].split("=", 1)[0],
            hint="pass the experiment YAML to apply overrides, or drop them",
        )
    elif path.is_dir():
        db, out_dir = path / "results.sqlite", path
    else:
        db, out_dir = path, path.parent
    if not db.is_file():
        raise DataError("no results store found (run the experiment first)", file=db)
    return Resolved(db, stages_dir, out_dir, yaml_text, name)


@app.command()
@guarded
def report(
    path: PathArg,
    overrides: OverridesArg = None,
    out: Annotated[Path | None, typer.Option(help="Output dir (default: <dir>/report).")] = None,
    stages_dir: StagesOpt = None,
    experiment: ExperimentOpt = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates per comparison.")] = 1000,
    plots: Annotated[bool, typer.Option(help="Draw the plots.")] = True,
) -> None:
    """Tables (Markdown, CSV, LaTeX), significance, plots and one HTML file."""
    import yaml

    from xstilts.reporting.collect import load_experiment_data
    from xstilts.reporting.report import build_report, write_report

    if n_boot < 100:
        raise ConfigError(f"--n-boot {n_boot} is too few for a p-value", key="--n-boot",
                          hint="use at least 100 (default 1000)")  # fmt: skip
    where = resolve(path, stages_dir, overrides)
    data = load_experiment_data(where.db, where.stages_dir, experiment or where.experiment)
    built = build_report(data, n_boot=n_boot)
    yaml_text = where.yaml_text
    if not yaml_text and data.spec:
        yaml_text = yaml.safe_dump(data.spec, sort_keys=False, allow_unicode=True)
    target = out or where.out_dir / "report"
    files = write_report(built, target, yaml_text=yaml_text, plots=plots)
    for line in built.verdict:
        console.print(line, markup=False)
    console.print(f"wrote {len(files)} files; open {target / 'report.html'}", markup=False)


@app.command(
    epilog="Examples:  xstilts export runs/demo  |  xstilts export runs/demo --format hf "
    "--chain 'mnli→pawsx' --seed 1 --head pawsx  |  xstilts export runs/demo --format hf "
    "--stage 3f2a9c"
)
@guarded
def export(
    path: PathArg,
    overrides: OverridesArg = None,
    format: Annotated[
        str, typer.Option("--format", help="xtreme (predictions) or hf (a stage's model).")
    ] = "xtreme",
    out: Annotated[
        Path | None,
        typer.Option(help="Output dir (default: <dir>/export-xtreme or <dir>/export-hf/<stage>)."),
    ] = None,
    stages_dir: StagesOpt = None,
    experiment: ExperimentOpt = None,
    stage: Annotated[str | None, typer.Option(help="hf: stage id (or a unique prefix).")] = None,
    chain: Annotated[
        str | None, typer.Option(help="hf: a chain label, e.g. 'mnli→pawsx' (its last stage).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="hf: the chain's seed.")] = None,
    head: Annotated[
        str | None, typer.Option(help="hf: also export this head as AutoModelFor... .")
    ] = None,
) -> None:
    """Predictions in XTREME's evaluate.py layout, or one stage as a Hugging Face model folder."""
    if format not in ("xtreme", "hf"):
        raise ConfigError(f"unknown export format {format!r}", key="--format", hint="xtreme or hf")
    where = resolve(path, stages_dir, overrides)
    experiment = experiment or where.experiment
    if format == "hf":
        _export_hf(where, out, experiment, stage, chain, seed, head)
        return
    from xstilts.reporting.collect import load_experiment_data
    from xstilts.reporting.export import export_xtreme

    target = out or where.out_dir / "export-xtreme"
    data = load_experiment_data(where.db, where.stages_dir, experiment)
    manifest = export_xtreme(data, target)
    for line in manifest["skipped"]:
        console.print(f"skipped: {line}", markup=False)
    n = sum(len(s["files"]) for s in manifest["submissions"].values())
    console.print(
        f"wrote {n} prediction files in {len(manifest['submissions'])} submission folders "
        f"under {target}",
        markup=False,
    )


def _export_hf(
    where: Resolved,
    out: Path | None,
    experiment: str | None,
    stage: str | None,
    chain: str | None,
    seed: int | None,
    head: str | None,
) -> None:
    """``export --format hf``: pick the stage (``--stage`` or ``--chain``), write, verify."""
    from xstilts.reporting.export_hf import chain_stage, export_hf, find_stage

    if (stage is None) == (chain is None):
        raise ConfigError(
            "--format hf needs exactly one of --stage or --chain",
            key="--stage",
            hint="stage ids: `xstilts plan EXP`; chains: `xstilts results DIR`",
        )
    stages = where.stages_dir or where.out_dir / "stages"
    if stage is not None:
        stage_dir = find_stage(stages, stage)
    else:
        stage_dir = chain_stage(where.db, stages, chain or "", seed, experiment)
    name = stage_dir.name + (f"-{head}" if head else "")
    target = out or where.out_dir / "export-hf" / name
    manifest = export_hf(stage_dir, target, head)
    console.print(
        f"wrote {manifest['class']} ({manifest['label']}, stage {manifest['stage_id']}) to "
        f"{target}; verified: max |diff| {manifest['max_abs_diff']:.2g} vs xstilts; load with "
        f"{manifest['load']}",
        markup=False,
    )
