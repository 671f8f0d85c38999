"""Mid-stage checkpoints: everything a killed training loop needs to continue bit-identically.

A checkpoint is a directory ``<checkpoints>/step-<NNNNNNNN>/`` holding

* ``model.safetensors``: the full model ``state_dict`` (encoder and every head);
* ``tensors.safetensors``: optimizer moments, the torch CPU/CUDA RNG states (``uint8``) and any
  auxiliary-objective generator state;
* ``state.json``: step, optimizer hyper-parameters, LR-scheduler state, Python/NumPy RNG states,
  batch-stream positions, the task sampler's RNG, counters, the dev curve and the early-stopping
  state (its best weights live in ``<checkpoints>/best-<step>.safetensors``, referenced by name).

Nothing is ever unpickled: tensors go through safetensors, everything else through JSON.
A checkpoint is written into ``.tmp-step-*`` (every file fsynced) and renamed into place, so a
kill mid-write leaves the previous checkpoint as the latest; older ones are pruned afterwards.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xstilts.errors import CheckpointError
from xstilts.fileio import atomic_write, fsync_dir, write_json

STATE_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{8})$")
# Test hooks: "step:7" kills the process at the start of step 7, "ckpt:7" in the middle of
# writing checkpoint 7, "save:weights"/"save:store"/"save:publish" during a stage's final
# save. SIGKILL cannot be caught: exactly what a pre-emption or an OOM killer does to a run.
KILL_ENV = "XSTILTS_KILL_AT"
TERM_ENV = "XSTILTS_TERM_AT"


def kill_hook(point: str) -> None:
    """Signal this process when ``$XSTILTS_KILL_AT`` / ``$XSTILTS_TERM_AT`` names ``point``."""
    if os.environ.get(KILL_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(TERM_ENV) == point:
        os.kill(os.getpid(), signal.SIGTERM)


def set_deterministic(enabled: bool) -> None:
    """Opt-in deterministic kernels (needed for bit-identical GPU runs; slower).

    cuBLAS only reads ``CUBLAS_WORKSPACE_CONFIG`` when its handle is created, so it is set
    here before the first matmul of the stage; torch raises if a kernel has no deterministic
    variant rather than silently differing.
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


class SigtermFlag:
    """Set when SIGTERM arrives; the loop checkpoints at the end of the current step."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.requested = True


@contextmanager
def sigterm_flag() -> Iterator[SigtermFlag]:
    """Catch SIGTERM during training (main thread only: elsewhere signals cannot be handled)."""
    flag = SigtermFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGTERM, flag._handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ atomic files


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Atomically write CPU copies of ``tensors`` (each with its own storage) as safetensors."""
    # Tied weights share storage, which safetensors refuses: give every tensor its own copy.
    cpu = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp)))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (never pickle).

    Raises:
        CheckpointError: missing, truncated or corrupt file.
    """
    if not path.is_file():
        raise CheckpointError("checkpoint file is missing", file=path)
    try:
        return load_file(str(path), device="cpu")
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(
            f"checkpoint file is corrupt: {exc}", file=path,
            hint="delete this checkpoint directory to resume from the one before",
        ) from exc  # fmt: skip


# ------------------------------------------------------------------ state <-> (json, tensors)


def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Python, NumPy and torch (CPU + every CUDA device) RNG states."""
    # legacy=True: the (name, keys, pos, has_gauss, gauss) tuple, not the dict form.
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    meta = {
        "python": python_rng_to_json(random.getstate()),
        "numpy": [name, np.asarray(keys).tolist(), pos, has_gauss, gauss],
    }
    tensors = {"rng.torch": torch.get_rng_state()}  # ByteTensor
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return meta, tensors


def set_rng_state(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(python_rng_from_json(meta["python"]))
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def python_rng_to_json(state: tuple[Any, ...]) -> list[Any]:
    """``random.Random.getstate()`` as JSON (version, 625 ints, cached gauss)."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def python_rng_from_json(value: list[Any]) -> tuple[Any, ...]:
    """Inverse of :func:`python_rng_to_json`."""
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Optimizer state: hyper-parameters as JSON, per-parameter tensors keyed ``optim.<i>.<k>``."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return {"param_groups": sd["param_groups"], "scalars": scalars}, tensors


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Restore what :func:`optimizer_state` returned."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    groups = [dict(g) for g in meta["param_groups"]]
    for g in groups:  # JSON turned tuples into lists
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ------------------------------------------------------------------ the checkpoint directory


class Checkpointer:
    """Writes, finds, loads and prunes the checkpoints of one stage.

    Args:
        directory: ``<partial stage dir>/checkpoints``.
        keep: How many complete checkpoints to keep (the newest ones).
    """

    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = max(1, keep)

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints present, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [_STEP_DIR.match(p.name) for p in self.directory.iterdir() if p.is_dir()]
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self) -> Path | None:
        """The newest complete checkpoint, if any."""
        steps = self.steps()
        return self.directory / f"step-{steps[-1]:08d}" if steps else None

    def save(
        self,
        step: int,
        model: torch.nn.Module,
        meta: dict[str, Any],
        tensors: dict[str, torch.Tensor],
        best: tuple[int, Mapping[str, torch.Tensor]] | None,
    ) -> Path:
        """Write checkpoint ``step`` atomically, then prune the old ones.

        Args:
            step: Optimizer steps done.
            model: Its whole ``state_dict`` is saved.
            meta: JSON-able state (see the module doc).
            tensors: Other tensors (optimizer, RNG).
            best: ``(step, weights)`` of the best dev state, saved once per best step.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"step-{step:08d}"
        tmp = self.directory / f".tmp-step-{step:08d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        meta = {"version": STATE_VERSION, "step": step, **meta, "best_file": None}
        if best is not None:
            meta["best_file"] = f"best-{best[0]:08d}.safetensors"
            if not (self.directory / meta["best_file"]).is_file():
                save_tensors(self.directory / meta["best_file"], best[1])
        try:
            save_tensors(tmp / "model.safetensors", model.state_dict())
            kill_hook(f"ckpt:{step}")
            save_tensors(tmp / "tensors.safetensors", tensors)
            write_json(tmp / "state.json", meta)
            shutil.rmtree(final, ignore_errors=True)  # a re-run of the same step after a kill
            os.replace(tmp, final)
            fsync_dir(self.directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._prune()
        return final

    def load(
        self, path: Path
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor], Any]:
        """``(meta, model weights, other tensors, best weights or None)`` of checkpoint ``path``.

        Raises:
            CheckpointError: a missing/corrupt file or an unknown state version.
        """
        state_path = path / "state.json"
        try:
            meta = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"unreadable checkpoint state: {exc}", file=state_path) from exc
        if meta.get("version") != STATE_VERSION:
            raise CheckpointError(
                f"checkpoint state version {meta.get('version')!r} != {STATE_VERSION}",
                file=state_path, hint="delete the stage's .partial-* directory to start over",
            )  # fmt: skip
        best = None
        if meta.get("best_file"):
            best = load_tensors(self.directory / meta["best_file"])
        model = load_tensors(path / "model.safetensors")
        return meta, model, load_tensors(path / "tensors.safetensors"), best

    def _prune(self) -> None:
        """Drop all but the newest ``keep`` checkpoints and best-weight files nobody references."""
        steps = self.steps()
        for old in steps[: -self.keep]:
            shutil.rmtree(self.directory / f"step-{old:08d}", ignore_errors=True)
        referenced = set()
        for step in steps[-self.keep :]:
            try:
                meta = json.loads((self.directory / f"step-{step:08d}" / "state.json").read_text())
            except (OSError, ValueError):
                continue
            referenced.add(meta.get("best_file"))
        for path in self.directory.glob("best-*.safetensors"):
            if path.name not in referenced:
                path.unlink(missing_ok=True)
