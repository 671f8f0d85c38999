"""XNLI (XTREME target): train on English MultiNLI, evaluate zero-shot in 15 languages.

The labelled evaluation set in XTREME's processed layout is ``dev-{lang}.tsv`` (the XTREME
repository hides test labels for several tasks), so ``eval_split`` is ``dev``. Model selection
(``train.eval_every``, ``patience``) therefore reads MultiNLI's held-out dev set, never the
English XNLI rows that are scored: selecting on them would inflate the English result (v2).
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import NLI_LABELS, defaults, xtreme_hint
from xstilts.tasks.catalog.nli import MNLI_DEV, MNLI_TRAIN
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType


def _source(split: str) -> SplitSource:
    return SplitSource(
        "xnli_tsv",
        f"xtreme/xnli/{split}-{{lang}}.tsv",
        languages=languages.XNLI,
        label_map={"contradictory": "contradiction"},  # XNLI's raw name for the label
        download_hint=xtreme_hint("xnli"),
    )


register_task(
    TaskSpec(
        name="xnli",
        type=TaskType.CLASSIFICATION,
        version="2",
        # XTREME's XNLI training data is English MultiNLI train; selection is on MultiNLI dev.
        splits={
            "train": (MNLI_TRAIN,),
            "select": (MNLI_DEV,),
            "dev": (_source("dev"),),
            "test": (_source("test"),),
        },
        labels=NLI_LABELS,
        eval_languages=languages.XNLI,
        eval_split="dev",
        dev_split="select",
        metrics=("accuracy",),
        is_target=True,
        defaults=defaults(2),
        description="XNLI cross-lingual NLI, 15 languages (Conneau et al., 2018)",
    )
)
