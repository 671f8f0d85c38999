"""Length-grouped batching: coverage, budgets, determinism, and padding efficiency on real MNLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.models.tokenizer import train_tokenizer
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.formats import FeaturizeConfig, get_format
from xstilts.training.batching import make_batches, padding_efficiency


def _features(lengths: list[int], per_feature: int = 1) -> list[dict]:
    return [
        {"sequences": [[5] * n] * per_feature, "example_index": i} for i, n in enumerate(lengths)
    ]


def test_every_index_once_and_count_limit() -> None:
    feats = _features([(i * 37) % 50 + 3 for i in range(500)])
    batches = make_batches(feats, batch_size=16, shuffle=True, seed=1, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500))
    assert max(len(b) for b in batches) == 16


def test_token_budget_counts_padded_cost() -> None:
    # Lengths 10,10,10,40: with budget 60 the three 10s fit (3*10=30 <= 60) but adding the 40
    # would cost 4*40=160; sorted longest first: [40] alone (2*40=80 > 60), then [10,10,10].
    feats = _features([10, 40, 10, 10])
    batches = make_batches(feats, batch_size=100, max_tokens=60, shuffle=False)
    assert batches == [[1], [0, 2, 3]]


def test_multiple_choice_counts_every_sequence() -> None:
    # 4 choices of 10 tokens: one feature costs 40 padded tokens, so budget 80 holds 2 features.
    feats = _features([10] * 6, per_feature=4)
    batches = make_batches(feats, batch_size=100, max_tokens=80, shuffle=False)
    assert [len(b) for b in batches] == [2, 2, 2]
    real, processed = padding_efficiency(batches, feats)
    assert (real, processed) == (240, 240)


def test_oversized_feature_is_kept_alone() -> None:
    feats = _features([500, 3])
    batches = make_batches(feats, batch_size=8, max_tokens=100, shuffle=False)
    assert batches == [[0], [1]]


def test_seeded_order_differs_per_epoch_and_repeats_per_seed() -> None:
    feats = _features([(i * 13) % 40 + 2 for i in range(300)])
    a = make_batches(feats, batch_size=8, seed=3, epoch=0)
    b = make_batches(feats, batch_size=8, seed=3, epoch=0)
    c = make_batches(feats, batch_size=8, seed=3, epoch=1)
    assert a == b
    assert a != c


def test_padding_efficiency_hand_computed() -> None:
    feats = _features([3, 5, 4])
    real, processed = padding_efficiency([[0, 1], [2]], feats)
    assert (real, processed) == (12, 2 * 5 + 4)


@pytest.fixture(scope="module")
def mnli_features(data_root: Path) -> list[dict]:
    spec = get_task("mnli")
    examples = load_examples(spec, data_root, "train", "en", limit=2000)
    texts = [t for ex in examples for t in (ex.text_a, ex.text_b)]
    tokenizer = train_tokenizer(texts, vocab_size=2000)
    return get_format(spec.type).featurize(
        examples, tokenizer, spec, FeaturizeConfig(max_length=128)
    )


def test_padding_efficiency_on_real_mnli_beats_95_percent(mnli_features: list[dict]) -> None:
    feats = mnli_features
    assert len(feats) == 2000
    grouped = make_batches(feats, batch_size=32, shuffle=True, seed=0, epoch=0)
    real, processed = padding_efficiency(grouped, feats)
    # Naive: random batches of 32 padded to the batch maximum, and padding to max_length.
    naive = [list(range(i, min(i + 32, len(feats)))) for i in range(0, len(feats), 32)]
    _, naive_processed = padding_efficiency(naive, feats)
    max_len = max(len(s) for f in feats for s in f["sequences"])
    to_max_length = len(feats) * 128
    print(
        f"\nMNLI padding efficiency: grouped {real / processed:.3f}, "
        f"random batches {real / naive_processed:.3f}, "
        f"pad-to-128 {real / to_max_length:.3f} (longest {max_len})"
    )
    assert real / processed >= 0.95
    assert real / processed > real / naive_processed


def test_padding_efficiency_with_token_budget(mnli_features: list[dict]) -> None:
    batches = make_batches(mnli_features, batch_size=512, max_tokens=2048, seed=0)
    for b in batches:
        lens = [len(mnli_features[i]["sequences"][0]) for i in b]
        assert len(b) == 1 or len(lens) * max(lens) <= 2048
    real, processed = padding_efficiency(batches, mnli_features)
    assert real / processed >= 0.95
