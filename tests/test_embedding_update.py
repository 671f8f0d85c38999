"""``train.embedding_update: sparse``: AdamW on only the word-embedding rows a step touched.

* after a sparse stage, rows of tokens never seen are bit-identical and seen rows moved; dense
  AdamW with weight decay moves the unseen rows too (so the check tells the two apart),
* one row-wise step equals ``torch.optim.AdamW`` applied to just those rows (hand-built),
* the setting is in the resolved stage spec (and id) only when written,
* ``sparse`` with ``freeze: [embeddings]`` is one ConfigError at ``train.embedding_update``,
* a run interrupted (SIGTERM, checkpoint) and resumed ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from test_freeze import _task
from xstilts.errors import ConfigError, StageInterrupted
from xstilts.models.encoder import load_encoder
from xstilts.models.model import XstiltsModel
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.tasks.formats.classification import FORMAT
from xstilts.training import checkpointing, loop
from xstilts.training.loop import TrainConfig, TrainTask
from xstilts.training.sparse_rows import SparseRowAdamW

VOCAB = 64
TINY = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "seed": 0}  # fmt: skip
WORD = "encoder.embeddings.word_embeddings.weight"
# _task(): 24 classification features whose tokens are 0, 2 and ids 5-44 (45-63, 1, 3, 4 unused).


def _seen(task: TrainTask) -> set[int]:
    return {t for f in task.train_features for seq in f["sequences"] for t in seq}


def _model() -> XstiltsModel:
    torch.manual_seed(0)  # the head's initialisation draws from the global generator
    return XstiltsModel(
        load_encoder({"tiny": TINY}), {"toy": FORMAT.make_head(_task().spec, 32, None)}
    )


def _cfg(update: str, **extra: Any) -> TrainConfig:
    settings = {"lr": 1e-2, "weight_decay": 0.1, "max_steps": 4, "batch_size": 8,
                "warmup_ratio": 0.25, "precision": "fp32", **extra}  # fmt: skip
    return TrainConfig(**settings, embedding_update=update)


@pytest.mark.parametrize("update", ["sparse", "dense"])
def test_sparse_leaves_unseen_rows_bit_identical_and_dense_does_not(update: str) -> None:
    model, task = _model(), _task()
    before = model.state_dict()[WORD].clone()
    result = loop.train(model, [task], _cfg(update), device=torch.device("cpu"))
    after = model.state_dict()[WORD]
    seen = sorted(_seen(task))
    unseen = sorted(set(range(VOCAB)) - set(seen) - {1})  # 1: the padding row (zero init)
    assert len(unseen) >= 20
    assert (after[seen] != before[seen]).any(dim=1).all()  # every seen row moved
    if update == "sparse":
        assert torch.equal(after[unseen], before[unseen])
        assert result.optimizer == "adamw-fused + sparse-embedding"
    else:  # dense AdamW decays every row, used or not
        assert (after[unseen] != before[unseen]).any(dim=1).all()
        assert result.optimizer == "adamw-fused"
    assert model.encoder.embeddings.word_embeddings.weight.grad is None  # cleared every step


def test_one_sparse_step_equals_adamw_on_just_those_rows() -> None:
    """Two steps (rows {1, 4}, then {1, 2}; the lr changes): each row moves as torch's AdamW
    applied to that row alone, with its own step count; rows never touched stay as they were."""
    torch.manual_seed(0)
    start = torch.randn(6, 3)
    weight = torch.nn.Parameter(start.clone())
    sparse = SparseRowAdamW(weight, weight_decay=0.1)
    rows = [torch.nn.Parameter(start[i].clone().unsqueeze(0)) for i in range(6)]  # [1, 3] each
    ref = torch.optim.AdamW(rows, lr=1.0, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6)
    grads = []
    for touched, lr in (([1, 4], 0.05), ([1, 2], 0.02)):
        grad = torch.zeros(6, 3)
        grad[touched] = torch.randn(len(touched), 3)
        grads.append(grad)
        weight.grad = grad.clone()
        sparse.step(lr, (0.8, 0.99), 1e-6)
        for i, p in enumerate(rows):
            p.grad = grad[i : i + 1].clone() if i in touched else None
        for group in ref.param_groups:
            group["lr"] = lr
        ref.step()
        assert weight.grad is None
    expected = torch.cat([p.detach() for p in rows])
    assert torch.allclose(weight.detach(), expected, atol=1e-6, rtol=0)
    assert torch.equal(weight.detach()[[0, 3, 5]], start[[0, 3, 5]])
    assert not torch.allclose(weight.detach()[[1, 2, 4]], start[[1, 2, 4]])
    assert sparse.steps.tolist() == [0, 2, 1, 0, 1, 0]
    # Row 4 by hand (one step, lr 0.05): m = 0.2 g and v = 0.01 g^2, bias-corrected to g, g^2.
    g = grads[0][4]
    hand = start[4] * (1 - 0.05 * 0.1) - 0.05 * g / (g.abs() + 1e-6)
    assert torch.allclose(weight.detach()[4], hand, atol=1e-6, rtol=0)


def _raw(data_root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "emb", "data_dir": str(data_root), "encoder": {"tiny": {}},
        "intermediate": ["none", "mnli"], "targets": ["xnli"], **extra,
    }  # fmt: skip


def _specs(data_root: Path, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Stage label (``base``, ``mnli``, ``xnli`` after none / after mnli) -> its spec."""
    exp = experiment_from_dict(_raw(data_root, **extra), base_dir=tmp_path, check_data=False)
    stages = build_plan(exp, count_examples=False).stages
    by_id = {s.spec.stage_id: s.spec for s in stages}
    return {
        f"{by_id[s.spec.parent].label}>{s.spec.label}" if s.spec.parent else "base": s.spec
        for s in stages
    }


def test_embedding_update_is_in_the_stage_spec_only_when_written(
    data_root: Path, tmp_path: Path
) -> None:
    plain = _specs(data_root, tmp_path, train={"max_steps": 2})
    assert set(plain) == {"base", "base>mnli", "base>xnli", "mnli>xnli"}
    assert all("embedding_update" not in s.train for s in plain.values())  # default: absent
    sparse = _specs(data_root, tmp_path, train={"max_steps": 2, "embedding_update": "sparse"})
    assert sparse["mnli>xnli"].train["embedding_update"] == "sparse"
    moved = {k for k in plain if sparse[k].stage_id != plain[k].stage_id}
    assert moved == {"base>mnli", "base>xnli", "mnli>xnli"}  # the base trains nothing
    # A written value is recorded, as for every sparse setting (head_pooling: cls, freeze: []):
    # writing the default out gives new ids; leaving it out keeps the old ones.
    dense = _specs(data_root, tmp_path, train={"max_steps": 2, "embedding_update": "dense"})
    assert dense["base>mnli"].train["embedding_update"] == "dense"
    assert dense["base>mnli"].stage_id != plain["base>mnli"].stage_id
    assert dense["base"].stage_id == plain["base"].stage_id
    assert TrainConfig.from_stage(sparse["base>mnli"].train, {}, 0).embedding_update == "sparse"
    assert TrainConfig.from_stage(plain["base>mnli"].train, {}, 0).embedding_update == "dense"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"train": {"embedding_update": "sparse", "freeze": ["embeddings", "layer.0"]}},
         "train.embedding_update"),
        ({"train": {"embedding_update": "lazy"}}, "train.embedding_update"),
        # set in different layers: refused once the stage's settings are resolved
        ({"train": {"freeze": ["embeddings"]},
          "overrides": {"mnli": {"embedding_update": "sparse"}}}, "train.embedding_update"),
        ({"overrides": {"mnli": {"embedding_update": "sparse", "freeze": ["embeddings"]}}},
         "overrides.mnli.embedding_update"),
    ],
)  # fmt: skip
def test_sparse_with_frozen_embeddings_is_a_config_error(
    extra: dict[str, Any], key: str, data_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        exp = experiment_from_dict(_raw(data_root, **extra), base_dir=tmp_path, check_data=False)
        build_plan(exp, count_examples=False)
    assert err.value.key == key
    if "lazy" not in str(extra):
        assert "freeze: [embeddings]" in str(err.value)


def test_training_refuses_sparse_with_frozen_embeddings_before_any_step() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = _cfg("sparse", freeze=("embeddings",))
    with pytest.raises(ConfigError) as err:
        loop.train(model, [_task()], cfg, device=torch.device("cpu"))
    assert err.value.key == "train.embedding_update"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_sparse_run_resumed_after_sigterm_is_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dropout on (the tiny encoder's default), 6 steps, checkpoints every 2; SIGTERM at step 3
    # writes checkpoint 3 and stops; the resumed run must restore the row moments and counts.
    cfg = _cfg("sparse", max_steps=6, checkpoint_every=2, batch_size=4)
    cpu = torch.device("cpu")
    reference = _model()
    want = loop.train(reference, [_task()], cfg, device=cpu)
    monkeypatch.setenv(checkpointing.TERM_ENV, "step:3")
    with pytest.raises(StageInterrupted, match="SIGTERM at step 3"):
        loop.train(_model(), [_task()], cfg, device=cpu, checkpoint_dir=tmp_path)
    monkeypatch.delenv(checkpointing.TERM_ENV)
    resumed = _model()
    got = loop.train(resumed, [_task()], cfg, device=cpu, checkpoint_dir=tmp_path)
    assert got.steps == want.steps == 6
    for name, value in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert got.optimizer == want.optimizer == "adamw-fused + sparse-embedding"
