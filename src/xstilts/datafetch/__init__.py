"""Data in: fetch the official data sets into the layout xstilts reads, and check a data dir.

* :mod:`~xstilts.datafetch.sources`: official URLs, published checksums, licences.
* :mod:`~xstilts.datafetch.download`: resumable (HTTP Range), sha256-checked downloads.
* :mod:`~xstilts.datafetch.install`: archives and raw files -> ``xtreme/`` and ``english/``.
* :mod:`~xstilts.datafetch.fetch`: ``xstilts data fetch`` (with the fetch manifest).
* :mod:`~xstilts.datafetch.check`: ``xstilts data check``.
"""
