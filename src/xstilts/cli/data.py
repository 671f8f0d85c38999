"""``xstilts data fetch`` and ``xstilts data check``: get the data, then see what is there.

Registered on the main app by :mod:`xstilts.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xstilts.cli.app import _load, app, console, guarded
from xstilts.errors import ConfigError, DataError

data_app = typer.Typer(
    help="Fetch the official data sets into the layout xstilts reads, or check a data dir.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command(
    "fetch",
    epilog="Examples:  xstilts data fetch xnli pawsx --to data/  |  xstilts data fetch "
    "--to data/ --languages en,de,zh  |  XSTILTS_DATA_MIRROR=http://mirror.lab/xtreme "
    "xstilts data fetch tatoeba --to data/",
)
@guarded
def fetch(
    tasks: Annotated[
        list[str] | None,
        typer.Argument(help="Tasks or data sets (default: all). A task brings its training set."),
    ] = None,
    to: Annotated[Path, typer.Option("--to", help="Data dir to build (xtreme/, english/).")] = Path(
        "data"
    ),
    languages: Annotated[
        str | None, typer.Option(help="Only these languages, comma-separated (e.g. en,de,zh).")
    ] = None,
    mirror: Annotated[
        str | None,
        typer.Option(help="Read official URLs from this mirror (also $XSTILTS_DATA_MIRROR)."),
    ] = None,
    deps: Annotated[
        bool, typer.Option(help="Also fetch the training sets the tasks read (xnli -> mnli).")
    ] = True,
    force: Annotated[bool, typer.Option(help="Fetch again even when installed.")] = False,
    keep_downloads: Annotated[
        bool, typer.Option(help="Keep the downloaded archives under <dir>/.downloads/.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show download progress bars.")] = True,
) -> None:
    """Download (resumable, sha256-checked), install and record data sets; licences printed."""
    from xstilts.datafetch.fetch import fetch as run_fetch
    from xstilts.datafetch.sources import SOURCES, resolve

    chosen = resolve(tasks, deps=deps) if tasks else list(SOURCES)
    langs = [x.strip() for x in languages.split(",") if x.strip()] if languages else None
    if languages is not None and not langs:
        raise ConfigError("--languages is empty", key="--languages", hint="e.g. en,de,zh")
    outcomes = run_fetch(chosen, to, languages=langs, mirror=mirror, force=force,
                         keep_downloads=keep_downloads, console=console,
                         progress=progress)  # fmt: skip
    counts = {s: sum(o.status == s for o in outcomes) for s in ("installed", "present", "manual")}
    console.print(f"{to}: {counts['installed']} installed, {counts['present']} already present, "
                  f"{counts['manual']} to obtain by hand", highlight=False)  # fmt: skip
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise DataError(
            f"{len(failed)} data set(s) failed: "
            + "; ".join(f"{o.source}: {o.message}" for o in failed),
            file=to,
            hint="a network failure: rerun, downloads resume; a checksum mismatch: the upstream "
            "file changed or the mirror is wrong",
        )


@data_app.command(
    "check",
    epilog="Examples:  xstilts data check ../shared/data  |  xstilts data check data/ "
    "--experiment configs/demo.yaml",
)
@guarded
def check(
    data_dir: Annotated[Path, typer.Argument(help="The data dir (holds xtreme/ and english/).")],
    experiment: Annotated[
        Path | None, typer.Option(help="Only what this experiment YAML reads.")
    ] = None,
    task: Annotated[list[str] | None, typer.Option(help="Only these tasks (repeatable).")] = None,
) -> None:
    """What is present, a stand-in or missing (with --experiment: exit 1 if it lacks data)."""
    from xstilts.datafetch.check import catalog_needs, check_dir, experiment_needs

    if not data_dir.is_dir():
        raise DataError("data dir does not exist", file=data_dir,
                        hint="xstilts data fetch --to DIR builds one")  # fmt: skip
    needs = experiment_needs(_load(experiment, [], check_data=False)) if experiment else (
        catalog_needs(task))  # fmt: skip
    rows = check_dir(data_dir, needs)
    title = f"data in {data_dir}" + (f" for {experiment}" if experiment else "")
    table = Table(title=title)
    for col in ("task", "split", "status", "languages", "origin", "needed by", "detail"):
        table.add_column(col, overflow="fold")
    colours = {"present": "green", "stand-in": "yellow", "partial": "red", "missing": "red"}
    for r in rows:
        langs = ", ".join(r.present) if len(r.present) <= 6 else f"{len(r.present)} languages"
        table.add_row(r.need.task, r.need.split, f"[{colours[r.status]}]{r.status}[/]", langs,
                      r.origin, r.need.why, r.detail)  # fmt: skip
    console.print(table)
    bad = [r for r in rows if not r.ok]
    stand_ins = sum(r.status == "stand-in" for r in rows)
    console.print(f"{len(rows) - len(bad)} of {len(rows)} present ({stand_ins} via stand-ins), "
                  f"{len(bad)} missing or partial", highlight=False)  # fmt: skip
    fetch = sorted({r.need.task for r in bad if r.detail.startswith("xstilts data fetch")})
    if fetch:  # one copy-pastable line: a table cell may wrap the command on a narrow terminal
        console.print(f"to fetch: xstilts data fetch {' '.join(fetch)} --to {data_dir}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if bad and experiment:
        raise typer.Exit(1)
