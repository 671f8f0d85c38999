"""The ``xstilts`` command line (console script ``xstilts = xstilts.cli:app``).

:mod:`xstilts.cli.app` holds the Typer app and the shared helpers; each command module below
registers its commands on it when imported, so importing this package builds the full CLI.
"""

from __future__ import annotations

# Import order is the order of `xstilts --help`.
from xstilts.cli import commands, convert, data, demo, report  # noqa: F401 - they register
from xstilts.cli.app import app


def main() -> None:
    """Entry point for ``python -m xstilts``."""
    app(prog_name="xstilts")


__all__ = ["app", "main"]
