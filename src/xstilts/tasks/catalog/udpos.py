"""UD-POS (XTREME target): universal POS tags, English train, 33 languages.

Files are UD CoNLL-U under ``xtreme/udpos/UD_<Treebank>/`` (XTREME's download starts from the
same files); every treebank of a language is read (glob on the ``{lang}_`` file prefix).
XTREME's processed ``udpos/{split}-{lang}.tsv`` (``token<TAB>tag``) is accepted as a fallback.

Train stand-in (documented, see the shared data README): the shared data has no English train
CoNLL-U (EWT train is larger than the snapshot limit), only the complete EWT *dev* file. Train
therefore falls back, in tier order, to (0) ``UD_English-*/en_*-ud-train.conllu``, (1)
XTREME's ``train-en.tsv``, (2) ``en_ewt-ud-dev.conllu``. Tier 2 is read ONLY when tiers 0-1
have no file; with it, the English ``dev`` split (model selection) is the training data, so
numbers from such a run must not be reported as official.
"""

from __future__ import annotations

from xstilts.tasks.catalog import languages
from xstilts.tasks.catalog._common import defaults, xtreme_hint
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

UPOS_LABELS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
_HINT = xtreme_hint("udpos") + " (UD CoNLL-U treebank folders UD_*/ or XTREME's {split}-{lang}.tsv)"


def _split(split: str, langs: tuple[str, ...]) -> tuple[SplitSource, ...]:
    """CoNLL-U of every treebank of the language, else XTREME's processed TSV."""
    return (
        SplitSource(
            "conllu",
            f"xtreme/udpos/UD_*/{{lang}}_*-ud-{split}.conllu",
            languages=langs,
            download_hint=_HINT,
        ),
        SplitSource(
            "conllu",
            f"xtreme/udpos/{split}-{{lang}}.tsv",
            languages=langs,
            download_hint=_HINT,
            fallback=1,
        ),
    )


_TRAIN_STAND_IN = SplitSource(
    "conllu",
    "xtreme/udpos/UD_English-EWT/en_ewt-ud-dev.conllu",
    download_hint=_HINT,
    fallback=2,
)

register_task(
    TaskSpec(
        name="udpos",
        type=TaskType.TAGGING,
        version="1",
        splits={
            "train": (*_split("train", ("en",)), _TRAIN_STAND_IN),
            "dev": _split("dev", languages.UDPOS),
            "test": _split("test", languages.UDPOS),
        },
        labels=UPOS_LABELS,
        eval_languages=languages.UDPOS,
        eval_split="test",  # UD test files carry gold UPOS
        dev_split="dev",
        metrics=("f1",),  # XTREME scores POS with seqeval F1 as well
        is_target=True,
        defaults=defaults(10),
        description="Universal Dependencies POS tagging, 33 languages (XTREME)",
    )
)
