"""English NLI intermediate tasks: MNLI, SNLI, ANLI (R1-R3) and ANLI+ (all three concatenated).

All four share the ``"nli"`` head (same three labels), so a chain of them keeps one classifier.
"""

from __future__ import annotations

from xstilts.tasks.catalog._common import NLI_LABELS, defaults
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

MNLI_HINT = "MultiNLI 1.0 jsonl from https://cims.nyu.edu/~sbowman/multinli/ into english/mnli/"
SNLI_HINT = "SNLI 1.0 jsonl from https://nlp.stanford.edu/projects/snli/ into english/snli/"
ANLI_HINT = "ANLI v1.0 from https://github.com/facebookresearch/anli (R1-R3) into english/anli/"

# MNLI/SNLI gold_label "-" = no annotator consensus: dropped and counted, as is usual.
MNLI_TRAIN = SplitSource(
    "nli_jsonl",
    "english/mnli/multinli_1.0_train.jsonl",
    skip_labels=("-",),
    download_hint=MNLI_HINT,
)
MNLI_DEV = SplitSource(
    "nli_jsonl",
    "english/mnli/multinli_1.0_dev_matched.jsonl",
    skip_labels=("-",),
    download_hint=MNLI_HINT,
)
SNLI_TRAIN = SplitSource(
    "nli_jsonl", "english/snli/snli_1.0_train.jsonl", skip_labels=("-",), download_hint=SNLI_HINT
)
SNLI_DEV = SplitSource(
    "nli_jsonl", "english/snli/snli_1.0_dev.jsonl", skip_labels=("-",), download_hint=SNLI_HINT
)
SNLI_TEST = SplitSource(
    "nli_jsonl", "english/snli/snli_1.0_test.jsonl", skip_labels=("-",), download_hint=SNLI_HINT
)
_ANLI_FIELDS = {"premise": "premise", "hypothesis": "hypothesis", "label": "label", "guid": "uid"}
_ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def anli_source(split: str) -> SplitSource:
    """ANLI rounds 1-3 of one split (``R1`` < ``R2`` < ``R3`` by glob order)."""
    return SplitSource(
        "nli_jsonl",
        f"english/anli/R[123]/{split}.jsonl",
        fields=_ANLI_FIELDS,
        label_map=_ANLI_LABELS,
        download_hint=ANLI_HINT,
    )


def _nli(
    name: str,
    splits: dict[str, tuple[SplitSource, ...]],
    description: str,
    epochs: float = 2,
) -> TaskSpec:
    """Register an English NLI task on the shared ``"nli"`` head."""
    return register_task(
        TaskSpec(
            name=name,
            type=TaskType.CLASSIFICATION,
            version="1",
            splits=splits,
            labels=NLI_LABELS,
            head="nli",
            metrics=("accuracy",),
            defaults=defaults(epochs),
            description=description,
        )
    )


_nli("mnli", {"train": (MNLI_TRAIN,), "dev": (MNLI_DEV,)}, "MultiNLI (Williams et al., 2018)")
_nli(
    "snli",
    {"train": (SNLI_TRAIN,), "dev": (SNLI_DEV,), "test": (SNLI_TEST,)},
    "SNLI (Bowman et al., 2015); '-' gold labels skipped",
)
_nli(
    "anli",
    {
        "train": (anli_source("train"),),
        "dev": (anli_source("dev"),),
        "test": (anli_source("test"),),
    },
    "Adversarial NLI rounds 1-3 together (Nie et al., 2020)",
)
_nli(
    "anli_plus",
    {
        "train": (SNLI_TRAIN, MNLI_TRAIN, anli_source("train")),
        "dev": (anli_source("dev"),),
        "test": (anli_source("test"),),
    },
    "ANLI+: SNLI + MNLI + ANLI train concatenated, scored on ANLI (Nie et al., 2020)",
)
