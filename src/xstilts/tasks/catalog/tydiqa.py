"""TyDiQA-GoldP (XTREME target): train on the ENGLISH TyDiQA-GoldP train file only, 9 languages.

jiant's "English" TyDiQA training read the multilingual train file; here the train pattern names
only ``tydiqa.goldp.en.train.json`` and the reader rejects any QA whose TyDi id names another
language. XTREME uses GoldP dev as its test set; XTREME's processed dev files have NO answers
(the QA format then reports no score).
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import qa_defaults, xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_ROOT = "xtreme/tydiqa"

register_task(
    TaskSpec(
        name="tydiqa",
        type=TaskType.EXTRACTIVE_QA,
        version="2",  # 2: SQuAD answer normalisation, as XTREME scores it
        splits={
            "train": (
                SplitSource(
                    "squad_json",
                    f"{_ROOT}/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json",
                    languages=("en",),
                    download_hint=xtreme_hint("tydiqa"),
                ),
            ),
            "dev": (
                SplitSource(
                    "squad_json",
                    f"{_ROOT}/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{{lang}}.dev.json",
                    languages=languages.TYDIQA,
                    download_hint=xtreme_hint("tydiqa"),
                ),
            ),
        },
        eval_languages=languages.TYDIQA,
        eval_split="dev",
        dev_split="dev",
        metrics=("exact_match", "f1"),
        answer_normalization="squad",  # XTREME scores TyDiQA-GoldP with SQuAD v1.1 EM/F1
        is_target=True,
        defaults=qa_defaults(2),
        description="TyDiQA-GoldP extractive QA, 9 languages (Clark et al., 2020)",
    )
)
