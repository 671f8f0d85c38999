"""XQuAD (XTREME target): train on SQuAD v1.1, evaluate zero-shot in 12 languages.

XQuAD has a single split (called ``test``). Its English part is a subset of SQuAD v1.1 dev,
so never select models on XQuAD: ``dev`` is SQuAD dev. The official release has Romanian
(``xquad.ro.json``, evaluated by XTREME-R) besides XTREME's 11 languages; restrict
``evaluation.languages.xquad`` to XTREME's 11 to compare with the XTREME table.
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import qa_defaults
from xstilts.tasks.catalog.squad import SQUAD_DEV, SQUAD_TRAIN
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

register_task(
    TaskSpec(
        name="xquad",
        type=TaskType.EXTRACTIVE_QA,
        version="2",  # 2: Romanian (XTREME-R) is scored when xquad.ro.json is present
        splits={
            "train": SQUAD_TRAIN,
            "dev": SQUAD_DEV,
            "test": (
                SplitSource(
                    "squad_json",
                    "xtreme/xquad/xquad.{lang}.json",
                    languages=languages.XQUAD,
                    download_hint="xquad.{lang}.json from https://github.com/deepmind/xquad into "
                    "<data_dir>/xtreme/xquad/",
                ),
            ),
        },
        eval_languages=languages.XQUAD,
        eval_split="test",
        dev_split="dev",
        metrics=("exact_match", "f1"),
        answer_normalization="squad",
        is_target=True,
        defaults=qa_defaults(2),
        description="XQuAD cross-lingual extractive QA, 12 languages (Artetxe et al., 2020)",
    )
)
