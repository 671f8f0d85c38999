"""Training: mixture sampling, gradient accumulation, determinism, and a tiny model that learns."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from xstilts.errors import ConfigError
from xstilts.models.encoder import load_encoder
from xstilts.models.model import XstiltsModel
from xstilts.models.tokenizer import train_tokenizer
from xstilts.packing import PackedBatch
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.formats import FeaturizeConfig, get_format
from xstilts.tasks.spec import SplitSource, TaskSpec
from xstilts.training import loop
from xstilts.training.loop import TrainConfig, TrainTask, train
from xstilts.training.mixture import MixtureSampler, mixture_probabilities
from xstilts.training.optim import linear_schedule, param_groups

# ---------------------------------------------------------------- mixture sampling


@pytest.mark.parametrize(
    ("sampling", "temperature", "expected"),
    [
        ("proportional", 1.0, [0.1, 0.3, 0.6]),
        # p ∝ n^(1/2): sqrt(100)=10, sqrt(300)=17.32, sqrt(600)=24.49; sum 51.81.
        ("temperature", 2.0, [10 / 51.815, 17.3205 / 51.815, 24.4949 / 51.815]),
        ("uniform", 1.0, [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_mixture_frequencies_match(
    sampling: str, temperature: float, expected: list[float]
) -> None:
    probs = mixture_probabilities([100, 300, 600], sampling, temperature)
    assert probs == pytest.approx(expected, abs=1e-4)
    sampler = MixtureSampler([100, 300, 600], sampling, temperature, seed=11)
    n = 20000
    counts = Counter(sampler.next() for _ in range(n))
    for i, p in enumerate(expected):
        assert counts[i] / n == pytest.approx(p, abs=0.015)


def test_mixture_seeded_sequence_repeats() -> None:
    a = MixtureSampler([5, 7], seed=3)
    b = MixtureSampler([5, 7], seed=3)
    c = MixtureSampler([5, 7], seed=4)
    seq_a = [a.next() for _ in range(200)]
    assert seq_a == [b.next() for _ in range(200)]
    assert seq_a != [c.next() for _ in range(200)]


def test_mixture_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="unknown mixture sampling 'roundrobin'"):
        mixture_probabilities([1, 2], "roundrobin")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        mixture_probabilities([1, 2], "temperature", 0.0)


# ---------------------------------------------------------------- optimizer / schedule


def test_no_weight_decay_on_bias_and_layernorm() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
    groups = param_groups(model, 0.01)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    assert decayed == {id(model[0].weight)}
    assert len(groups[1]["params"]) == 3  # linear bias, LN weight, LN bias


def test_linear_schedule_shape() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_schedule(opt, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warm-up (step+1)/(warmup+1): 1/3, 2/3; then (total-step)/(total-warmup): 4/4 .. 1/4
    assert lrs == pytest.approx([1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25])


# ---------------------------------------------------------------- gradient accumulation


class _ToyModel(nn.Module):
    """Embedding + mean pooling + linear: deterministic (no dropout), fp32."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, batch: PackedBatch, head: str) -> torch.Tensor:
        del head
        lens = batch.seq_lens
        seq = torch.repeat_interleave(torch.arange(lens.numel()), lens)
        sums = torch.zeros(lens.numel(), 8).index_add_(0, seq, self.emb(batch.input_ids))
        return self.out(sums / lens[:, None])  # [B, 2]


class _ToyFormat:
    def loss(self, logits: torch.Tensor, batch: PackedBatch) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, batch.labels["label"])


def _toy_task(n: int) -> TrainTask:
    feats = [
        {"sequences": [[0, 3 + i % 7, 4 + i % 5, 2]], "example_index": i, "label": i % 2}
        for i in range(n)
    ]
    spec = TaskSpec(
        name="toy", type="classification", version="1", splits={"train": SplitSource("x")},
        labels=("a", "b"),
    )  # fmt: skip
    return TrainTask("toy", spec, "toy", _ToyFormat(), feats, [], [], FeaturizeConfig())


def test_grad_accumulation_equals_big_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # SGD (not Adam): Adam's first step is ~lr*sign(g) and would hide a wrongly scaled gradient.
    monkeypatch.setattr(
        loop, "build_optimizer", lambda model, **_: torch.optim.SGD(model.parameters(), lr=0.5)
    )
    base = _ToyModel()
    common = {"max_steps": 1, "warmup_ratio": 0.0, "max_grad_norm": 0.0, "precision": "fp32"}
    big, small = copy.deepcopy(base), copy.deepcopy(base)
    train(big, [_toy_task(4)], TrainConfig(batch_size=4, **common), device=torch.device("cpu"))
    res = train(
        small,
        [_toy_task(4)],
        TrainConfig(batch_size=2, grad_accum=2, **common),
        device=torch.device("cpu"),
    )
    assert res.steps == 1 and res.examples_passes == 4
    for (name, p_big), p_small in zip(big.named_parameters(), small.parameters(), strict=True):
        assert not torch.equal(p_big, dict(base.named_parameters())[name])  # it did move
        torch.testing.assert_close(p_big, p_small, atol=1e-6, rtol=0)


def test_max_steps_zero_leaves_model_untouched() -> None:
    model = _ToyModel()
    before = copy.deepcopy(model.state_dict())
    res = train(model, [_toy_task(8)], TrainConfig(max_steps=0), device=torch.device("cpu"))
    assert res.steps == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


# ---------------------------------------------------------------- real data, tiny encoder


def _sst2_setup(data_root: Path, n_train: int, seed: int = 0) -> tuple[nn.Module, TrainTask]:
    spec = get_task("sst2")
    train_ex = load_examples(spec, data_root, "train", "en", limit=n_train)
    dev_ex = load_examples(spec, data_root, spec.dev_split, "en")
    tokenizer = train_tokenizer([ex.text_a for ex in train_ex], vocab_size=2000)
    fmt, cfg = get_format(spec.type), FeaturizeConfig(max_length=64)
    tiny = {"vocab_size": len(tokenizer), "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 128, "seed": seed}  # fmt: skip
    torch.manual_seed(seed)
    model = XstiltsModel(load_encoder({"tiny": tiny}), {})
    model.add_head(spec.head, fmt.make_head(spec, 64, cfg))
    task = TrainTask(
        "sst2", spec, spec.head, fmt, fmt.featurize(train_ex, tokenizer, spec, cfg),
        dev_ex, fmt.featurize(dev_ex, tokenizer, spec, cfg), cfg,
    )  # fmt: skip
    return model, task


def test_tiny_model_learns_sst2_beyond_majority(data_root: Path) -> None:
    model, task = _sst2_setup(data_root, n_train=4000)
    positives = sum(ex.label for ex in task.dev_examples)
    majority = 100.0 * max(positives, len(task.dev_examples) - positives) / len(task.dev_examples)
    cfg = TrainConfig(lr=1e-3, epochs=2.0, batch_size=32, eval_every=50, precision="fp32")
    result = train(model, [task], cfg, device=torch.device("cpu"))
    print(f"\nSST-2 dev accuracy {result.best_metric:.1f} vs majority {majority:.1f}")
    assert result.best_metric is not None and result.best_metric >= majority + 10.0
    assert result.curve[0]["metric"] < result.best_metric  # it improved while training
    # 4000 examples = megabatches of 2048 and 1952, both multiples of 32: 125 full batches/epoch.
    assert (result.steps, result.examples_passes) == (250, 8000)
    assert result.real_tokens / result.processed_tokens >= 0.95


def test_same_seed_gives_identical_metrics_on_cpu(data_root: Path) -> None:
    cfg = TrainConfig(lr=1e-3, max_steps=12, eval_every=4, batch_size=16, precision="fp32")
    runs = []
    for _ in range(2):
        model, task = _sst2_setup(data_root, n_train=400)
        res = train(model, [task], cfg, device=torch.device("cpu"))
        runs.append((res.curve, {k: v.clone() for k, v in model.state_dict().items()}))
    (curve_a, state_a), (curve_b, state_b) = runs
    assert [c["metric"] for c in curve_a] == [c["metric"] for c in curve_b]
    assert [c["train_loss"] for c in curve_a] == [c["train_loss"] for c in curve_b]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_mlm_masks_only_real_tokens_and_is_seeded() -> None:
    from xstilts.packing import IGNORE_INDEX
    from xstilts.training.mlm import MlmObjective

    tok = train_tokenizer(["the cat sat on the mat", "a dog ran in the park"] * 30, vocab_size=60)
    seq = tok("the cat sat on the mat and a dog ran")["input_ids"]
    objective = MlmObjective([seq] * 8, tok, weight=0.5, probability=0.5, batch_size=8, seed=1)
    batch = objective.next_batch()
    original = torch.tensor(seq * 8)
    labels = batch.labels["token_labels"]
    chosen = labels != IGNORE_INDEX
    assert 0 < int(chosen.sum()) < len(original)
    assert torch.equal(labels[chosen], original[chosen])  # labels are the original ids
    assert torch.equal(batch.input_ids[~chosen], original[~chosen])  # the rest is untouched
    special = torch.isin(original, torch.tensor(tok.all_special_ids))
    assert not bool((chosen & special).any())
    assert int((batch.input_ids[chosen] == tok.mask_token_id).sum()) > 0
    again = MlmObjective([seq] * 8, tok, weight=0.5, probability=0.5, batch_size=8, seed=1)
    assert torch.equal(again.next_batch().input_ids, batch.input_ids)
