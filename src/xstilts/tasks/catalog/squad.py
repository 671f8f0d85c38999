"""SQuAD v1.1: English extractive QA (intermediate task; XQuAD/MLQA train on it)."""

from __future__ import annotations

from xstilts.tasks.catalog._common import qa_defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

SQUAD_HINT = (
    "SQuAD v1.1 train-v1.1.json / dev-v1.1.json from https://rajpurkar.github.io/SQuAD-explorer/ "
    "into english/squad/"
)
SQUAD_TRAIN = SplitSource("squad_json", "english/squad/train-v1.1.json", download_hint=SQUAD_HINT)
SQUAD_DEV = SplitSource("squad_json", "english/squad/dev-v1.1.json", download_hint=SQUAD_HINT)

register_task(
    TaskSpec(
        name="squad",
        type=TaskType.EXTRACTIVE_QA,
        version="1",
        splits={"train": SQUAD_TRAIN, "dev": SQUAD_DEV},
        metrics=("exact_match", "f1"),
        answer_normalization="squad",
        defaults=qa_defaults(2),
        description="SQuAD v1.1 extractive QA (Rajpurkar et al., 2016)",
    )
)
