"""Study tables: agreement with English, class rates, near-degenerate flag, negation baseline,
encoder movement of intermediate stages, and the power table of a report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from xstilts.reporting.collect import ExperimentData, RunData
from xstilts.reporting.deltas import delta_tables
from xstilts.reporting.movement import movement_grid
from xstilts.reporting.power import ALPHA, comparison_blocks, detectable, power_grid
from xstilts.reporting.report import build_report
from xstilts.reporting.transfer import (
    agreement,
    chance_grid,
    chance_p,
    class_rate_grid,
    has_negation,
    near_degenerate,
    negation_rule,
    shortcut_grid,
)

LABELS = ("entailment", "neutral", "contradiction")


def _run(option: str, seed: int, preds: dict[str, list[str]], gold: list[str]) -> RunData:
    details = {
        lang: {"ids": [f"{lang}-dev-{lang}-{i + 1}" for i in range(len(p))], "kind": "mean",
               "stats": [100.0 * (x == g) for x, g in zip(p, gold, strict=True)], "pred": p,
               "gold": gold}
        for lang, p in preds.items()
    }  # fmt: skip
    scores = {lang: float(np.mean(d["stats"])) for lang, d in details.items()}
    run = RunData(
        option, "xnli", seed, f"{option}{seed}", scores, float(np.mean([*scores.values()]))
    )
    run.details = details
    return run


def test_agreement_class_rates_and_near_degenerate() -> None:
    gold = ["entailment", "neutral", "contradiction", "contradiction"] * 10
    en = ["entailment", "neutral", "contradiction", "contradiction"] * 10
    de = ["entailment", "neutral", "neutral", "contradiction"] * 10  # 3 of 4 rows agree
    run = _run("none", 1, {"en": en, "de": de}, gold)
    assert agreement(run, "de") == 75.0
    assert near_degenerate(run, LABELS) is None
    # English never predicts neutral except on 1 of 40 rows (2.5 % < 5 %): near-degenerate.
    en2 = ["entailment", "contradiction", "contradiction", "contradiction"] * 10
    en2[1] = "neutral"
    low = _run("mnli", 1, {"en": en2, "de": de}, gold)
    why = near_degenerate(low, LABELS)
    assert why is not None and "neutral 2.5%" in why and "mnli" in why
    data = ExperimentData("t", {}, ["none", "mnli"], ["xnli"], [run, low], [], None)
    grid = class_rate_grid(data, "xnli")
    assert grid.rows["mnli"]["en: neutral"] == "2.5"
    assert grid.rows["none"]["en: contradiction"] == "50.0"
    assert grid.rows["gold (en)"]["en: entailment"] == "25.0"
    # The lowest rate in any language: mnli's German contradiction share is 25 %, English
    # neutral 2.5 %.
    assert grid.rows["mnli"]["lowest class rate (language)"] == "2.5 (neutral, en)"
    assert any("near-degenerate" in n and "mnli" in n for n in grid.notes)


def test_above_chance_is_an_exact_binomial_against_the_majority_class() -> None:
    gold = ["entailment", "neutral", "contradiction", "contradiction"] * 10  # majority 50 %
    en = list(gold)
    for i in range(0, 14):  # 14 of 40 wrong: 26 correct
        en[i] = "neutral" if gold[i] != "neutral" else "entailment"
    de = ["contradiction"] * 40  # always the majority class: 20 of 40, not above chance
    run = _run("none", 1, {"en": en, "de": de}, gold)
    tail = sum(math.comb(40, k) for k in range(26, 41)) / 2**40  # P(X >= 26), X ~ B(40, 1/2)
    assert chance_p(run, "en") == pytest.approx(tail, rel=1e-9)
    assert 0.04 < tail < 0.05
    p_de = chance_p(run, "de")
    assert p_de is not None and p_de > 0.5
    seed2 = _run("none", 2, {"en": gold, "de": gold}, gold)  # perfect: p = 2^-40
    data = ExperimentData("t", {}, ["none"], ["xnli"], [run, seed2], [], None)
    row = chance_grid(data, "xnli").rows["none"]
    assert row["en"] == f"{tail:.3f}"  # the larger p of the two seeds
    assert row["p ≥ 0.01"] == "de, en"


def test_negation_words() -> None:
    assert has_negation("He didn't say a word.")
    assert has_negation("Nobody was there")
    assert has_negation("She can’t swim")  # typographic apostrophe
    assert not has_negation("Notable people knew it")
    assert not has_negation("He said a word.")


def test_negation_baseline_beside_the_model(data_root: Path) -> None:
    fallback, rule = negation_rule(data_root)
    assert fallback in ("entailment", "neutral")
    lines = (data_root / "xtreme/xnli/dev-en.tsv").read_text(encoding="utf-8").splitlines()
    gold = [ln.split("\t")[2].replace("contradictory", "contradiction") for ln in lines]
    hyps = [ln.split("\t")[1] for ln in lines]
    assert len(rule) == len(gold) == 600
    # Hand-computed: the rule's accuracy over the 600 English rows.
    expect = 100 * np.mean([(("contradiction" if has_negation(h) else fallback) == g)
                            for h, g in zip(hyps, gold, strict=True)])  # fmt: skip
    preds = [rule[str(i + 1)] for i in range(600)]
    model = _run("none", 1, {"en": preds}, gold)
    data = ExperimentData("t", {"data_dir": str(data_root)}, ["none"], ["xnli"], [model], [], None)
    grid = shortcut_grid(data)
    assert grid.rows["negation rule"]["accuracy"] == f"{expect:.1f}"
    assert grid.rows["none"]["accuracy"] == f"{expect:.1f}"
    assert grid.rows["none"]["agrees with rule"] == "100.0"
    assert grid.rows["none"]["acc. negated hyp."] == grid.rows["negation rule"]["acc. negated hyp."]
    # No data here: one clear line, not a traceback.
    missing = ExperimentData("t", {"data_dir": "/nonexistent"}, ["none"], ["xnli"], [model], [],
                             None)  # fmt: skip
    assert "not computed" in shortcut_grid(missing).empty


def test_intermediate_stage_records_encoder_movement(data_root: Path, tmp_path: Path) -> None:
    from xstilts.pipelines import stage
    from xstilts.pipelines.stage_spec import StageSpec

    tiny = {
        "tiny": {"vocab_size": 600, "hidden_size": 32, "num_hidden_layers": 1,
                 "num_attention_heads": 2, "intermediate_size": 64, "seed": 0},
        "tokenizer": {"train_on": ["sst2"], "max_lines": 200, "vocab_size": 600},
    }  # fmt: skip
    base = StageSpec(kind="base", tasks=(), role="base", encoder=tiny, parent=None, seed=0)
    stage.run_stage(base, tmp_path / base.stage_id, data_root, None)
    train = {
        "lr": 1e-2, "weight_decay": 0.0, "warmup_ratio": 0.0, "epochs": 1.0, "max_steps": 3,
        "batch_size": 4, "max_tokens": None, "grad_accum": 1, "max_grad_norm": 1.0,
        "eval_every": None, "patience": None, "max_train_examples": 16, "max_dev_examples": 8,
        "precision": "fp32", "compile": False, "freeze": ["embeddings"],
        "tasks": {"sst2": {"max_length": 32}},
    }  # fmt: skip
    spec = StageSpec(kind="train", tasks=("sst2",), role="intermediate", encoder=tiny,
                     parent=base.stage_id, seed=1, train=train)  # fmt: skip
    metrics = stage.run_stage(spec, tmp_path / spec.stage_id, data_root, tmp_path / base.stage_id)
    move = metrics["encoder_movement"]
    w0 = load_file(str(tmp_path / base.stage_id / "encoder.safetensors"))
    w1 = load_file(str(tmp_path / spec.stage_id / "encoder.safetensors"))
    trained = [k for k in w0 if not k.startswith("embeddings.")]
    assert all(torch.equal(w0[k], w1[k]) for k in w0 if k.startswith("embeddings."))
    sq = sum(float(((w1[k].double() - w0[k].double()) ** 2).sum()) for k in trained)
    norm = math.sqrt(sum(float((w0[k].double() ** 2).sum()) for k in trained))
    assert move["l2"] > 0 and move["l2"] == pytest.approx(math.sqrt(sq), rel=1e-9)
    assert move["relative"] == pytest.approx(math.sqrt(sq) / norm, rel=1e-9)
    assert move["frozen_tensors"] > 0 and move["base_stage"] == base.stage_id
    assert json.loads((tmp_path / spec.stage_id / "metrics.json").read_text())["encoder_movement"]
    # The report's table reads it from the store's stage rows.
    rows = [
        {"stage_id": base.stage_id, "parent_id": None, "label": "base", "role": "base",
         "seed": 0, "metrics": {}},
        {"stage_id": spec.stage_id, "parent_id": base.stage_id, "label": "sst2",
         "role": "intermediate", "seed": 1, "metrics": metrics},
    ]  # fmt: skip
    run = RunData("sst2", "tatoeba", 1, spec.stage_id, {}, None)
    grid = movement_grid(ExperimentData("t", {}, ["sst2"], ["tatoeba"], [run], rows, None))
    assert grid is not None
    assert grid.rows["sst2 (seed 1)"]["steps"] == "3"
    assert grid.rows["sst2 (seed 1)"]["‖Δw‖/‖w₀‖"] == f"{100 * move['relative']:.2f}%"


def test_power_table_matches_the_delta_tables_standard_error() -> None:
    rng = np.random.default_rng(1)
    n = 400
    gold_idx = rng.integers(0, 3, n)
    gold = [LABELS[i] for i in gold_idx]
    runs = []
    for seed in (1, 2, 3, 4):
        for option, acc in (("none", 0.6), ("mnli", 0.63), ("squad", 0.61), ("mnli→squad", 0.64)):
            preds = {}
            for lang in ("en", "de"):
                right = rng.random(n) < acc + rng.normal(0, 0.01)
                preds[lang] = [g if r else LABELS[(LABELS.index(g) + 1) % 3]
                               for g, r in zip(gold, right, strict=True)]  # fmt: skip
            runs.append(_run(option, seed, preds, gold))
    data = ExperimentData("p", {}, ["none", "mnli", "squad", "mnli→squad"], ["xnli"], runs, [],
                          None)  # fmt: skip
    tables = delta_tables(data, n_boot=300)
    chains = next(t for t in tables if t.title == "Δ chains")
    grid = power_grid(data, chains, n_boot=300)
    assert grid is not None
    m = sum(len(r) for r in chains.rows.values())
    cell = chains.rows["mnli→squad vs mnli"]["xnli"]
    mde = detectable(cell.result.se, cell.result.df, ALPHA / m)
    text = grid.rows["mnli→squad vs mnli"]["xnli"]
    assert text.startswith(f"{mde:.1f} · 1 pt: ")
    assert comparison_blocks(data, "mnli→squad", "mnli", ["xnli"])
    # The report carries the study tables.
    slugs = {g.slug for g in build_report(data, n_boot=200).grids}
    assert {"power-chains", "agree-xnli", "classes-xnli", "shortcut-xnli"} <= slugs
