"""SQuAD-v1.1 JSON (``data/paragraphs/qas/answers``): SQuAD, XQuAD, MLQA and TyDiQA-GoldP.

Record numbers in errors are the 1-based position of the QA in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import pairwise
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
# A re-identified QA id: the file's id, "#", the QA's 0-based position in the file.
_REIDENTIFIED = re.compile(r"^(.*)#(\d+)$")


def reidentify(ids: Sequence[str]) -> list[str]:
    """The guids of a file's QAs: the ids when unique, else ``f"{id}#{position}"`` for all.

    XTREME's TyDiQA train files keep only the last ``-`` field of each id, so 3,696 English
    QAs share 89 ids; scoring by id would mix their answers. Every id of such a file is
    re-identified (not only the repeated ones), so a file is either as given or all renamed.
    """
    if len(set(ids)) == len(ids) and all(ids):
        return list(ids)
    return [f"{qa_id}#{position}" for position, qa_id in enumerate(ids)]


def original_ids(guids: Sequence[str]) -> list[str] | None:
    """The file ids behind guids :func:`reidentify` renamed, or ``None`` if they are as given.

    Every guid must carry the ``#position`` suffix, and either the ids behind them repeat
    (the reason for renaming) or the positions increase in file order (the scored QAs are a
    prefix of the file): a file whose own unique ids merely end in ``#3`` is taken as given.
    """
    matches = [_REIDENTIFIED.match(g) for g in guids]
    if not guids or not all(matches):
        return None
    old = [m.group(1) for m in matches if m]
    positions = [int(m.group(2)) for m in matches if m]
    increasing = all(b > a for a, b in pairwise(positions))
    return old if len(set(old)) < len(old) or increasing else None


def _json(value: Any) -> str:
    """A value as it reads in the JSON file (``null``, ``5``), cut to 40 characters."""
    return json.dumps(value, ensure_ascii=False)[:40]


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
                if not isinstance(context, str):
                    raise DataError(
                        f"article {a}: a paragraph's 'context' is {_json(context)}, "
                        "expected a string",
                        file=path,
                        line=len(pairs) + 1,
                    )
                for qa in paragraph["qas"]:
                    if not isinstance(qa, dict):
                        raise DataError(
                            f"article {a}: a QA is not a JSON object ({_json(qa)})",
                            file=path,
                            line=len(pairs) + 1,
                        )
                    pairs.append((context, qa))
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
    raw_answers = qa.get("answers", [])
    if not isinstance(raw_answers, list):
        raise DataError(
            f"QA {qa.get('id')!r}: 'answers' is {_json(raw_answers)}, expected a list",
            file=path,
            line=record,
        )
    for raw in raw_answers:
        try:
            text, start = raw["text"], int(raw["answer_start"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"malformed answer {raw!r}", file=path, line=record) from None
        if not isinstance(text, str):  # null would become the answer "None"
            raise DataError(
                f"malformed answer {raw!r}: 'text' must be a string", file=path, line=record
            )
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
    guids = reidentify(ids)
    out: list[Example] = []
    unlabelled = 0
    for position, ((context, qa), qa_id, guid) in enumerate(zip(pairs, ids, guids, strict=True)):
        record = position + 1
        if "question" not in qa:
            raise DataError(f"QA {qa_id!r} has no 'question'", file=path, line=record)
        if not isinstance(qa["question"], str):
            raise DataError(
                f"QA {qa_id!r}: 'question' is {_json(qa['question'])}, expected a string",
                file=path,
                line=record,
            )
        _check_language(qa_id, lang, path, record)
        answers = _answers(qa, context, path, record)
        unlabelled += not answers
        out.append(
            QAExample(
                guid=guid,
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
