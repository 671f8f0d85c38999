"""PAWS-X (XTREME target): paraphrase identification, English train, 7 languages."""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import defaults, xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType


def _source(split: str, langs: tuple[str, ...]) -> SplitSource:
    # XTREME's files are tab-separated `sentence1 sentence2 label(0/1)`, no header.
    return SplitSource(
        "xnli_tsv",
        f"xtreme/pawsx/{split}-{{lang}}.tsv",
        languages=langs,
        label_map={"0": "not_paraphrase", "1": "paraphrase"},
        download_hint=xtreme_hint("pawsx"),
    )


register_task(
    TaskSpec(
        name="pawsx",
        type=TaskType.CLASSIFICATION,
        version="1",
        splits={
            "train": (_source("train", ("en",)),),
            "dev": (_source("dev", languages.PAWSX),),
            "test": (_source("test", languages.PAWSX),),
        },
        labels=("not_paraphrase", "paraphrase"),
        eval_languages=languages.PAWSX,
        eval_split="dev",
        dev_split="dev",
        metrics=("accuracy",),
        is_target=True,
        defaults=defaults(5),
        description="PAWS-X adversarial paraphrase identification, 7 languages (Yang et al., 2019)",
    )
)
