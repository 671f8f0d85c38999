"""The ``xstilts`` Typer app and what every command module shares: console, error guard, options.

Command modules (``xstilts.cli.commands``, ``data``, ``report``, ``demo``, ``convert``) import
this module and register on :data:`app`; ``xstilts.cli`` imports them all. Every user error (an
:class:`XstiltsError`) is printed as ONE red line on stderr with exit code 2, never as a
traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from xstilts.errors import XstiltsError

F = TypeVar("F", bound=Callable[..., Any])
EXAMPLES = """Examples:

  xstilts tasks                                   what is on disk (default data dir)

  xstilts plan configs/demo.yaml                  stage DAG and cache, nothing trained

  xstilts run configs/demo.yaml seeds=[1,2] train.lr=2e-5

  xstilts results runs/demo                       per-language tables + XTREME table

  xstilts report runs/demo                        HTML/Markdown report with significance

  xstilts export runs/demo --format hf --chain 'mnli→pawsx' --head pawsx

  xstilts data fetch xnli pawsx --to data/        official sources, checksummed

  xstilts data check data/ --experiment configs/demo.yaml
"""
app = typer.Typer(
    name="xstilts",
    help="Intermediate-task training chains for zero-shot cross-lingual transfer (XTREME).",
    epilog=EXAMPLES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="List tasks, or show one (`xstilts tasks show NAME`).")
app.add_typer(tasks_app, name="tasks")
console = Console()

ExperimentArg = Annotated[Path, typer.Argument(help="Experiment YAML file.")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="key.path=value overrides, e.g. train.lr=2e-5")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(help="Data root (default: $XSTILTS_DATA_DIR, else ../shared/data)."),
]


def _print_version(value: bool) -> None:
    """``--version``: xstilts and the versions of the stack it runs on (nothing heavy imported)."""
    if value:
        from xstilts.results.store import versions

        v = versions()
        typer.echo(f"xstilts {v['xstilts']} (torch {v['torch']}, transformers "
                   f"{v['transformers']}, python {v['python']})")  # fmt: skip
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print versions and exit."
        ),
    ] = False,
) -> None:
    """Intermediate-task training chains for zero-shot cross-lingual transfer (XTREME)."""


def guarded(func: F) -> F:
    """Turn an XstiltsError into one red stderr line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except XstiltsError as exc:
            text = " ".join(str(exc).split())  # one line, whatever the message holds
            typer.echo(typer.style(f"error: {text}", fg="red"), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _load(path: Path, overrides: list[str] | None, check_data: bool = True) -> Any:
    from xstilts.pipelines.experiment import load_experiment

    return load_experiment(path, overrides or [], check_data=check_data)


def _print_plan(plan: Any) -> None:
    from xstilts.reporting.plan_view import plan_summary, plan_tree

    console.print(plan_tree(plan))
    for line in plan_summary(plan):
        console.print(line)


def _data_dir(option: Path | None) -> Path:
    from xstilts.pipelines.experiment import default_data_dir

    return option if option is not None else default_data_dir()
