"""BUCC 2018 (XTREME target): parallel-sentence mining, 4 languages, F1 at the best threshold.

No training: sentences are embedded with the encoder as is. XTREME's BUCC "dev" files are the
shared-task sample files (test gold is private), so ``eval_split`` is ``dev``.
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType


def _source(split: str) -> SplitSource:
    # The reader also opens the `.en` and `.gold` siblings of this file.
    return SplitSource(
        "bucc",
        f"xtreme/bucc2018/{{lang}}-en.{split}.{{lang}}",
        languages=languages.BUCC,
        download_hint=xtreme_hint("bucc2018"),
    )


register_task(
    TaskSpec(
        name="bucc",
        type=TaskType.RETRIEVAL,
        retrieval="mining",
        version="1",
        splits={"dev": (_source("dev"),), "test": (_source("test"),)},
        eval_languages=languages.BUCC,
        eval_split="dev",
        dev_split="dev",
        metrics=("f1",),
        is_target=True,
        defaults={"max_length": 512},
        description="BUCC 2018 bitext mining, 4 languages (Zweigenbaum et al., 2018)",
    )
)
