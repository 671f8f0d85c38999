"""The synthetic demo data set: ``xstilts demo-data`` and the README demo's fallback.

* :mod:`~xstilts.demo.lexicon`: the hand-written lexicon and sentence templates.
* :mod:`~xstilts.demo.data`: facts rendered through them into the official file formats.
"""

from xstilts.demo.data import write_demo_data

__all__ = ["write_demo_data"]
