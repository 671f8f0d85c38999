"""CCG supertagging on CCGbank (Hockenmaier & Steedman, 2007): one supertag per word.

CCGbank is LDC-licensed (LDC2005T13) and absent from the shared data; loading raises a
DataError naming what to download and where to put it. Standard splits: train = WSJ sections
02-21, dev = 00, test = 23.
"""

from __future__ import annotations

from xstilts.tasks.catalog._common import defaults
from xstilts.tasks.catalog.ccg_tags import CCG_SUPERTAGS, UNKNOWN_TAG
from xstilts.tasks.readers.ccg import CCGBANK_HINT
from xstilts.tasks.registry import register_task
from xstilts.tasks.spec import SplitSource, TaskSpec, TaskType

AUTO = "english/ccgbank/data/AUTO"


def _sections(pattern: str) -> SplitSource:
    """All ``.auto`` files of the sections matched by ``pattern`` (a glob on the section)."""
    return SplitSource(
        "ccg_auto",
        f"{AUTO}/{pattern}/wsj_*.auto",
        fields={"unknown_tag": UNKNOWN_TAG},
        download_hint=CCGBANK_HINT,
    )


register_task(
    TaskSpec(
        name="ccg",
        type=TaskType.TAGGING,
        version="1",
        # Sections 02-21 need three globs (02-09, 10-19, 20-21); sources are concatenated.
        splits={
            "train": (_sections("0[2-9]"), _sections("1[0-9]"), _sections("2[01]")),
            "dev": (_sections("00"),),
            "test": (_sections("23"),),
        },
        labels=CCG_SUPERTAGS,
        metrics=("accuracy",),
        defaults=defaults(3),
        description="CCG supertagging on CCGbank (LDC2005T13; not in the shared data)",
    )
)
