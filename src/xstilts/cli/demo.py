"""``xstilts demo-data``: write the synthetic fixture data set the README demo falls back to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.app import app, console, guarded


@app.command("demo-data")
@guarded
def demo_data(
    out: Annotated[Path, typer.Option(help="Data root to write (english/ and xtreme/ go here).")],
    seed: Annotated[int, typer.Option(help="Generation seed (same seed, same bytes).")] = 0,
) -> None:
    """Write a small SYNTHETIC data set for configs/demo.yaml (official formats, XTREME layout)."""
    from xstilts.demo import write_demo_data

    written = write_demo_data(out, seed)
    console.print(f"wrote {len(written)} synthetic data files under {out} (seed {seed})")
