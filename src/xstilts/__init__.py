"""xstilts: intermediate-task training chains for zero-shot cross-lingual transfer."""

__version__ = "0.1.0"
