"""CommonsenseQA: 5-way multiple-choice questions (official nested jsonl)."""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_HINT = (
    "{train,dev}_rand_split.jsonl from https://www.tau-nlp.org/commonsenseqa "
    "into english/commonsenseqa/"
)

register_task(
    TaskSpec(
        name="commonsenseqa",
        type=TaskType.MULTIPLE_CHOICE,
        version="1",
        splits={
            "train": (
                SplitSource(
                    "csqa_jsonl",
                    "english/commonsenseqa/train_rand_split.jsonl",
                    download_hint=_HINT,
                ),
            ),
            "dev": (
                SplitSource(
                    "csqa_jsonl", "english/commonsenseqa/dev_rand_split.jsonl", download_hint=_HINT
                ),
            ),
        },
        num_choices=5,
        metrics=("accuracy",),
        defaults=defaults(3),
        description="CommonsenseQA (Talmor et al., 2019)",
    )
)
