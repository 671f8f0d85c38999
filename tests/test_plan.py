"""Plans: shared prefixes appear once, stable ids, savings, retrieval evaluation placement."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from xstilts.pipelines import plan as plan_mod
from xstilts.pipelines.experiment import ExperimentSpec, experiment_from_dict
from xstilts.pipelines.overrides import apply_overrides
from xstilts.pipelines.plan import build_plan, resolve_train

# Train-set sizes of the fake data (no files are read).
SIZES = {"mnli": 100, "squad": 50, "xnli": 100, "pawsx": 40}


@pytest.fixture(autouse=True)
def fake_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Example counts from SIZES and constant data fingerprints: plans without data files."""

    def load_examples(spec: Any, data_dir: Path, split: str, lang: str) -> list[None]:
        return [None] * SIZES[spec.name]

    monkeypatch.setattr(plan_mod, "load_examples", load_examples)
    monkeypatch.setattr(plan_mod, "data_fingerprint", lambda spec, *a, **k: f"fp-{spec.name}")


def _exp(tmp_path: Path, *overrides: str) -> ExperimentSpec:
    raw = {
        "name": "grid",
        "output_dir": str(tmp_path / "out"),
        "data_dir": str(tmp_path / "data"),
        "encoder": {"name": "xlm-roberta-large"},
        "seeds": [1],
        "intermediate": ["mnli", ["mnli", "squad"]],
        "targets": ["xnli", "pawsx"],
        "train": {"epochs": 1},
        "overrides": {"squad": {"epochs": 2}, "mnli": {"max_train_examples": 60}},
    }
    return experiment_from_dict(apply_overrides(raw, overrides), check_data=False)


def test_shared_prefix_is_planned_once(tmp_path: Path) -> None:
    plan = build_plan(_exp(tmp_path))
    labels = Counter(s.spec.label for s in plan.stages)
    assert labels == {"base": 1, "mnli": 1, "squad": 1, "xnli": 2, "pawsx": 2}
    assert [c.label for c in plan.chains] == [
        "mnli→xnli", "mnli→pawsx", "mnli→squad→xnli", "mnli→squad→pawsx",
    ]  # fmt: skip
    ids = [s.stage_id for s in plan.stages]
    for s in plan.stages:  # topological: every parent precedes its child
        assert s.spec.parent is None or ids.index(s.spec.parent) < ids.index(s.stage_id)
    mnli = next(s for s in plan.stages if s.spec.label == "mnli")
    assert all(c.stage_ids[1] == mnli.stage_id for c in plan.chains)
    assert len(mnli.chains) == 4


def test_savings_hand_computed(tmp_path: Path) -> None:
    plan = build_plan(_exp(tmp_path))
    passes = {s.spec.label + str(s.spec.parent is not None): s.passes for s in plan.stages}
    assert passes["mnliTrue"] == 60  # min(100, 60) x 1 epoch
    assert passes["squadTrue"] == 100  # 50 x 2 epochs
    # alone: (60+100) + (60+40) + (60+100+100) + (60+100+40); shared: each stage once.
    assert plan.passes_alone == 720
    assert plan.passes_shared == 60 + 100 + 100 + 40 + 100 + 40
    assert plan.savings == pytest.approx(1 - 440 / 720)
    # By hand: mnli once for option "mnli" (60), mnli + squad once for "mnli→squad" (160), and
    # each option's two targets (100 + 40) x 2: sharing saves only the common mnli step.
    assert plan.passes_by_hand == 60 + 160 + 2 * (100 + 40)
    assert plan.savings_vs_by_hand == pytest.approx(1 - 440 / 500)
    capped = build_plan(_exp(tmp_path, "overrides.squad.max_steps=3", "train.batch_size=4"))
    squad = next(s for s in capped.stages if s.spec.label == "squad")
    assert squad.passes == 12  # max_steps x batch_size caps 100 example-passes


def test_stage_ids_stable_and_sensitive(tmp_path: Path) -> None:
    first = {
        s.spec.label + (s.spec.parent or ""): s.stage_id for s in build_plan(_exp(tmp_path)).stages
    }
    again = [s.stage_id for s in build_plan(_exp(tmp_path)).stages]
    assert sorted(first.values()) == sorted(again)
    lr = build_plan(_exp(tmp_path, "overrides.mnli.lr=3e-5"))
    base, mnli = lr.stages[0], next(s for s in lr.stages if s.spec.label == "mnli")
    assert base.stage_id in first.values()  # the base stage does not depend on lr
    assert mnli.stage_id not in first.values()
    # squad's own settings are unchanged, but its parent changed: a new id.
    squad = next(s for s in lr.stages if s.spec.label == "squad")
    assert squad.stage_id not in first.values()
    # Evaluation settings are not part of any id.
    ev = build_plan(_exp(tmp_path, "evaluation.max_eval_examples=5"))
    assert sorted(s.stage_id for s in ev.stages) == sorted(first.values())


def test_train_resolution_order(tmp_path: Path) -> None:
    exp = _exp(tmp_path, "train.max_length=128", "overrides.pawsx={max_length: 64, lr: 2e-5}")
    step = plan_mod.Step(("pawsx",))
    train = resolve_train(exp, step)
    assert train["lr"] == 2e-5  # overrides[task] beat everything
    assert train["epochs"] == 1.0  # experiment train beats the task default (5)
    assert train["weight_decay"] == 0.01  # built-in default
    assert train["tasks"] == {"pawsx": {"max_length": 64}}
    xnli = resolve_train(exp, plan_mod.Step(("xnli",)))
    assert xnli["tasks"] == {"xnli": {"max_length": 128}}
    squad = resolve_train(exp, plan_mod.Step(("squad",)))["tasks"]["squad"]
    assert squad == {"max_length": 128, "stride": 128, "max_query_length": 64, "n_best": 20,
                     "max_answer_length": 30}  # fmt: skip


def test_retrieval_targets_evaluate_on_base_and_intermediates(tmp_path: Path) -> None:
    plan = build_plan(_exp(tmp_path, "targets=[xnli, tatoeba]", "intermediate=[none, mnli]"))
    by_role = {(s.spec.role, s.spec.label): s.spec.evaluate for s in plan.stages}
    assert by_role[("base", "base")] == ("tatoeba",)
    assert by_role[("intermediate", "mnli")] == ("tatoeba",)
    assert by_role[("target", "xnli")] == ("xnli",)
    tatoeba = {c.option: c for c in plan.chains if c.target == "tatoeba"}
    assert tatoeba["none"].target_stage_id == plan.stages[0].stage_id
    mnli = next(s for s in plan.stages if s.spec.label == "mnli")
    assert tatoeba["mnli"].target_stage_id == mnli.stage_id
    assert not any(s.spec.label == "tatoeba" for s in plan.stages)  # nothing trained


def test_seeds_share_the_base_and_cache_is_detected(tmp_path: Path) -> None:
    exp = _exp(tmp_path, "seeds=[1,2]", "intermediate=[mnli]", "targets=[xnli]")
    plan = build_plan(exp)
    assert [s.spec.label for s in plan.stages] == ["base", "mnli", "xnli", "mnli", "xnli"]
    assert {s.spec.seed for s in plan.stages[1:]} == {1, 2}
    done = plan.stages[1].dir
    done.mkdir(parents=True)
    (done / "COMPLETE").write_text("x")
    again = build_plan(exp)
    assert [s.cached for s in again.stages] == [False, True, False, False, False]
    assert again.passes_to_run == again.passes_shared - again.stages[1].passes


def test_ray_executor_import_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray installed the ray executor fails with one ConfigError naming the fix."""
    import sys

    from xstilts.errors import ConfigError
    from xstilts.pipelines import executor_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match="needs Ray") as info:
        executor_ray.import_ray()
    assert "pip install" in (info.value.hint or "")
