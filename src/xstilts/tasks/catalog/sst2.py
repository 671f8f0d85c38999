"""SST-2 (GLUE): binary sentiment of single sentences, headed TSV ``sentence<TAB>label``."""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

_HINT = "GLUE SST-2 (https://gluebenchmark.com/tasks) train.tsv/dev.tsv into english/sst2/"
_LABELS = {"0": "negative", "1": "positive"}


def _source(split: str) -> SplitSource:
    return SplitSource(
        "glue_tsv",
        f"english/sst2/{split}.tsv",
        fields={"text_a": "sentence", "label": "label"},
        label_map=_LABELS,
        download_hint=_HINT,
    )


register_task(
    TaskSpec(
        name="sst2",
        type=TaskType.CLASSIFICATION,
        version="1",
        splits={"train": (_source("train"),), "dev": (_source("dev"),)},
        labels=("negative", "positive"),
        metrics=("accuracy",),
        defaults=defaults(3),
        description="Stanford Sentiment Treebank, binary (GLUE SST-2)",
    )
)
