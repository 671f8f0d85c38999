"""Cosmos QA: 4-way reading comprehension with commonsense (official CSV)."""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_HINT = "train.csv/valid.csv from https://wilburone.github.io/cosmos/ into english/cosmosqa/"

register_task(
    TaskSpec(
        name="cosmosqa",
        type=TaskType.MULTIPLE_CHOICE,
        version="1",
        splits={
            "train": (
                SplitSource("cosmosqa_csv", "english/cosmosqa/train.csv", download_hint=_HINT),
            ),
            "dev": (
                SplitSource("cosmosqa_csv", "english/cosmosqa/valid.csv", download_hint=_HINT),
            ),
        },
        num_choices=4,
        metrics=("accuracy",),
        defaults=defaults(3),
        description="Cosmos QA commonsense reading comprehension (Huang et al., 2019)",
    )
)
