"""HellaSwag: commonsense sentence completion, 4 endings (multiple choice)."""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_HINT = (
    "hellaswag_{train,val}.jsonl from https://github.com/rowanz/hellaswag into english/hellaswag/"
)

register_task(
    TaskSpec(
        name="hellaswag",
        type=TaskType.MULTIPLE_CHOICE,
        version="1",
        splits={
            "train": (
                SplitSource(
                    "hellaswag_jsonl",
                    "english/hellaswag/hellaswag_train.jsonl",
                    download_hint=_HINT,
                ),
            ),
            "dev": (
                SplitSource(
                    "hellaswag_jsonl", "english/hellaswag/hellaswag_val.jsonl", download_hint=_HINT
                ),
            ),
        },
        num_choices=4,
        metrics=("accuracy",),
        defaults=defaults(3),
        description="HellaSwag commonsense completion (Zellers et al., 2019)",
    )
)
