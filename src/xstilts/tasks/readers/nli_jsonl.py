"""NLI JSON-lines files: MultiNLI/SNLI (``gold_label, sentence1, sentence2``) and ANLI."""

from __future__ import annotations

from pathlib import Path

from xstilts.tasks.examples import ClassificationExample, Example
from xstilts.tasks.readers._common import (
    LabelMapper,
    field_name,
    get_field,
    get_label,
    get_text,
    iter_jsonl,
    origin,
)
from xstilts.tasks.readers._registry import register_reader
from xstilts.tasks.spec import SplitSource, TaskSpec


@register_reader("nli_jsonl")
def read_nli_jsonl(path: Path, source: SplitSource, spec: TaskSpec, lang: str) -> list[Example]:
    """One sentence-pair example per JSON line.

    ``source.fields`` maps ``premise`` / ``hypothesis`` / ``label`` / ``guid`` to the file's keys
    (defaults ``sentence1`` / ``sentence2`` / ``gold_label`` / none); ANLI uses
    ``{"premise": "premise", "hypothesis": "hypothesis", "label": "label", "guid": "uid"}``.
    Records whose raw label is in ``source.skip_labels`` (SNLI's ``-``) are dropped and counted.

    Raises:
        DataError: for invalid JSON, a missing field, a null or non-string text, or an
            unknown label.
    """
    keys = {
        "premise": field_name(source, "premise", "sentence1"),
        "hypothesis": field_name(source, "hypothesis", "sentence2"),
        "label": field_name(source, "label", "gold_label"),
    }
    guid_key = source.fields.get("guid")
    labels = LabelMapper(source, spec, path)
    out: list[Example] = []
    for number, record in iter_jsonl(path):
        label = labels(get_label(record, keys["label"], path, number), number)
        if label is None:
            continue
        guid = str(get_field(record, guid_key, path, number)) if guid_key else str(number)
        out.append(
            ClassificationExample(
                guid=f"{path.stem}-{guid}",
                text_a=get_text(record, keys["premise"], path, number),
                text_b=get_text(record, keys["hypothesis"], path, number),
                label=label,
                origin=origin(path, number),
            )
        )
    labels.report()
    return out
