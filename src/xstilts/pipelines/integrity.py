"""Content hashes of a stage's files: a corrupt cached stage is refused, never silently used.

At publication a stage's ``COMPLETE`` marker (its last file) records the sha256 and size of
every file then in the stage directory: weights, configs, tokenizer, spec, trainer state,
metrics. Before a stage is used as a parent or loaded for evaluation, :func:`verify_stage`
re-hashes them; one changed bit gives one :class:`CheckpointError` naming the stage, the file
and how to rebuild it, instead of a different child or a NaN loss blamed on the learning rate.
Files added later (``eval/``, ``examples/``, ``predictions/``) are not covered: evaluation keeps
its own cache.

A stage written before hashes were recorded (``COMPLETE`` holds only its id) is refused too,
with the same rebuild hint: its files cannot be checked, and the standard is that nothing
cached is used without checking it is what it claims to be. A rebuild retrains the stage from
its spec and its (verified) parent.

Hashing streams (hashlib) at roughly disk speed; a stage is hashed at most once per process
while its files keep the same inode, size, mtime and ctime (a parent of many children, or a
stage evaluated right after training, is not hashed again). Writing a file changes its mtime
and ctime, so an edit after verification is still caught.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from xstilts.errors import CheckpointError
from xstilts.fileio import sha256_file, write_json
from xstilts.models.model_io import ENCODER_CONFIG, ENCODER_WEIGHTS, HEADS_WEIGHTS

COMPLETE = "COMPLETE"
MANIFEST_FORMAT = 1
# Every stage has these: a manifest without them (edited, damaged) verifies nothing that matters.
REQUIRED = (ENCODER_WEIGHTS, ENCODER_CONFIG, HEADS_WEIGHTS)
# Signatures (per file: name, device, inode, size, mtime, ctime) of stages verified by this
# process: a hit means the very same, unmodified files were hashed and matched before.
_verified: set[tuple[Any, ...]] = set()
_lock = threading.Lock()


def _stage_files(stage_dir: Path) -> list[str]:
    """Every regular file under ``stage_dir`` (relative, sorted), ``COMPLETE`` excluded."""
    names = []
    for path in sorted(stage_dir.rglob("*")):
        rel = path.relative_to(stage_dir).as_posix()
        if path.is_file() and rel != COMPLETE:
            names.append(rel)
    return names


def _signature(stage_dir: Path, names: list[str]) -> tuple[Any, ...] | None:
    """What identifies these exact files on disk (None when one is missing).

    The directory's own path is left out: publication renames ``final/`` to ``<id>/``, which
    keeps every inode, size and time, so the files are still the ones hashed before.
    """
    parts: list[Any] = []
    for rel in [COMPLETE, *names]:
        try:
            st = os.stat(stage_dir / rel)
        except OSError:
            return None
        parts.append((rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(parts)


def write_manifest(stage_dir: Path, stage_id: str, label: str) -> None:
    """Hash every file of the assembled stage and write ``COMPLETE`` (atomically, last).

    Raises:
        CheckpointError: when the marker cannot be written (see :func:`fileio.atomic_write`).
    """
    stage_dir = Path(stage_dir)
    names = _stage_files(stage_dir)
    files = {
        rel: {"size": (stage_dir / rel).stat().st_size, "sha256": sha256_file(stage_dir / rel)}
        for rel in names
    }
    manifest = {"stage_id": stage_id, "label": label, "format": MANIFEST_FORMAT, "files": files}
    write_json(stage_dir / COMPLETE, manifest)
    signature = _signature(stage_dir, names)
    if signature is not None:  # just hashed: a use right after publication need not re-hash
        with _lock:
            _verified.add(signature)


def _label_of(stage_dir: Path, manifest: Any) -> str:
    """``label [id]`` for messages; an old marker has no label: read it from ``spec.json``."""
    if isinstance(manifest, dict) and manifest.get("label"):
        return f"{manifest['label']} [{stage_dir.name}]"
    try:
        spec = json.loads((stage_dir / "spec.json").read_text(encoding="utf-8"))
        tasks = list(spec.get("tasks") or [])
        label = "base" if spec.get("kind") == "base" else "+".join(tasks) or "?"
        label = f"mix({label})" if len(tasks) > 1 else label
    except (OSError, ValueError, AttributeError):
        label = "stage"
    return f"{label} [{stage_dir.name}]"


def _rebuild_hint(stage_dir: Path) -> str:
    return (
        f"rebuild it: delete {stage_dir} (rm -r) and run the experiment again; only that "
        "stage is rebuilt"
    )


def _read_manifest(stage_dir: Path) -> dict[str, Any]:
    """The recorded hashes, or one error for a marker that holds none (old or damaged)."""
    marker = stage_dir / COMPLETE
    try:
        manifest = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            "stage is missing or incomplete (no COMPLETE marker)", file=stage_dir
        ) from None
    except (OSError, ValueError):
        manifest = None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not _well_formed(files):
        raise CheckpointError(
            f"stage {_label_of(stage_dir, manifest)} records no content hashes (made by an "
            "older xstilts, or its COMPLETE marker is damaged): its files cannot be verified",
            file=marker,
            hint=_rebuild_hint(stage_dir),
        )
    return manifest


def _well_formed(files: Any) -> bool:
    """A mapping of stage-relative names (nothing outside the stage) to sha256 entries that
    covers the weights."""
    if not isinstance(files, dict) or not all(name in files for name in REQUIRED):
        return False
    for name, entry in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            return False
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            return False
    return True


def _mismatch(path: Path, recorded: dict[str, Any]) -> str | None:
    """How ``path`` differs from what was recorded (None: it matches)."""
    try:
        size = path.stat().st_size
    except OSError:
        return "is missing"
    if isinstance(recorded.get("size"), int) and size != recorded["size"]:
        return f"has changed size ({size} bytes, {recorded['size']} recorded)"
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if digest != recorded["sha256"]:
        return "does not match the sha256 recorded when the stage was published"
    return None


def verify_stage(stage_dir: Path) -> None:
    """Check every file recorded in ``COMPLETE`` against its size and sha256.

    Raises:
        CheckpointError: naming the stage (label and id), the first file that is missing or
            differs, and how to rebuild the stage; or when no hashes were recorded.
    """
    stage_dir = Path(stage_dir)
    manifest = _read_manifest(stage_dir)
    files: dict[str, dict[str, Any]] = manifest["files"]
    names = sorted(files)
    signature = _signature(stage_dir, names)
    with _lock:
        if signature is not None and signature in _verified:
            return
    for rel in names:
        path = stage_dir / rel
        problem = _mismatch(path, files[rel])
        if problem is None:
            continue
        raise CheckpointError(
            f"stage {_label_of(stage_dir, manifest)} is corrupt: {rel} {problem}",
            file=path,
            hint=_rebuild_hint(stage_dir),
        )
    if signature is not None:
        with _lock:
            _verified.add(signature)


def is_intact(stage_dir: Path) -> bool:
    """True when :func:`verify_stage` passes (for internal, unpublished stages)."""
    try:
        verify_stage(stage_dir)
    except CheckpointError:
        return False
    return True
