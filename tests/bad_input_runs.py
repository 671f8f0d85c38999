"""Triggers of the checkpoint and training failures of the malformed-input catalogue."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from xstilts.tasks import get_task
from xstilts.tasks.formats import FeaturizeConfig

Trigger = Callable[[Path, pytest.MonkeyPatch], Any]


def _tiny_model() -> Any:
    """An ``XstiltsModel``: a 1-layer random encoder and one linear head ``h``."""
    from xstilts.models.encoder import load_encoder
    from xstilts.models.model import XstiltsModel

    tiny = {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "seed": 0}  # fmt: skip
    return XstiltsModel(load_encoder({"tiny": tiny}), {"h": torch.nn.Linear(8, 2)})


def _tiny_stage(tmp: Path) -> Path:
    """:func:`_tiny_model` saved in ``tmp/stage``."""
    from xstilts.models import model_io

    model_io.save_model(_tiny_model(), tmp / "stage", {"h": {"task": "sst2"}})
    return tmp / "stage"


def shape_mismatch(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.models import model_io

    stage = _tiny_stage(tmp)
    cfg = json.loads((stage / "encoder_config.json").read_text())
    cfg["intermediate_size"] = 32
    (stage / "encoder_config.json").write_text(json.dumps(cfg))
    return model_io.load_encoder_from_dir(stage)


def corrupt(name: str, cut: int | None) -> Trigger:
    """Truncate (``cut`` bytes kept) or delete (``None``) a saved stage file, then load it."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        from xstilts.models import model_io

        path = _tiny_stage(tmp) / name
        _ = path.unlink() if cut is None else path.write_bytes(path.read_bytes()[:cut])
        model_io.load_heads_state(path.parent)
        return model_io.load_encoder_from_dir(path.parent)

    return trigger


def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_final_save(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.models import model_io

    model = _tiny_model()
    mp.setattr(model_io, "save_file", _disk_full)
    return model_io.save_model(model, tmp / "stage", {})


def _toy_train(tmp: Path, nan_at: int | None = None) -> Any:
    """Train a 1-parameter toy model for 4 steps with checkpoints (NaN loss at ``nan_at``)."""
    from xstilts.training import loop

    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, batch: Any, head: str) -> torch.Tensor:
            self.calls += 1
            bad = nan_at is not None and self.calls >= nan_at
            return self.w * (float("nan") if bad else 1.0)  # [1]

    class Fmt:
        def loss(self, logits: torch.Tensor, batch: Any) -> torch.Tensor:
            return (logits**2).sum()

    feats = [{"sequences": [[0, 5, 2]]} for _ in range(4)]
    fmt: Any = Fmt()
    task = loop.TrainTask("toy", get_task("sst2"), "h", fmt, feats, [], [], FeaturizeConfig())
    cfg = loop.TrainConfig(lr=0.1, batch_size=1, max_steps=4, checkpoint_every=1)
    return loop.train(Toy(), [task], cfg, device=torch.device("cpu"), checkpoint_dir=tmp / "c")


def checkpoint_disk_full(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.training import checkpointing

    real = checkpointing.save_file
    calls = {"n": 0}

    def fail_third_checkpoint(tensors: Any, path: str, **kw: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 4:  # two checkpoints of two files each succeed
            _disk_full()
        real(tensors, path, **kw)

    mp.setattr(checkpointing, "save_file", fail_third_checkpoint)
    try:
        return _toy_train(tmp)
    finally:
        names = sorted(p.name for p in (tmp / "c").glob("step-*"))
        assert names == ["step-00000001", "step-00000002"], names  # the good ones stay


def corrupt_resume_checkpoint(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    _toy_train(tmp)
    latest = sorted((tmp / "c").glob("step-*"))[-1]
    (latest / "model.safetensors").write_bytes(b"\x00" * 10)
    return _toy_train(tmp)


def nan_loss(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    try:
        return _toy_train(tmp, nan_at=3)
    finally:  # the last good checkpoint (step 2) is kept
        names = sorted(p.name for p in (tmp / "c").glob("step-*"))
        assert names[-1] == "step-00000002", names


def locked(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.pipelines.locking import StageLock

    with StageLock(tmp / "abc123"), StageLock(tmp / "abc123"):
        pass


def incomplete_parent(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.pipelines import stage
    from xstilts.pipelines.stage_spec import StageSpec

    spec = StageSpec(kind="train", tasks=("sst2",), role="intermediate", encoder={},
                     parent="p", seed=0)  # fmt: skip
    (tmp / "parent").mkdir()
    return stage.run_stage(spec, tmp / spec.stage_id, tmp, tmp / "parent")
