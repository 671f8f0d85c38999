"""PAN-X / WikiANN NER (XTREME target): English train, 40 languages, seqeval F1."""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import defaults, xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

PANX_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


def _source(split: str, langs: tuple[str, ...]) -> SplitSource:
    return SplitSource(
        "token_tag_tsv",
        f"xtreme/panx/{split}-{{lang}}.tsv",
        languages=langs,
        download_hint=xtreme_hint("panx"),
    )


register_task(
    TaskSpec(
        name="panx",
        type=TaskType.TAGGING,
        version="1",
        splits={
            "train": (_source("train", ("en",)),),
            "dev": (_source("dev", languages.PANX),),
            "test": (_source("test", languages.PANX),),
        },
        labels=PANX_LABELS,
        eval_languages=languages.PANX,
        eval_split="dev",
        dev_split="dev",
        metrics=("f1",),
        is_target=True,
        defaults=defaults(10),
        description="PAN-X (WikiANN) named entity recognition, 40 languages (Pan et al., 2017)",
    )
)
