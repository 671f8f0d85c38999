"""A target that selects checkpoints on a dev split it is also scored on says so, once, at plan
time: PAWS-X/PAN-X/MLQA read their English dev rows for selection and score them too; XNLI
selects on MNLI dev (``dev_split: select``) and says nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan

WARNING = (
    "checkpoint selection reads the dev split, whose English rows are also scored: "
    "the English result is selected on its own test rows"
)


def _warnings(data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
              **extra: Any) -> list[str]:  # fmt: skip
    raw = {
        "name": "sel", "data_dir": str(data_root), "encoder": {"tiny": {}}, "seeds": [0, 1],
        "intermediate": ["none", "mnli"], "targets": ["pawsx", "xnli", "panx"], **extra,
    }  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xstilts.pipelines.plan"):
        exp = experiment_from_dict(raw, base_dir=tmp_path, check_data=False)
        build_plan(exp, count_examples=False)
        build_plan(exp, count_examples=False)  # planned again in the same run: not repeated
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_selection_on_scored_rows_is_warned_once_per_task(
    data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    got = _warnings(data_root, tmp_path, caplog, train={"eval_every": 10})
    assert got == [f"pawsx: {WARNING}", f"panx: {WARNING}"]  # 2 options x 2 seeds: once each


@pytest.mark.parametrize(
    "extra",
    [
        {},  # no selection: the last checkpoint is kept
        {"train": {"max_steps": 5}},
        {
            "train": {"patience": 2},
            "evaluation": {"languages": {"pawsx": ["de", "fr"], "panx": ["de"]}},
        },  # no English
    ],
    ids=["no-selection", "no-selection-max-steps", "english-not-scored"],
)
def test_no_warning_without_selection_or_without_english_scored(
    extra: dict[str, Any], data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert _warnings(data_root, tmp_path, caplog, **extra) == []


def test_patience_on_one_task_warns_for_that_task(
    data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    got = _warnings(data_root, tmp_path, caplog, overrides={"pawsx": {"patience": 3}})
    assert got == [f"pawsx: {WARNING}"]
