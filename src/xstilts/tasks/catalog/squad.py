"""SQuAD v1.1: English extractive QA (intermediate task; XQuAD/MLQA train on it).

When SQuAD is not on disk, English stand-ins in the same format are read (see ``SQUAD_TRAIN``).
"""

from __future__ import annotations

from xstilts.tasks.catalog._common import qa_defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

SQUAD_HINT = (
    "SQuAD v1.1 train-v1.1.json / dev-v1.1.json from https://rajpurkar.github.io/SQuAD-explorer/ "
    "into english/squad/"
)
# Documented stand-ins, read only when the SQuAD files are absent (a warning names them): the
# English TyDiQA-GoldP train file (SQuAD format, labelled) for training and MLQA-en dev for model
# selection. Not XQuAD-en: it is a subset of SQuAD dev and XQuAD's evaluation set.
SQUAD_TRAIN = (
    SplitSource("squad_json", "english/squad/train-v1.1.json", download_hint=SQUAD_HINT),
    SplitSource(
        "squad_json",
        "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json",
        download_hint=SQUAD_HINT,
        fallback=1,
    ),
)
SQUAD_DEV = (
    SplitSource("squad_json", "english/squad/dev-v1.1.json", download_hint=SQUAD_HINT),
    SplitSource(
        "squad_json",
        "xtreme/mlqa/MLQA_V1/dev/dev-context-en-question-en.json",
        download_hint=SQUAD_HINT,
        fallback=1,
    ),
)

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
