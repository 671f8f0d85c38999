"""Every shipped experiment config loads, validates and plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment import load_experiment
from xstilts.pipelines.plan import build_plan

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
# Real-scale configs that read downloads the shared data folder lacks (SQuAD, ANLI train, CCG).
NEEDS_ABSENT_DATA = {"phang2020_single.yaml"}  # CCGbank (LDC) is not in the shared data


def test_configs_are_shipped() -> None:
    names = {p.name for p in CONFIGS}
    assert {"demo.yaml", "demo_tiny.yaml", "chains.yaml", *NEEDS_ABSENT_DATA} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_plans(path: Path) -> None:
    exp = load_experiment(path, check_data=False)
    plan = build_plan(exp, count_examples=False)
    assert len(plan.chains) == len(exp.options) * len(exp.targets) * len(exp.seeds)
    assert plan.stages[0].spec.kind == "base"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_data_check(path: Path, data_root: Path) -> None:
    overrides = [f"data_dir={data_root}"]
    if path.name in NEEDS_ABSENT_DATA:
        with pytest.raises(ConfigError, match="no file exists"):
            load_experiment(path, overrides)
    else:
        load_experiment(path, overrides)
