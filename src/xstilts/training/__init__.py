"""Training and evaluation: batching, optimizer, mixture sampling, the loop, zero-shot evaluation.

Import from the submodules (``xstilts.training.loop``, ``.evaluate``, ...); this package keeps
its ``__init__`` import-free so that importing one piece does not pull in all the others.
"""
