"""`of_type`: the checked narrowing a task type's format applies to its examples."""

from __future__ import annotations

import pytest

from xstilts.errors import DataError
from xstilts.tasks.examples import ClassificationExample, TaggingExample, of_type
from xstilts.tasks.formats.tagging import TaggingFormat
from xstilts.tasks.registry import get_task


def test_of_type_keeps_records_and_order() -> None:
    exs = [ClassificationExample(str(i), f"s{i}", None, i % 2) for i in range(3)]
    out = of_type(exs, ClassificationExample)
    assert out == exs
    assert [ex.guid for ex in out] == ["0", "1", "2"]


def test_of_type_names_the_foreign_record() -> None:
    exs = [
        ClassificationExample("0", "a", None, 0),
        TaggingExample("1", ("Paris",), (1,), origin="dev-en.tsv:4"),
    ]
    with pytest.raises(DataError, match=r"ClassificationExample.*TaggingExample.*dev-en.tsv:4"):
        of_type(exs, ClassificationExample)


def test_a_format_refuses_another_types_examples() -> None:
    """Scoring tagging predictions on classification records is one clear DataError."""
    spec = get_task("panx")
    exs = [ClassificationExample("0", "a", None, 0, origin="x.tsv:1")]
    with pytest.raises(DataError, match="expected TaggingExample records"):
        TaggingFormat().score(exs, [[0]], spec, "en")
