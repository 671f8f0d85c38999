"""The package version, in a module of its own so that lower layers (the results store) can
read it without importing the ``xstilts`` package, which imports them."""

__version__ = "0.1.0"
