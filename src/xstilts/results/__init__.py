"""The SQLite results store."""

from xstilts.results.store import ResultsStore, Run, versions

__all__ = ["ResultsStore", "Run", "versions"]
