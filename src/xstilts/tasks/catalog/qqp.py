"""QQP (Quora Question Pairs, GLUE): paraphrase classification over a headed TSV."""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_HINT = "GLUE QQP (https://gluebenchmark.com/tasks) train.tsv/dev.tsv into english/qqp/"
# Columns by header name: the GLUE file is `id qid1 qid2 question1 question2 is_duplicate`.
_FIELDS = {"guid": "id", "text_a": "question1", "text_b": "question2", "label": "is_duplicate"}
_LABELS = {"0": "not_duplicate", "1": "duplicate"}


def _source(split: str) -> SplitSource:
    return SplitSource(
        "glue_tsv",
        f"english/qqp/{split}.tsv",
        fields=_FIELDS,
        label_map=_LABELS,
        download_hint=_HINT,
    )


register_task(
    TaskSpec(
        name="qqp",
        type=TaskType.CLASSIFICATION,
        version="1",
        splits={"train": (_source("train"),), "dev": (_source("dev"),)},
        labels=("not_duplicate", "duplicate"),
        metrics=("accuracy",),
        defaults=defaults(2),
        description="Quora Question Pairs paraphrase detection (GLUE)",
    )
)
