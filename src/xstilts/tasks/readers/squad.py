"""SQuAD-v1.1 JSON (``data/paragraphs/qas/answers``): SQuAD, XQuAD, MLQA and TyDiQA-GoldP.

Record numbers in errors are the 1-based position of the QA in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xstilts.errors import DataError
from xstilts.tasks.examples import Answer, Example, QAExample
from xstilts.tasks.readers._common import load_json, logger
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec

# TyDi ids carry the language name ("arabic--6027...-0"); XTREME's train split keeps only the
# last "-" field, so English train ids have no prefix at all.
TYDI_LANGUAGES = {
    "arabic": "ar",
    "bengali": "bn",
    "english": "en",
    "finnish": "fi",
    "indonesian": "id",
    "japanese": "ja",
    "korean": "ko",
    "russian": "ru",
    "swahili": "sw",
    "telugu": "te",
    "thai": "th",
}
_TYDI_PREFIX = re.compile(r"^([a-z]+)--")


def _qas(data: Any, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(context, qa)`` pairs in file order.

    Raises:
        DataError: when the SQuAD structure is broken.
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError("not SQuAD JSON: no top-level 'data' list", file=path)
    pairs: list[tuple[str, dict[str, Any]]] = []
    for a, article in enumerate(data["data"], start=1):
        try:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                pairs.extend((context, qa) for qa in paragraph["qas"])
        except (KeyError, TypeError) as exc:
            raise DataError(
                f"article {a}: missing or malformed SQuAD field ({exc})",
                file=path,
                line=len(pairs) + 1,
            ) from None
    return pairs


def _check_language(qa_id: str, lang: str, path: Path, record: int) -> None:
    """Reject a TyDi id from another language (guards against multilingual TyDiQA training).

    jiant's "English" TyDiQA train mixed all languages; a zero-shot study must not.
    """
    match = _TYDI_PREFIX.match(qa_id)
    if match is None or match.group(1) not in TYDI_LANGUAGES:
        return
    if TYDI_LANGUAGES[match.group(1)] != lang:
        raise DataError(
            f"QA id {qa_id!r} is {match.group(1)} data in a file read as language {lang!r} "
            "(non-English TyDiQA must not leak into zero-shot training)",
            file=path,
            line=record,
        )


def _answers(qa: dict[str, Any], context: str, path: Path, record: int) -> tuple[Answer, ...]:
    """Validated gold answers; ``()`` for XTREME's unlabelled ``{answer_start: 0, text: ""}``.

    Raises:
        DataError: when an answer's text is not found at its ``answer_start`` offset.
    """
    answers: list[Answer] = []
    for raw in qa.get("answers", []):
        try:
            text, start = str(raw["text"]), int(raw["answer_start"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"malformed answer {raw!r}", file=path, line=record) from None
        if not text:
            continue  # the unlabelled placeholder
        if context[start : start + len(text)] != text:
            found = context[start : start + len(text)]
            raise DataError(
                f"answer {text!r} not found at answer_start {start} of QA {qa.get('id')!r} "
                f"(context has {found!r} there)",
                file=path,
                line=record,
            )
        answers.append(Answer(text=text, start=start))
    return tuple(answers)


@register_reader("squad_json")
def read_squad_json(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """One :class:`QAExample` per QA.

    ``guid`` is the QA id when ids are unique in the file, otherwise ``f"{id}#{position}"``
    (0-based QA position) for every QA: XTREME's TyDiQA train files keep only the last ``-``
    field of each id, so 3,696 English QAs share 89 ids.

    Raises:
        DataError: for invalid JSON, broken structure, an answer not at its offset, or a TyDi
            id of another language than ``lang``.
    """
    pairs = _qas(load_json(path), path)
    ids = [str(qa.get("id", "")) for _, qa in pairs]
    unique = len(set(ids)) == len(ids) and all(ids)
    out: list[Example] = []
    unlabelled = 0
    for position, ((context, qa), qa_id) in enumerate(zip(pairs, ids, strict=True)):
        record = position + 1
        if "question" not in qa:
            raise DataError(f"QA {qa_id!r} has no 'question'", file=path, line=record)
        _check_language(qa_id, lang, path, record)
        answers = _answers(qa, context, path, record)
        unlabelled += not answers
        out.append(
            QAExample(
                guid=qa_id if unique else f"{qa_id}#{position}",
                question=str(qa["question"]),
                context=context,
                answers=answers,
                origin=f"{path}:{record}",
            )
        )
    if unlabelled:
        # Kept (they can still be predicted on) but cannot be scored: say so once.
        logger.warning("%s: %d of %d QAs have no gold answer", path, unlabelled, len(out))
    return out
