"""Tatoeba (XTREME target): sentence retrieval xx -> en, 36 languages, accuracy.

Gold is line i <-> line i, true for LASER's original files (and the shared data). XTREME's
processed copy sorts the English side, which hides the gold; the reader refuses such a file.
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

register_task(
    TaskSpec(
        name="tatoeba",
        type=TaskType.RETRIEVAL,
        retrieval="search",
        version="2",  # 2: scored in XTREME's direction (English queries)
        splits={
            "test": (
                SplitSource(
                    "tatoeba",
                    "xtreme/tatoeba/{lang}-en.{lang}",  # the reader also opens `{lang}-en.en`
                    languages=languages.TATOEBA,
                    download_hint=xtreme_hint("tatoeba")
                    + " with the English side in LASER's original (aligned) order",
                ),
            ),
        },
        eval_languages=languages.TATOEBA,
        eval_split="test",
        dev_split="test",
        metrics=("accuracy",),
        is_target=True,
        defaults={"max_length": 512},
        description="Tatoeba similarity search, 36 languages (Artetxe & Schwenk, 2019)",
    )
)
