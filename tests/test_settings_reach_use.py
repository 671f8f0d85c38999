"""Issue 12, finding 2: every accepted setting takes effect (and is in a cache key); every
setting the code reads can be set; a setting that cannot apply is refused before training."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import tiny_encoder
from xstilts.errors import ConfigError
from xstilts.pipelines import executor
from xstilts.pipelines.experiment import Step, experiment_from_dict
from xstilts.pipelines.overrides import apply_overrides
from xstilts.pipelines.plan import build_plan, resolve_train
from xstilts.training import evaluate, loop

ENCODER = {"name": "xlm-roberta-large"}  # never loaded: these plans read no weights


def _exp(tmp_path: Path, *overrides: str, **raw: Any) -> Any:
    base = {
        "name": "use", "output_dir": str(tmp_path / "out"), "data_dir": str(tmp_path / "data"),
        "encoder": ENCODER, "seeds": [1], "intermediate": ["none", "mnli"],
        "targets": ["xnli", "tatoeba"], **raw,
    }  # fmt: skip
    return experiment_from_dict(apply_overrides(base, overrides), check_data=False)


def _stage(plan: Any, label: str) -> Any:
    return next(s for s in plan.stages if s.spec.label == label)


# ------------------------------------------------------------------ reaching evaluation


@pytest.fixture
def tatoeba_data(data_root: Path, tmp_path: Path) -> Path:
    """The German Tatoeba pair only (300 sentences each side)."""
    folder = tmp_path / "data" / "xtreme" / "tatoeba"
    folder.mkdir(parents=True)
    for name in ("de-en.de", "de-en.en"):
        shutil.copy(data_root / "xtreme" / "tatoeba" / name, folder / name)
    return tmp_path / "data"


def _tatoeba_experiment(data: Path, out: Path, max_length: int) -> Any:
    raw = {
        "name": "tat", "data_dir": str(data), "output_dir": str(out),
        "encoder": tiny_encoder(500, ["tatoeba"], 300),
        "intermediate": ["none"], "targets": ["tatoeba"],
        "overrides": {"tatoeba": {"max_length": max_length}},
        "evaluation": {"precision": "fp32"},
    }  # fmt: skip
    return experiment_from_dict(raw)


def test_retrieval_max_length_reaches_evaluation_and_its_cache_key(
    tatoeba_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    trained: list[str] = []
    real_featurized, real_build = evaluate.evaluate_featurized, loop.train

    def spy(model: Any, spec: Any, head: Any, featurized: Any, cfg: Any, *a: Any, **k: Any) -> Any:
        seen.append(cfg.max_length)
        # Every evaluated sentence was cut to the setting (special tokens included).
        lengths = [
            len(s) for _, feats in featurized.values() for f in feats for s in f["sequences"]
        ]
        assert max(lengths) <= cfg.max_length
        return real_featurized(model, spec, head, featurized, cfg, *a, **k)

    monkeypatch.setattr(evaluate, "evaluate_featurized", spy)
    monkeypatch.setattr(loop, "train", lambda *a, **k: trained.append("x") or real_build(*a, **k))
    out = tmp_path / "out"
    for max_length in (12, 24, 12):
        exp = _tatoeba_experiment(tatoeba_data, out, max_length)
        executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    # 12, then 24 (another key: evaluated again), then 12 again: served from its own cache.
    assert seen == [12, 24]
    assert trained == []  # the base stage is never trained, and is built once
    (stage_dir,) = (p for p in (out / "stages").iterdir() if p.is_dir())
    assert len(list((stage_dir / "eval").glob("tatoeba-*.json"))) == 2


def test_retrieval_settings_of_the_experiment_reach_eval_settings(tmp_path: Path) -> None:
    exp = _exp(tmp_path, "overrides.tatoeba.max_length=64", "overrides.xnli.max_length=96")
    settings = exp.eval_settings()
    assert settings.featurize == {"tatoeba": {"max_length": 64}}  # xnli's head brings its own
    plain = _exp(tmp_path).eval_settings()
    assert plain.featurize == {"tatoeba": {"max_length": 512}}  # the task default (XTREME)


# ------------------------------------------------------------------ settable


def test_mlm_max_length_is_settable_and_in_the_stage_id(tmp_path: Path) -> None:
    def mnli_id(max_length: int) -> str:
        exp = _exp(tmp_path, mlm={"weight": 0.5, "max_length": max_length})
        planned = _stage(build_plan(exp, count_examples=False), "mnli")
        assert planned.spec.mlm["max_length"] == max_length
        return planned.stage_id

    assert mnli_id(32) != mnli_id(64)
    with pytest.raises(ConfigError, match="integer >= 8") as info:
        _exp(tmp_path, mlm={"weight": 0.5, "max_length": 4})
    assert info.value.key == "mlm.max_length"


def test_mlm_max_length_cuts_the_auxiliary_texts(data_root: Path) -> None:
    from xstilts.models.encoder import load_encoder
    from xstilts.models.model import XstiltsModel
    from xstilts.models.tokenizer import train_tokenizer
    from xstilts.pipelines.stage_spec import StageSpec
    from xstilts.tasks.texts import task_texts
    from xstilts.training.mlm import build_mlm_objective

    tokenizer = train_tokenizer(task_texts(["sst2"], data_root, 200), 400)
    tiny = {"vocab_size": len(tokenizer), "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32}  # fmt: skip
    model = XstiltsModel(load_encoder({"tiny": tiny}), {})
    spec = StageSpec("train", ("sst2",), "intermediate", {"tiny": tiny}, "p", 0,
                     {"max_train_examples": 50, "batch_size": 4},
                     mlm={"weight": 1.0, "max_length": 10})  # fmt: skip
    objective = build_mlm_objective(spec, data_root, tokenizer, model)
    assert max(len(s) for s in objective.sequences) == 10


def test_log_every_and_the_dev_token_budget_are_settable_but_not_in_the_id(
    tmp_path: Path,
) -> None:
    plain = _stage(build_plan(_exp(tmp_path), count_examples=False), "mnli")
    tuned = _exp(tmp_path, "train.log_every=5", "evaluation.max_tokens=2048")
    spec = _stage(build_plan(tuned, count_examples=False), "mnli").spec
    cfg = loop.TrainConfig.from_stage(spec.train, spec.mixture, spec.seed)
    assert (cfg.log_every, cfg.eval_max_tokens) == (5, 2048)
    assert spec.stage_id == plain.stage_id  # logging and dev batching compute nothing new


def test_a_mixtures_own_featurization_reaches_its_tasks(tmp_path: Path) -> None:
    entry = {"mixture": ["mnli", "squad"], "train": {"max_length": 96, "stride": 32}}
    exp = _exp(tmp_path, intermediate=[entry])
    train = resolve_train(exp, exp.options[0].steps[0])
    assert train["tasks"]["mnli"] == {"max_length": 96}
    assert train["tasks"]["squad"]["max_length"] == 96 and train["tasks"]["squad"]["stride"] == 32
    other = resolve_train(exp, Step(("mnli", "squad"), {"sampling": "proportional"}))
    assert other["tasks"]["mnli"]["max_length"] != 96  # the entry's train was what set it


# ------------------------------------------------------------------ refused or said


@pytest.mark.parametrize(
    ("override", "key", "text"),
    [
        ("overrides.tatoeba.lr=1e-3", "overrides.tatoeba.lr", "evaluated, never trained"),
        ("overrides.tatoeba.stride=64", "overrides.tatoeba.stride", "only max_length"),
        ("overrides.xnli.stride=64", "overrides.xnli.stride", "only applies to extractive_qa"),
    ],
)
def test_a_setting_that_cannot_apply_is_refused_at_plan_time(
    tmp_path: Path, override: str, key: str, text: str
) -> None:
    with pytest.raises(ConfigError, match=text) as info:
        build_plan(_exp(tmp_path, override), count_examples=False)
    assert info.value.key == key


def test_a_qa_setting_on_a_mixture_without_qa_is_refused(tmp_path: Path) -> None:
    entry = {"mixture": ["mnli", "qqp"], "train": {"stride": 32}}
    with pytest.raises(ConfigError, match="mixture mix\\(mnli\\+qqp\\) has none") as info:
        build_plan(_exp(tmp_path, intermediate=[entry]), count_examples=False)
    assert info.value.key == "intermediate.0"


def test_settings_this_grid_leaves_unused_are_said(tmp_path: Path) -> None:
    exp = _exp(
        tmp_path, "overrides.squad.epochs=2", "overrides.qqp.lr=0.001",
        "overrides.qqp.max_train_examples=10",  # a data cap: applies inside the mixture
        "train.stride=64", intermediate=["none", {"mixture": ["mnli", "qqp"]}],
    )  # fmt: skip
    warnings = build_plan(exp, count_examples=False).warnings
    assert any(w.startswith("overrides.squad.epochs: squad is neither") for w in warnings)
    assert any(w.startswith("overrides.qqp.lr: qqp is only trained inside")
               for w in warnings)  # fmt: skip
    assert any(w.startswith("train.stride: no task") for w in warnings)
    assert len(warnings) == 3
    clean = _exp(tmp_path, "overrides.mnli.epochs=1", "overrides.tatoeba.max_length=64")
    assert build_plan(clean, count_examples=False).warnings == []


def test_an_empty_language_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty language list") as info:
        _exp(tmp_path, evaluation={"languages": {"xnli": []}})
    assert info.value.key == "evaluation.languages.xnli"


def test_plan_output_shows_the_warnings(tmp_path: Path) -> None:
    from rich.console import Console

    from xstilts.reporting.plan_view import plan_summary

    plan = build_plan(_exp(tmp_path, "overrides.squad.epochs=2"), count_examples=False)
    console = Console(record=True, width=200)
    for line in plan_summary(plan):
        console.print(line)
    assert "warning: overrides.squad.epochs: squad is neither trained" in console.export_text()
