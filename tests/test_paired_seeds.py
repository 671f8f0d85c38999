"""Paired seeds: within a seed, a target stage starts the same whatever intermediate came before.

The study compares conditions (none, MNLI, QA, chains, mixtures) on the same seeds; the
differences are paired only if each condition's target stage sees the same training sample,
the same head initialisation and the same batch order. Only the encoder may differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from xstilts.pipelines import stage
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.training import batching, loop

TINY = {
    "tiny": {
        "vocab_size": 800,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "seed": 0,
    },
    "tokenizer": {"train_on": ["sst2", "xnli"], "max_lines": 200, "vocab_size": 800},
}


def _spec(task: str, parent: str, role: str, *, seed: int, keep_heads: bool = False) -> StageSpec:
    train = {
        "lr": 1e-3, "weight_decay": 0.01, "warmup_ratio": 0.1, "epochs": 1.0,
        "max_steps": 3, "batch_size": 4, "max_tokens": None, "grad_accum": 1,
        "max_grad_norm": 1.0, "eval_every": None, "patience": None, "max_train_examples": 20,
        "max_dev_examples": 8, "precision": "fp32", "compile": False,
        "tasks": {task: {"max_length": 48}},
    }  # fmt: skip
    return StageSpec(
        kind="train", tasks=(task,), role=role, encoder=TINY, parent=parent, seed=seed,
        train=train, keep_heads=keep_heads,
    )  # fmt: skip


class _Recorder:
    """Wraps what a target stage uses: the examples it featurizes, its head, its batches."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.last: dict[str, Any] = {}
        real_format, real_train, real_stream = stage.get_format, loop.train, batching.BatchStream
        rec = self

        class Fmt:
            def __init__(self, fmt: Any) -> None:
                self._fmt = fmt

            def __getattr__(self, name: str) -> Any:
                return getattr(self._fmt, name)

            def featurize(self, examples: Any, *args: Any, **kw: Any) -> Any:
                # The first call of a stage is the train split (then dev).
                rec.last.setdefault("train_ids", [ex.guid for ex in examples])
                return self._fmt.featurize(examples, *args, **kw)

        class Stream(real_stream):  # type: ignore[misc,valid-type]
            def next(self) -> list[int]:
                out = super().next()
                rec.last.setdefault("batches", []).append(list(out))
                return out

        def train(model: Any, tasks: Any, cfg: Any, **kw: Any) -> Any:
            # Head weights before the first step: the initialisation.
            rec.last["head"] = {k: v.clone() for k, v in model.heads["xnli"].state_dict().items()}
            return real_train(model, tasks, cfg, **kw)

        monkeypatch.setattr(stage, "get_format", lambda t: Fmt(real_format(t)))
        monkeypatch.setattr(stage.loop, "train", train)
        monkeypatch.setattr(loop, "BatchStream", Stream)

    def run(self, spec: StageSpec, root: Path, data: Path, parent: Path) -> dict[str, Any]:
        self.last = {}
        stage.run_stage(spec, root / spec.stage_id, data, parent, device=torch.device("cpu"))
        return self.last


def test_target_stage_is_paired_across_parents(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)
    base_dir = tmp_path / base.stage_id
    stage.run_stage(base, base_dir, data_root, None, device=torch.device("cpu"))
    # Two different intermediates (keep_heads: their heads ride along and are rebuilt on load).
    inter = {}
    for task in ("sst2", "qqp"):
        spec = _spec(task, base.stage_id, "intermediate", seed=1)
        stage.run_stage(spec, tmp_path / spec.stage_id, data_root, base_dir)
        inter[task] = tmp_path / spec.stage_id
    rec = _Recorder(monkeypatch)
    seen = []
    for parent in (base_dir, inter["sst2"], inter["qqp"]):
        for keep in (False, True):
            spec = _spec("xnli", parent.name, "target", seed=1, keep_heads=keep)
            seen.append((parent.name, keep, rec.run(spec, tmp_path, data_root, parent)))
    first = seen[0][2]
    assert len(first["train_ids"]) == 20 and len(first["batches"]) == 3
    assert first["train_ids"] != sorted(first["train_ids"])  # a real sample, not the file's head
    for parent, keep, got in seen[1:]:
        assert got["train_ids"] == first["train_ids"], (parent, keep)
        assert got["batches"] == first["batches"], (parent, keep)
        assert got["head"].keys() == first["head"].keys()
        for k, v in first["head"].items():
            assert torch.equal(got["head"][k], v), (parent, keep, k)
    # ... and the seed does change all three (the recorder would otherwise prove nothing).
    other = rec.run(_spec("xnli", base.stage_id, "target", seed=2), tmp_path, data_root, base_dir)
    assert other["train_ids"] != first["train_ids"]
    assert other["batches"] != first["batches"]
    assert not any(torch.equal(other["head"][k], v) for k, v in first["head"].items() if v.ndim)
