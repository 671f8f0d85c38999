"""The malformed-input catalogue: every bad input gets one clear, located error.

Each case of :data:`bad_input_cases.CASES` builds its bad input in ``tmp_path`` and must raise
its error type with every expected fragment (file and line/record, or YAML key, and the
problem) in the message, and no deep traceback type (a bare ``KeyError``/``RuntimeError``...).
``docs/errors.md`` is generated from the same list: ``python tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xstilts.errors import DataError

sys.path.insert(0, str(Path(__file__).parent))
from bad_input_cases import CASES, Bad
from bad_input_plan import plan_ok

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
HEADER = """# Errors: the malformed-input catalogue

Every bad input xstilts meets is answered by one error of the `XstiltsError` family
(`ConfigError`, `DataError`, `CheckpointError`, `TrainingError`), printed on one line as
`file:line [yaml.key]: problem (hint)`. Each row below is a test in `tests/test_bad_inputs.py`
that builds the bad input and checks the error type and that its message contains the
fragments shown. This file is generated from that catalogue: `python tests/test_bad_inputs.py`.

Everything that can be checked without a model is checked by `xstilts plan` and at the start of
`xstilts run`, before any stage trains (the `plan-*` rows, and every YAML row): every file any
stage will read (train, dev and evaluation files of every language, tokenizer and MLM texts) is
read with the real readers, QA windows and `max_length` are checked against the encoder, and
folders are checked. The error then also names the YAML key that needs the file (`[targets.0]`).

| # | id | bad input | error | message contains | what to do |
|---|----|-----------|-------|------------------|------------|
"""


def render_doc() -> str:
    """The Markdown of ``docs/errors.md``."""
    rows = []
    for i, case in enumerate(CASES, start=1):
        fragments = "; ".join("`" + e.replace("|", "\\|") + "`" for e in case.expect)
        error = case.error.__name__
        rows.append(f"| {i} | {case.id} | {case.what} | {error} | {fragments} | {case.fix} |")
    return HEADER + "\n".join(rows) + "\n"


def test_catalogue_has_at_least_95_distinct_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 95 and len(set(ids)) == len(ids)


def test_the_plan_cases_start_from_a_valid_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every plan-time case breaks one thing of this folder; unbroken, it plans cleanly."""
    exp = plan_ok(tmp_path, monkeypatch)
    assert exp.targets == ("pawsx",) and exp.data_dir == (tmp_path / "data").resolve()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clear_error(
    case: Bad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(case.error) as info:
        case.trigger(tmp_path, monkeypatch)
    message = str(info.value)
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message  # one line, as the CLI prints it


def test_run_stops_at_a_bad_dev_row_before_any_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`xstilts run`: one red line naming file, line and key; no stage directory is made."""
    from typer.testing import CliRunner

    from xstilts.cli import app

    plan_ok(tmp_path, monkeypatch)
    (tmp_path / "data" / "xtreme" / "pawsx" / "dev-zh.tsv").write_text("a\tb\t0\na\tb\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "exp.yaml"), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "dev-zh.tsv:2 [targets.0]" in lines[0], result.output
    assert not (tmp_path / "out" / "stages").exists()


def test_plan_time_reads_are_remembered_until_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xstilts.pipelines.datacheck import read_every_file

    exp = plan_ok(tmp_path, monkeypatch)
    assert read_every_file(exp) == 0  # planning again: every unchanged file was read already
    dev = tmp_path / "data" / "xtreme" / "pawsx" / "dev-de.tsv"
    dev.write_text("a\tb\t0\n" * 2 + "a\tb\t7\n")  # another size: read again, and refused
    with pytest.raises(DataError, match=r"dev-de.tsv:3 \[targets.0\]: unknown label '7'"):
        read_every_file(exp)
    dev.write_text("a\tb\t1\n" * 2)
    assert read_every_file(exp) == 1  # only the changed file


def test_docs_table_is_in_sync_with_the_catalogue() -> None:
    assert DOC.read_text(encoding="utf-8") == render_doc(), "run: python tests/test_bad_inputs.py"


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render_doc(), encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)")
