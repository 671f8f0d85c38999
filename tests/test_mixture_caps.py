"""Per-task data caps apply inside a mixture: ``overrides.<task>.max_train_examples`` (and
``max_dev_examples``) cap that task's share of a ``{mixture: [...]}`` stage, as they cap the task
trained alone. Before, the mixture took only ``train``'s cap (issue 16: the CPU study's
MNLI+SQuAD mixture planned 8,000 example-passes instead of 6,000)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.models.tokenizer import train_tokenizer
from xstilts.pipelines import stage
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import Plan, build_plan
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples


def _plan(data_root: Path, tmp_path: Path, count: bool = True, **extra: Any) -> Plan:
    raw = {
        "name": "mixcaps", "data_dir": str(data_root), "encoder": {"tiny": {}},
        "intermediate": [{"mixture": ["sst2", "qqp"]}, "qqp"], "targets": ["pawsx"],
        "train": {"epochs": 2, "max_train_examples": 40, "max_dev_examples": 8},
        "overrides": {"qqp": {"max_train_examples": 10, "max_dev_examples": 4}}, **extra,
    }  # fmt: skip
    return build_plan(experiment_from_dict(raw, base_dir=tmp_path, check_data=False),
                      count_examples=count)  # fmt: skip


def _mixture(plan: Plan) -> Any:
    return next(s for s in plan.stages if len(s.spec.tasks) == 2)


def test_a_mixture_plans_each_task_with_its_own_cap(data_root: Path, tmp_path: Path) -> None:
    plan = _plan(data_root, tmp_path)
    mix = _mixture(plan)
    assert mix.spec.train["tasks"]["qqp"]["max_train_examples"] == 10
    assert mix.spec.train["tasks"]["qqp"]["max_dev_examples"] == 4
    assert "max_train_examples" not in mix.spec.train["tasks"]["sst2"]  # the stage's 40
    assert mix.passes == (40 + 10) * 2  # hand-computed: both train files have more rows
    qqp_alone = next(s for s in plan.stages if s.spec.tasks == ("qqp",))
    assert qqp_alone.passes == 10 * 2
    assert not [w for w in plan.warnings if "max_train_examples" in w]  # it applies: no "unused"


def test_a_mixture_without_per_task_caps_keeps_its_stage_id(
    data_root: Path, tmp_path: Path
) -> None:
    plain = _mixture(_plan(data_root, tmp_path, False, overrides={}))
    same = _mixture(_plan(data_root, tmp_path, False,
                          overrides={"qqp": {"max_train_examples": 40}}))  # fmt: skip
    assert same.stage_id == plain.stage_id  # equal to the stage's cap: nothing recorded
    capped = _mixture(_plan(data_root, tmp_path, False))
    assert capped.stage_id != plain.stage_id  # other data trained: another stage
    own = _plan(data_root, tmp_path, False, intermediate=[
        {"mixture": ["sst2", "qqp"], "train": {"max_train_examples": 30}}])  # fmt: skip
    # the mixture's own train is the highest layer: one cap for every task again
    assert own.stages[1].spec.train["max_train_examples"] == 30
    assert "max_train_examples" not in own.stages[1].spec.train["tasks"]["qqp"]


def test_other_per_task_training_settings_still_warn_inside_a_mixture(
    data_root: Path, tmp_path: Path
) -> None:
    plan = _plan(data_root, tmp_path, False, intermediate=[{"mixture": ["sst2", "qqp"]}],
                 overrides={"qqp": {"lr": 1e-3, "max_train_examples": 10}})  # fmt: skip
    assert [w.split(":")[0] for w in plan.warnings] == ["overrides.qqp.lr"]


def test_the_stage_trains_each_task_of_a_mixture_on_its_own_cap(
    data_root: Path, tmp_path: Path
) -> None:
    spec = _mixture(_plan(data_root, tmp_path, False)).spec
    qqp = get_task("qqp")
    texts = [ex.text_a for ex in load_examples(qqp, data_root, "train", "en", limit=50)]
    tokenizer = train_tokenizer(texts, 300)
    heads: dict[str, Any] = {t: {} for t in ("sst2", "qqp")}  # heads exist: no model needed
    sizes = {}
    for name in ("sst2", "qqp"):
        prepared = stage._prepare_task(spec, name, data_root, tokenizer, None, heads)  # type: ignore[arg-type]
        sizes[name] = (len(prepared.train_features), len(prepared.dev_examples))
    assert sizes == {"sst2": (40, 8), "qqp": (10, 4)}
