"""The throughput benchmark harnesses (benchmarks/): correctness on CPU, never speed."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    # The benchmark scripts import each other as top-level modules (run as scripts).
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def lengths() -> ModuleType:
    return _load("lengths")


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return _load("bench_common")


def test_window_lengths_follow_doc_stride(lengths: ModuleType) -> None:
    # q=10 -> room 384-10-4 = 370 context tokens per window, windows start every 370-128 = 242.
    # Context 1000: starts 0, 242, 484, 726; the last holds 274 tokens -> 274 + 14 = 288.
    assert lengths.window_lengths(10, 1000, 384, 128, 64) == [384, 384, 384, 288]
    # A question over max_query_length is cut to 64: one window of 64 + 20 + 4.
    assert lengths.window_lengths(100, 20, 384, 128, 64) == [88]
    assert lengths.pair_length(30, 20, 128) == 54
    assert lengths.pair_length(100, 90, 128) == 128


def test_unknown_tokenizer_and_distribution_are_config_errors(lengths: ModuleType) -> None:
    from xstilts.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown tokenizer"):
        lengths.make_counter("bpe")
    with pytest.raises(ConfigError, match="unknown length distribution"):
        lengths.distribution("glue", Path("/nonexistent"), "approx")


def test_real_distributions_are_capped(lengths: ModuleType, data_root: Path) -> None:
    nli, max_nli = lengths.distribution("nli", data_root, "approx", limit=100)
    squad, max_squad = lengths.distribution("squad", data_root, "approx", limit=20)
    assert (len(nli), max_nli, max_squad) == (100, 128, 384)
    assert all(5 <= n <= 128 for n in nli) and all(5 <= n <= 384 for n in squad)
    # 8 QA files x 20 QAs, long contexts make several windows each.
    assert len(squad) > 160
    xnli = lengths.xnli_lengths(data_root, lengths.make_counter("approx"), languages=("en", "de"))
    assert sorted(xnli) == ["de", "en"] and len(xnli["en"]) == 600


def test_flops_formula_matches_the_model(common: ModuleType) -> None:
    config = common.model_config("tiny")
    hf = _load("hf_baselines").build_hf_model(config, seed=0)
    n_enc, n_head = common.param_counts(config)
    emb = hf.roberta.embeddings
    tables = sum(
        m.weight.numel()
        for m in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings)
    )
    assert n_enc == sum(p.numel() for p in hf.roberta.parameters()) - tables
    assert n_head == sum(p.numel() for p in hf.classifier.parameters())
    # Two sequences of 3 and 5 tokens, inference: 2*N_enc*8 + 2*N_head*2 + 4*2*64*(9+25).
    expected = 2 * n_enc * 8 + 2 * n_head * 2 + 4 * 2 * 64 * 34
    assert common.useful_flops(config, [3, 5], train=False) == expected
    assert common.useful_flops(config, [3, 5], train=True) == 3 * expected


def test_collator_pads_and_counts(common: ModuleType) -> None:
    collator = _load("hf_baselines").Collator(multiple_of=8)
    out = collator([{"input_ids": [0, 7, 2], "labels": 1}, {"input_ids": [0, 2], "labels": 0}])
    assert out["input_ids"].tolist() == [[0, 7, 2, 1, 1, 1, 1, 1], [0, 2, 1, 1, 1, 1, 1, 1]]
    assert out["attention_mask"].sum().item() == 5
    assert (collator.real, collator.padded) == ([5], [16])


def test_train_throughput_cpu_end_to_end(data_root: Path, tmp_path: Path) -> None:
    train = _load("train_throughput")
    out = tmp_path / "train.md"
    argv = ["--device", "cpu", "--config", "tiny", "--steps", "3", "--warmup", "1",
            "--batch-size", "8", "--tokenizer", "approx", "--length-limit", "200",
            "--data-dir", str(data_root), "--out", str(out)]  # fmt: skip
    payload = train.main(argv)
    assert out.is_file() and out.with_suffix(".json").is_file()
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["rows"] == payload["rows"]
    text = out.read_text()
    assert "--config tiny" in text and "Same-loss check" in text
    for dist in ("nli", "squad"):
        rows = {r["method"]: r for r in written["rows"] if r["distribution"] == dist}
        assert sorted(rows) == ["hf_best", "hf_default", "xstilts"]
        assert all(r["tokens_per_second"] > 0 and r["real_tokens"] > 0 for r in rows.values())
        # Same examples for every method: the same real tokens.
        assert len({r["real_tokens"] for r in rows.values()}) == 1
        # Padding to max_length wastes far more than length-grouped packed batches.
        assert rows["hf_default"]["padding_fraction"] > rows["xstilts"]["padding_fraction"]
        assert f"{dist}: xstilts/hf_best" in written["ratios"]
    check = written["same_loss_check"]
    assert len(check["hf_losses"]) == len(check["xstilts_losses"]) == 3
    # The model trains (losses move), and both implementations follow the same trajectory.
    assert len(set(check["hf_losses"])) == 3
    assert check["max_rel_diff"] < 1e-3


def test_eval_throughput_cpu_end_to_end(data_root: Path, tmp_path: Path) -> None:
    evaluation = _load("eval_throughput")
    out = tmp_path / "eval.md"
    argv = ["--device", "cpu", "--config", "tiny", "--per-language", "10", "--methods",
            "xstilts,hf_padded", "--tokenizer", "approx", "--data-dir", str(data_root),
            "--out", str(out)]  # fmt: skip
    payload = evaluation.main(argv)
    assert out.is_file() and out.with_suffix(".json").is_file()
    rows = {r["method"]: r for r in payload["rows"]}
    assert rows["xstilts"]["examples"] == rows["hf_padded"]["examples"] == 15 * 10
    assert rows["xstilts"]["seconds"] > 0
    assert rows["hf_padded"]["padding_fraction"] > rows["xstilts"]["padding_fraction"]
    # Same weights, fp32: the one-pass packed evaluation predicts what HF's padded forward does.
    assert payload["prediction_agreement"] == 1.0
