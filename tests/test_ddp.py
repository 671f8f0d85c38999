"""Data-parallel stages: the sharding rules, and a 2-process (gloo, CPU) stage that matches the
single-process stage trained on the same global batches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

# Only light imports at module level: the spawned workers of the gradient test import this
# module, on a loaded 2-core machine each heavy import costs seconds. The rest: in the tests.
from conftest import tiny_encoder
from xstilts.training.distributed import (
    Parallel,
    context,
    init_from_env,
    relaunch_command,
    shutdown,
)

# Dropout draws different masks for differently split batches; with it off the two runs may
# differ only by how the batches were split (and float summation order).
RUNNER = """
import sys
import torch
torch.nn.Dropout.forward = lambda self, x: x
from xstilts.cli import app
app(sys.argv[1:], prog_name="xstilts")
"""


def test_shards_are_disjoint_and_cover_every_batch() -> None:
    batch = [7, 3, 9, 4, 1]
    shards = [Parallel(rank=r, world_size=2).shard(batch) for r in range(2)]
    assert shards == [[7, 9, 1], [3, 4]]
    assert Parallel().shard(batch) == batch
    three = [Parallel(rank=r, world_size=3).shard([5]) for r in range(3)]
    assert three == [[5], [], []]  # an empty share skips the forward, never drops a row
    # Weights: each rank's share of the rows, so the weighted shard means sum to the batch mean.
    assert [Parallel(rank=r, world_size=2).split(batch)[1] for r in range(2)] == [0.6, 0.4]
    losses = [2.0, 4.0, 6.0, 8.0, 10.0]  # per row, in batch order
    total = 0.0
    for r in range(2):
        share, weight = Parallel(rank=r, world_size=2).split(range(5))
        total += weight * sum(losses[i] for i in share) / len(share)
    assert total == pytest.approx(sum(losses) / 5)


def test_single_process_context_is_inert() -> None:
    par = context()
    assert (par.rank, par.world_size, par.active, par.is_main) == (0, 1, False, True)
    assert par.broadcast_object({"a": 1}) == {"a": 1}


def test_relaunch_command_drops_its_own_option() -> None:
    argv = ["run", "exp.yaml", "--nproc-per-node", "4", "train.lr=1e-4", "--no-progress"]
    cmd = relaunch_command(argv, 4)
    assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node=4", "-m"]  # fmt: skip
    assert cmd[6:] == ["xstilts", "run", "exp.yaml", "train.lr=1e-4", "--no-progress"]
    assert relaunch_command(["run", "x.yaml", "--nproc-per-node=2"], 2)[-2:] == ["run", "x.yaml"]


def _sync_worker(rank: int, port: int, out: str) -> None:
    """One rank of a 2-process gloo group: gradients, counters and rank-0 results synced."""
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank)}
    os.environ.update(env, WORLD_SIZE="2", LOCAL_RANK=str(rank))
    par = init_from_env()
    model = torch.nn.Module()
    model.a = torch.nn.Parameter(torch.zeros(3))
    model.b = torch.nn.Parameter(torch.zeros(2))  # used by no rank
    model.c = torch.nn.Parameter(torch.zeros(1))  # used by rank 1 only
    if rank == 0:
        loss = (model.a * torch.tensor([1.0, 2.0, 3.0])).sum()
    else:
        loss = (model.a * torch.tensor([10.0, 20.0, 30.0])).sum() + 5 * model.c.sum()
    loss.backward()
    counters = SimpleNamespace(step_loss=float(1 + 2 * rank), real_tokens=10 - 5 * rank,
                               processed_tokens=20, examples=4)  # fmt: skip
    par.sync_gradients(model, counters)
    par.gather_counters(counters)
    result = {
        "a": model.a.grad.tolist(), "b": model.b.grad, "c": model.c.grad.tolist(),
        "loss": float(counters.step_loss), "tokens": counters.real_tokens,
        "examples": counters.examples, "main": par.on_main(lambda: f"rank {rank}"),
    }  # fmt: skip
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    shutdown()


def test_gradients_are_summed_and_unused_ones_stay_none(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_sync_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    for got in results:
        assert got["a"] == [11.0, 22.0, 33.0]
        assert got["b"] is None  # the optimizer skips it, as in one process
        assert got["c"] == [5.0]  # zeros on rank 0 + 5 on rank 1
        assert got["loss"] == 2.0  # mean of 1 and 3
        assert (got["tokens"], got["examples"]) == (15, 8)
        assert got["main"] == "rank 0"


def test_cli_relaunches_itself_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from xstilts.cli import app

    calls: list[list[str]] = []

    def fake_call(cmd: list[str]) -> int:
        calls.append(cmd)
        return 3  # the launcher's exit code must come back out

    argv = ["xstilts", "run", "exp.yaml", "--nproc-per-node", "2", "--no-progress"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 3
    assert calls == [relaunch_command(argv[1:], 2)]
    assert calls[0][-4:] == ["xstilts", "run", "exp.yaml", "--no-progress"]

    bad = CliRunner().invoke(app, [*argv[1:3], "--executor", "ray", "--nproc-per-node", "2"])
    assert bad.exit_code == 2 and "--nproc-per-node" in bad.output and calls == calls[:1]


def _write_experiment(data_root: Path, path: Path, out: Path) -> Path:
    raw: dict[str, Any] = {
        "name": "ddp",
        "data_dir": str(data_root),
        "output_dir": str(out),
        "encoder": tiny_encoder(
            500, ["pawsx"], 200, layers=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ),
        "seeds": [1],
        "intermediate": ["none"],
        "targets": ["pawsx"],
        "train": {
            "lr": 1e-3,
            "max_steps": 3,
            "batch_size": 8,
            "grad_accum": 2,
            "max_train_examples": 48,
            "max_dev_examples": 16,
            "max_length": 128,
            "precision": "fp32",
        },
        "evaluation": {"max_eval_examples": 16, "languages": {"pawsx": ["en", "de"]}},
    }
    path.write_text(json.dumps(raw))  # JSON is YAML
    return path


def _stage(exp_path: Path) -> tuple[Any, Any]:
    from xstilts.pipelines.experiment import load_experiment
    from xstilts.pipelines.plan import build_plan

    exp = load_experiment(exp_path, [])
    plan = build_plan(exp, count_examples=False)
    return exp, next(s for s in plan.stages if s.spec.kind == "train")


@pytest.mark.slow
def test_two_process_stage_matches_single_process(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    from xstilts.pipelines import executor
    from xstilts.pipelines.plan import build_plan
    from xstilts.results.store import ResultsStore

    single_yaml = _write_experiment(data_root, tmp_path / "single.yaml", tmp_path / "single")
    ddp_yaml = _write_experiment(data_root, tmp_path / "ddp.yaml", tmp_path / "ddp")
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(runner), "run", str(ddp_yaml), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    with monkeypatch.context() as m:  # meanwhile, the single-process reference, in-process
        m.setattr(torch.nn.Dropout, "forward", lambda self, x: x)
        exp, ref = _stage(single_yaml)
        executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    output = proc.communicate(timeout=600)[0].decode(errors="replace")
    assert proc.returncode == 0, output[-3000:]

    ddp_exp, got = _stage(ddp_yaml)
    assert got.stage_id == ref.stage_id
    m_ref = json.loads((ref.dir / "metrics.json").read_text())
    m_got = json.loads((got.dir / "metrics.json").read_text())
    # Counters are gathered from both ranks: the same examples and real tokens in total ...
    for key in ("steps", "train_examples", "examples_passes", "real_tokens"):
        assert m_got[key] == m_ref[key], key
    assert m_ref["steps"] == 3 and m_ref["examples_passes"] == 3 * 2 * 8
    # ... but each rank padded only its own half of each batch.
    assert m_got["processed_tokens"] < m_ref["processed_tokens"]

    w_ref = load_file(ref.dir / "encoder.safetensors")
    w_got = load_file(got.dir / "encoder.safetensors")
    base = load_file(ref.dir.parent / ref.spec.parent / "encoder.safetensors")
    moved = max((w_ref[k] - base[k]).abs().max().item() for k in w_ref)
    diff = max((w_ref[k] - w_got[k]).abs().max().item() for k in w_ref)
    assert moved > 1e-3  # training really changed the weights ...
    assert diff < 1e-5, diff  # ... and both runs changed them the same way

    with ResultsStore(exp.store_path) as a, ResultsStore(ddp_exp.store_path) as b:
        scores_ref, scores_got = (
            a.task_metrics(ref.stage_id, "pawsx"),
            b.task_metrics(got.stage_id, "pawsx"),
        )
    assert set(scores_ref) == {"en", "de"}
    for lang, metrics in scores_ref.items():
        assert scores_got[lang] == pytest.approx(metrics, abs=1e-6)
    # Only rank 0 wrote to the shared cache: the plan's stages and nothing else.
    published = {p.name for p in ddp_exp.stages_dir.iterdir() if not p.name.startswith(".")}
    assert published == {ref.spec.parent, ref.stage_id}
