"""Faithful resume: a stage SIGKILLed at random steps or during its final save ends identical.

Each run is a separate process (forked from one launcher that imported torch once) training
one tiny mixture stage (sst2 + pawsx, MLM auxiliary, dropout on, several epochs per task, dev
evaluation every 5 steps, checkpoint every 3 steps) on CPU. ``$XSTILTS_KILL_AT`` makes the
process SIGKILL itself at a named point: the start of a step (``step:k``), the middle of
writing checkpoint ``k`` (``ckpt:k``) or the final save. The kill points are drawn at random
per run and printed (``XSTILTS_RESUME_SEED`` replays a draw).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from conftest import tiny_encoder
from xstilts.pipelines import stage
from xstilts.pipelines.stage_spec import StageSpec

TOTAL_STEPS = 20
CKPT_EVERY = 3
TINY = tiny_encoder(600, ["sst2"], 200)
# One interpreter imports everything once, then forks a child per run (kill hooks in its env);
# each child trains with the network cut off and one thread (the same arithmetic in every run).
# After each child the parent notes what it left on disk, and prints all notes as JSON.
LAUNCHER = """
import json, os, socket, sqlite3, sys, traceback
from functools import partial
from pathlib import Path
import torch
torch.set_num_threads(1)
from xstilts.pipelines import stage
from xstilts.pipelines.locking import partial_dir
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.results.store import ResultsStore

def no_network(*args, **kwargs):
    raise AssertionError("network access during a stage that names no hub model")

def child(args, spec, env):
    socket.socket.connect = no_network
    os.environ.update(env)
    try:
        with ResultsStore(args["db"]) as store:
            stage.run_stage(spec, args["dir"], args["data"], args["parent"],
                            device=torch.device("cpu"),
                            on_saved=partial(store.record_stage, spec, "trained"))
    except BaseException as exc:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)

args = json.loads(sys.argv[1])
spec = StageSpec(**{**args["spec"], "tasks": tuple(args["spec"]["tasks"])})
out = Path(args["dir"])
notes = []
for env in args["runs"]:
    pid = os.fork()
    if pid == 0:
        child(args, spec, env)
    status = os.waitpid(pid, 0)[1]
    work = partial_dir(out)
    store = None
    if Path(args["db"]).is_file():
        with sqlite3.connect(args["db"]) as db:
            rows = db.execute("SELECT status FROM stages WHERE stage_id = ?", (out.name,))
            store = [r[0] for r in rows]
    notes.append({
        "env": env, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "ckpts": sorted(p.name for p in (work / "checkpoints").glob("step-*")),
        "final": sorted(p.name for p in (work / "final").glob("*")),
        "published": out.exists(), "complete": stage.is_complete(out), "store": store,
        "partial_left": work.exists(),
    })
print(json.dumps(notes))
"""


def _spec(parent: str) -> StageSpec:
    train = {
        "lr": 2e-3, "weight_decay": 0.01, "warmup_ratio": 0.2, "epochs": 1.0,
        "max_steps": TOTAL_STEPS, "batch_size": 4, "max_tokens": None, "grad_accum": 1,
        "max_grad_norm": 1.0, "eval_every": 5, "patience": None, "max_train_examples": 16,
        "max_dev_examples": 12, "precision": "fp32", "compile": False,
        "checkpoint_every": CKPT_EVERY,
        "tasks": {"sst2": {"max_length": 48}, "pawsx": {"max_length": 48}},
    }  # fmt: skip
    return StageSpec(
        kind="train", tasks=("sst2", "pawsx"), role="intermediate", encoder=TINY, parent=parent,
        seed=3, train=train, mixture={"sampling": "proportional", "temperature": 1.0},
        mlm={"weight": 0.5, "probability": 0.15, "texts_from": ["sst2"]},
    )  # fmt: skip


def _runs(
    envs: list[dict[str, str]], root: Path, spec: StageSpec, data: Path, base: Path
) -> list[dict[str, Any]]:
    """Run the stage once per ``envs`` item (kill hooks), in order; what each run left behind."""
    args = {
        "runs": envs, "spec": spec.to_dict(), "dir": str(root / spec.stage_id),
        "data": str(data), "parent": str(base), "db": str(root / "results.sqlite"),
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, json.dumps(args)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    notes = json.loads(done.stdout.strip().splitlines()[-1])
    for note in notes:
        note["stderr"] = done.stderr[-3000:]
    return notes


@pytest.fixture(scope="module")
def setup(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A base stage (shared by every run) and one uninterrupted reference run."""
    base_spec = StageSpec(kind="base", tasks=(), role="base", encoder=TINY, parent=None, seed=0)
    bases = tmp_path_factory.mktemp("base")
    base = bases / base_spec.stage_id
    stage.run_stage(base_spec, base, data_root, None, device=torch.device("cpu"))
    spec = _spec(base_spec.stage_id)
    ref_root = tmp_path_factory.mktemp("reference")
    (done,) = _runs([{}], ref_root, spec, data_root, base)
    assert done["code"] == 0 and done["complete"], done["stderr"]
    return {"base": base, "spec": spec, "reference": ref_root / spec.stage_id}


def _assert_same_stage(got: Path, want: Path) -> None:
    """Identical weights (torch.equal) and identical metrics (except wall-clock rates)."""
    assert stage.is_complete(got)
    for name in ("encoder.safetensors", "heads.safetensors"):
        a, b = load_file(str(got / name)), load_file(str(want / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs"
    timing = ("train_seconds", "tokens_per_second")
    m_got, m_want = (json.loads((d / "metrics.json").read_text()) for d in (got, want))
    assert {k: v for k, v in m_got.items() if k not in timing} == {
        k: v for k, v in m_want.items() if k not in timing
    }
    assert m_got["steps"] == TOTAL_STEPS and len(m_got["dev_curve"]) == 4  # steps 5, 10, 15, 20
    s_got, s_want = (json.loads((d / "trainer_state.json").read_text()) for d in (got, want))
    assert s_got == s_want


def _kill_points(rng: random.Random) -> list[str]:
    """Five distinct kill points in the order one continued run meets them."""
    ckpt_steps = [k for k in range(1, TOTAL_STEPS + 1) if k % CKPT_EVERY == 0]
    candidates = [f"step:{k}" for k in range(2, TOTAL_STEPS + 1)]
    candidates += [f"ckpt:{k}" for k in ckpt_steps]
    chosen = rng.sample(candidates, 5)
    return sorted(chosen, key=lambda p: (int(p.split(":")[1]), p.startswith("ckpt")))


def test_sigkill_at_random_steps_then_resume_is_bit_identical(
    setup: dict[str, Any], data_root: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("XSTILTS_RESUME_SEED", random.SystemRandom().randrange(10**6)))
    points = _kill_points(random.Random(seed))
    print(f"resume test: XSTILTS_RESUME_SEED={seed} kill points {points}")
    spec, out = setup["spec"], tmp_path / setup["spec"].stage_id
    envs = [{"XSTILTS_KILL_AT": point} for point in points] + [{}]
    *killed, done = _runs(envs, tmp_path, spec, data_root, setup["base"])
    for point, note in zip(points, killed, strict=True):
        assert note["signal"] == signal.SIGKILL, (point, note)
        assert not note["published"] and not note["complete"], (point, note)
        # Killed before step k's checkpoint finished: the newest one is from before k.
        k = int(point.split(":")[1])
        assert not note["ckpts"] or int(note["ckpts"][-1][5:]) < k, (point, note)
        assert len(note["ckpts"]) <= 2, note  # older checkpoints are pruned
    assert done["code"] == 0 and done["complete"] and not done["partial_left"], done
    _assert_same_stage(out, setup["reference"])


def test_sigterm_then_kills_during_final_save_resume_to_the_same_stage(
    setup: dict[str, Any], data_root: Path, tmp_path: Path
) -> None:
    spec, out = setup["spec"], tmp_path / setup["spec"].stage_id
    envs = [
        {"XSTILTS_TERM_AT": "step:7"},  # not a checkpoint step: checkpoints step 7 and stops
        {"XSTILTS_KILL_AT": "save:weights"},  # weights written, no metrics, no COMPLETE yet
        {"XSTILTS_KILL_AT": "save:publish"},  # recorded in the store, not yet renamed
        {},
    ]
    term, weights, publish, done = _runs(envs, tmp_path, spec, data_root, setup["base"])
    assert term["code"] == 1 and "SIGTERM at step 7" in term["stderr"], term
    assert term["ckpts"][-1] == "step-00000007" and term["final"] == []
    assert weights["signal"] == signal.SIGKILL and not weights["published"], weights
    assert "encoder.safetensors" in weights["final"] and "metrics.json" not in weights["final"]
    assert "COMPLETE" not in weights["final"] and weights["store"] == []
    assert publish["signal"] == signal.SIGKILL and not publish["published"], publish
    assert "COMPLETE" in publish["final"] and publish["store"] == ["trained"]
    # The last run only publishes what was saved.
    assert done["code"] == 0 and done["complete"] and not done["partial_left"], done
    _assert_same_stage(out, setup["reference"])
