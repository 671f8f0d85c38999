"""MLQA (XTREME target): train on SQuAD v1.1, evaluate same-language QA in 7 languages.

Scored with MLQA's per-language answer normalisation. The labelled split present in the
shared data is ``dev``, which is also XTREME's model-selection split.
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import qa_defaults, xtreme_hint
from xstilts.tasks.catalog.squad import SQUAD_TRAIN
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType


def _source(split: str) -> SplitSource:
    return SplitSource(
        "squad_json",
        f"xtreme/mlqa/MLQA_V1/{split}/{split}-context-{{lang}}-question-{{lang}}.json",
        languages=languages.MLQA,
        download_hint=xtreme_hint("mlqa"),
    )


register_task(
    TaskSpec(
        name="mlqa",
        type=TaskType.EXTRACTIVE_QA,
        version="1",
        splits={"train": SQUAD_TRAIN, "dev": (_source("dev"),), "test": (_source("test"),)},
        eval_languages=languages.MLQA,
        eval_split="dev",
        dev_split="dev",
        metrics=("exact_match", "f1"),
        answer_normalization="mlqa",
        is_target=True,
        defaults=qa_defaults(2),
        description="MLQA multilingual extractive QA, 7 languages (Lewis et al., 2020)",
    )
)
