"""xstilts: intermediate-task training chains for zero-shot cross-lingual transfer.

The notebook API (:mod:`xstilts.api`) is imported on first use, so ``import xstilts`` loads
neither torch nor transformers::

    import xstilts
    exp = xstilts.load_experiment("configs/demo.yaml", seeds=[1, 2])
    xstilts.plan(exp); out = xstilts.run(exp)
    df = xstilts.results(out)        # pandas DataFrame
    xstilts.report(out)              # path of report.html
"""

from __future__ import annotations

import types
from typing import Any

from xstilts._version import __version__

_API = ("load_experiment", "plan", "run", "report")
__all__ = ["__version__", *_API, "results"]


def __getattr__(name: str) -> Any:
    """``xstilts.load_experiment`` etc.: import :mod:`xstilts.api` only when first used."""
    if name in _API:
        from xstilts import api

        return getattr(api, name)
    raise AttributeError(f"module 'xstilts' has no attribute {name!r}")


class _CallableResults(types.ModuleType):
    """``xstilts.results`` is the results-store package *and* the function ``results(run)``.

    Python binds a subpackage to its parent's attribute of the same name whenever it is
    imported, so a plain function ``xstilts.results`` would be replaced by the package the first
    time anything imports ``xstilts.results.store``. Making the package itself callable keeps
    both working, whatever is imported first.
    """

    def __call__(self, run: Any, *, experiment: str | None = None) -> Any:
        """Every recorded score as a tidy DataFrame (see :func:`xstilts.api.results`)."""
        from xstilts.api import results as results_frame

        return results_frame(run, experiment=experiment)


# The store package is light (sqlite3, json): no torch here.
from xstilts import results  # noqa: E402 - a submodule, bound after the helpers above

results.__class__ = _CallableResults
