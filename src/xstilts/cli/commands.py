"""``xstilts plan``, ``run``, ``results`` and ``tasks``: the experiment commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.app import (
    DataDirOpt,
    ExperimentArg,
    OverridesArg,
    _data_dir,
    _load,
    _print_plan,
    app,
    console,
    guarded,
    tasks_app,
)


@app.command()
@guarded
def plan(
    experiment: ExperimentArg,
    overrides: OverridesArg = None,
    count: Annotated[bool, typer.Option(help="Count train examples for the savings.")] = True,
) -> None:
    """Show the stage DAG, what is cached, and what sharing prefixes saves (no model loaded)."""
    from xstilts.pipelines.plan import build_plan

    _print_plan(build_plan(_load(experiment, overrides), count_examples=count))


@app.command()
@guarded
def run(
    experiment: ExperimentArg,
    overrides: OverridesArg = None,
    executor: Annotated[str, typer.Option(help="local or ray.")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster: auto or HOST:PORT (default: a local Ray).")
    ] = None,
    nproc_per_node: Annotated[
        int, typer.Option(help="Processes (GPUs) training each stage together (torchrun).")
    ] = 1,
    workers: Annotated[
        int,
        typer.Option(help="Local executor: stages run at once, in worker processes (CPU: 1/core)."),
    ] = 1,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    log: Annotated[
        list[str] | None,
        typer.Option(help="Also log each stage to wandb or mlflow (TensorBoard always)."),
    ] = None,
) -> None:
    """Plan, train every stage not yet cached, evaluate, record, and print the results."""
    import os
    import subprocess
    import sys

    from xstilts.errors import ConfigError
    from xstilts.pipelines import tracking
    from xstilts.pipelines.executor_ranks import follow_plan
    from xstilts.pipelines.plan import build_plan
    from xstilts.training import distributed

    if executor not in ("local", "ray"):
        raise ConfigError(f"unknown executor {executor!r}", key="--executor", hint="local or ray")
    if log:  # the environment carries it to torchrun's and Ray's workers
        os.environ[tracking.ENV] = ",".join(tracking.check_backends(log))
    tracking.requested_backends()  # a tracker that is not installed fails before training
    if not progress:
        from xstilts.notices import quiet_libraries

        quiet_libraries()
    if nproc_per_node < 1 or (nproc_per_node > 1 and executor == "ray"):
        raise ConfigError(
            f"--nproc-per-node {nproc_per_node} needs >= 1 and the local executor",
            key="--nproc-per-node",
        )
    if workers < 1 or (workers > 1 and (executor != "local" or nproc_per_node > 1)):
        raise ConfigError(
            f"--workers {workers} needs >= 1, and more than 1 only with the local executor "
            "and one process per stage",
            key="--workers",
        )
    if nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:  # not launched by torchrun yet
        cmd = distributed.relaunch_command(sys.argv[1:], nproc_per_node)
        raise typer.Exit(subprocess.call(cmd))
    par = distributed.init_from_env()  # torchrun / accelerate launch: one stage, many processes
    try:
        if par.active and executor == "ray":
            raise ConfigError("a multi-process launch needs the local executor", key="--executor")
        exp = _load(experiment, overrides)
        the_plan = build_plan(exp)
        if not par.is_main:
            follow_plan(exp, the_plan)
            return
        _print_plan(the_plan)
        if executor == "local" and workers > 1:
            from xstilts.pipelines.executor_pool import run_experiment_parallel

            pool = run_experiment_parallel(exp, the_plan, workers=workers, progress=progress)
            out = pool.output_dir
        elif executor == "local":
            from xstilts.pipelines.executor import run_experiment

            out = run_experiment(exp, the_plan, progress=progress)
        else:
            from xstilts.pipelines.executor_ray import run_experiment_ray

            summary = run_experiment_ray(exp, the_plan, address=ray_address, progress=progress)
            out = summary.output_dir
    finally:
        distributed.shutdown()
    _print_results(out / "results.sqlite", None, exp.name, exp.stages_dir)


def _print_results(
    db: Path, task: str | None, experiment: str | None, stages_dir: Path | None = None
) -> None:
    from xstilts.reporting.tables import language_table, render, xtreme_table
    from xstilts.results.store import ResultsStore

    with ResultsStore(db) as store:
        if task is not None:
            table = language_table(store, task, experiment, stages_dir=stages_dir)
            console.print(render(table, max_columns=8))
            return
        main = xtreme_table(store, experiment, stages_dir=stages_dir)
        for target in main.columns[:-1]:
            table = language_table(store, target, experiment, stages_dir=stages_dir)
            console.print(render(table, max_columns=8))
        console.print(render(main))


@app.command()
@guarded
def results(
    path: Annotated[Path, typer.Argument(help="Output dir, results.sqlite or experiment YAML.")],
    overrides: OverridesArg = None,
    task: Annotated[str | None, typer.Option(help="Only this task, per language.")] = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment name in the store.")] = None,
) -> None:
    """Print the results tables: per language per target, then the XTREME table."""
    from xstilts.cli.report import resolve

    where = resolve(path, None, overrides)
    _print_results(where.db, task, experiment or where.experiment, where.stages_dir)


@tasks_app.callback(invoke_without_command=True)
@guarded
def tasks(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """Every task: type, languages, and the splits found on disk with example counts."""
    if ctx.invoked_subcommand is not None:
        return
    from xstilts.reporting.task_view import tasks_table

    console.print(tasks_table(_data_dir(data_dir)))


@tasks_app.command("show")
@guarded
def tasks_show(
    name: Annotated[str, typer.Argument(help="Task name.")],
    data_dir: DataDirOpt = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Tokenizer (hub name or path); default: a tiny one.")
    ] = None,
) -> None:
    """One task's spec and three featurized examples decoded back to text."""
    from xstilts.reporting.task_view import show_task

    show_task(console, name, _data_dir(data_dir), tokenizer)
