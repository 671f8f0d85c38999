"""Stage completion is atomic and locked; checkpoints are atomic and pruned; hygiene rules."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import tiny_encoder
from xstilts.errors import CheckpointError
from xstilts.pipelines import stage
from xstilts.pipelines.locking import StageLock, partial_dir
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.training import checkpointing

SRC = Path(__file__).resolve().parents[1] / "src" / "xstilts"
TINY = tiny_encoder(300, ["sst2"], 50, hidden=16, layers=1)
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, f"{os.getpid()}\\n".encode(), 0)
if sys.argv[2] == "die":
    os.kill(os.getpid(), 9)
print("locked", flush=True)
time.sleep(60)
"""


def test_lock_names_the_live_owner_and_a_killed_owner_never_blocks(tmp_path: Path) -> None:
    stage_dir = tmp_path / "abc"
    lock_file = tmp_path / ".lock-abc"
    # A process that took the lock and was SIGKILLed: the kernel released it.
    dead = subprocess.run([sys.executable, "-c", HOLD_LOCK, str(lock_file), "die"], check=False)
    assert dead.returncode == -9 and lock_file.read_text().strip().isdigit()
    with StageLock(stage_dir):
        assert lock_file.read_text().strip() == str(os.getpid())
    # A live owner: refused, with its pid in the message.
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_file), "hold"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "locked"
        busy = f"already being run by process {owner.pid}"
        with pytest.raises(CheckpointError, match=busy), StageLock(stage_dir):
            pass
    finally:
        owner.kill()
        owner.wait()
    with StageLock(stage_dir):  # free again once the owner is gone
        pass


@pytest.fixture()
def base_spec() -> StageSpec:
    return StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)


def test_crash_while_recording_leaves_an_unpublished_stage_that_resumes(
    base_spec: StageSpec, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / base_spec.stage_id
    cpu = torch.device("cpu")

    def store_down(metrics: dict[str, Any]) -> None:
        raise RuntimeError("results store unavailable")

    with pytest.raises(RuntimeError, match="store unavailable"):
        stage.run_stage(base_spec, out, data_root, None, device=cpu, on_saved=store_down)
    final = partial_dir(out) / "final"
    assert not out.exists() and not stage.is_complete(out)
    assert stage.is_complete(final) and (final / "encoder.safetensors").is_file()

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a saved stage was built again")

    monkeypatch.setattr(stage, "_build_and_train", no_training)
    recorded: list[dict[str, Any]] = []

    def record(metrics: dict[str, Any]) -> None:
        assert not out.exists()  # the store is written before the stage is published
        recorded.append(metrics)

    metrics = stage.run_stage(base_spec, out, data_root, None, device=cpu, on_saved=record)
    assert recorded == [metrics] and metrics["steps"] == 0
    assert stage.is_complete(out) and not partial_dir(out).exists()
    assert {p.name for p in out.iterdir()} >= {"encoder.safetensors", "metrics.json", "COMPLETE"}
    # A second process arriving later finds it complete and does nothing.
    assert stage.run_stage(base_spec, out, data_root, None, device=cpu) == metrics


def _toy() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def test_checkpoints_are_pruned_and_a_torn_write_is_ignored(tmp_path: Path) -> None:
    saver = checkpointing.Checkpointer(tmp_path / "ckpt", keep=2)
    model, _ = _toy()
    best = {"weight": torch.ones(2, 3)}
    for step in (1, 2, 3, 4):
        saver.save(step, model, {"note": step}, {"t": torch.arange(step)}, (step // 2, best))
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    # Best weights of steps 1 and 2 are referenced by checkpoints 3 and 4; step 0's is gone.
    assert names == ["best-00000001.safetensors", "best-00000002.safetensors",
                     "step-00000003", "step-00000004"]  # fmt: skip
    (tmp_path / "ckpt" / ".tmp-step-00000005-1").mkdir()  # a write killed half-way
    assert saver.latest() == tmp_path / "ckpt" / "step-00000004"
    meta, weights, tensors, best_w = saver.load(saver.latest())  # type: ignore[arg-type]
    assert meta["note"] == 4 and meta["step"] == 4
    assert torch.equal(tensors["t"], torch.arange(4))
    assert torch.equal(weights["weight"], model.weight.detach())
    assert best_w is not None and torch.equal(best_w["weight"], torch.ones(2, 3))


def test_optimizer_and_rng_state_round_trip_exactly(tmp_path: Path) -> None:
    model, opt = _toy()
    for _ in range(3):
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    meta, tensors = checkpointing.optimizer_state(opt)
    checkpointing.save_tensors(tmp_path / "optim.safetensors", tensors)  # as a checkpoint does
    tensors = checkpointing.load_tensors(tmp_path / "optim.safetensors")
    model2, opt2 = _toy()
    model2.load_state_dict(model.state_dict())
    checkpointing.load_optimizer_state(opt2, meta, tensors)
    rng_meta, rng_tensors = checkpointing.rng_state()
    x = torch.randn(4, 3)
    expected = (random.random(), float(np.random.rand()), torch.rand(1))
    checkpointing.set_rng_state(rng_meta, rng_tensors)
    assert torch.equal(torch.randn(4, 3), x)
    assert (random.random(), float(np.random.rand())) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
    for m, o in ((model, opt), (model2, opt2)):
        m(x).pow(2).sum().backward()
        o.step()
    assert torch.equal(model.weight, model2.weight)


def test_deterministic_mode_switches_torch_and_cublas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    was = torch.are_deterministic_algorithms_enabled()
    try:
        checkpointing.set_deterministic(False)
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        checkpointing.set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(was)


def test_weights_are_never_unpickled() -> None:
    """No ``torch.load``/pickle anywhere in the package; hub weights are safetensors-only."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"torch\.load\(|^\s*import pickle|from pickle import", text, re.M):
            offenders.append(path.name)
        if "Model.from_pretrained(" in text and not re.search(r"use_safetensors.{1,4}True", text):
            offenders.append(f"{path.name}: from_pretrained without use_safetensors=True")
    assert offenders == []


def test_sigterm_flag_is_set_by_the_signal() -> None:
    with checkpointing.sigterm_flag() as flag:
        assert not flag.requested
        os.kill(os.getpid(), 15)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert flag.requested


def test_failed_stage_record_keeps_the_error_and_the_diverged_step() -> None:
    from xstilts.errors import TrainingError
    from xstilts.pipelines.executor import failure_info

    diverged = TrainingError("training loss is nan at step 7", step=7)
    assert failure_info(diverged) == {
        "error": "TrainingError: training loss is nan at step 7",
        "failed_step": 7,
    }
    assert failure_info(KeyboardInterrupt()) == {"error": "KeyboardInterrupt: "}
