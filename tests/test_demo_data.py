"""The synthetic demo data set: formats, offsets, determinism, and the demo experiment on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.demo import data as demo_data
from xstilts.demo import lexicon as lex
from xstilts.pipelines import executor
from xstilts.pipelines.experiment import load_experiment
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.tables import language_table, xtreme_table
from xstilts.results.store import ResultsStore
from xstilts.tasks import get_task
from xstilts.tasks.catalog import languages
from xstilts.tasks.data import available_languages, load_examples
from xstilts.tasks.examples import QAExample, RetrievalCorpus, TaggingExample
from xstilts.tasks.readers import companion_files
from xstilts.tasks.spec import TaskType

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "demo_tiny.yaml"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data written once for the module."""
    root = tmp_path_factory.mktemp("demo-data")
    demo_data.write_demo_data(root)
    return root


def _demo_tasks(root: Path, out: Path) -> list[str]:
    exp = load_experiment(DEMO, [f"data_dir={root}", f"output_dir={out}"])
    steps = [t for option in exp.options for step in option.steps for t in step.tasks]
    return list(dict.fromkeys([*steps, *exp.targets, *exp.encoder["tokenizer"]["train_on"]]))


def test_every_written_file_is_read_by_the_demo(demo_root: Path, tmp_path: Path) -> None:
    # load_experiment checks that every split the demo reads has its files (ConfigError if not).
    tasks = _demo_tasks(demo_root, tmp_path / "out")
    demo_tasks = {"mnli", "squad", "pawsx", "xnli", "panx", "tydiqa", "mlqa", "tatoeba", "bucc"}
    assert set(tasks) == demo_tasks
    read: set[Path] = set()
    for name in tasks:
        spec = get_task(name)
        for split in spec.splits:
            for lang in available_languages(spec, demo_root, split):
                for source, path in spec.find_files(demo_root, split, lang):
                    read.update([path, *companion_files(source.reader, path)])
    written = set(demo_data.write_demo_data(tmp_path / "again"))
    assert {p.relative_to(demo_root) for p in read} == {
        p.relative_to(tmp_path / "again") for p in written
    }


@pytest.mark.parametrize("task", sorted(demo_data.TASK_LANGUAGES))
def test_targets_load_in_their_languages(demo_root: Path, task: str) -> None:
    spec = get_task(task)
    wanted = demo_data.TASK_LANGUAGES[task]
    assert set(wanted) <= set(getattr(languages, task.upper()))
    present = available_languages(spec, demo_root, spec.eval_split)
    assert sorted(present) == sorted(wanted)
    for lang in present:
        examples = load_examples(spec, demo_root, spec.eval_split, lang)
        if spec.type is TaskType.RETRIEVAL:
            (corpus,) = examples
            assert isinstance(corpus, RetrievalCorpus)
            expected = demo_data.BUCC_GOLD if task == "bucc" else demo_data.EVAL_SIZE
            assert len(corpus.gold) == expected
        else:
            expected = demo_data.DEV_SIZE if (task, lang) == ("mlqa", "en") else demo_data.EVAL_SIZE
            assert len(examples) == expected
    if "train" in spec.splits:
        assert len(load_examples(spec, demo_root, "train", "en")) == demo_data.TRAIN_SIZE


def test_render_hand_checked_offsets_and_tags() -> None:
    en = demo_data.render(((0, 0), "lives_in", 0), lex.FACT, "en")
    assert en.text == "Anna Berg lives in Berlin."
    assert en.object_span == (19, 25)
    zh = demo_data.render(((0, 0), "lives_in", 0), lex.FACT, "zh")
    assert zh.text == "安娜·伯格住在柏林。"
    assert zh.object_span == (7, 9)
    assert demo_data.render(((0, 0), "lives_in", 0), lex.QUESTION, "es").text == (
        "¿Dónde vive Anna Berg?"
    )
    org = demo_data.render(((1, 2), "works_for", 0), lex.FACT, "en")
    assert org.tokens == ("Maria", "Novak", "works", "for", "Nordic", "Steel", ".")
    assert org.tags == ("B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O")
    assert org.text[slice(*org.object_span)] == "Nordic Steel"


def test_panx_tags_follow_entity_slots(demo_root: Path) -> None:
    spec = get_task("panx")
    names = {"O", *spec.labels}
    for lang in demo_data.TASK_LANGUAGES["panx"]:
        for ex in load_examples(spec, demo_root, "dev", lang):
            assert isinstance(ex, TaggingExample)
            tags = [spec.labels[t] for t in ex.tags]
            assert set(tags) <= names and "B-PER" in tags
            for prev, tag in zip(["O", *tags], tags, strict=False):
                if tag.startswith("I-"):  # every I- continues an entity of the same type
                    assert prev[2:] == tag[2:]


def _qa_files(root: Path) -> list[Path]:
    return sorted((root / "xtreme").glob("**/*.json"))


def test_qa_answers_sit_at_their_offsets(demo_root: Path) -> None:
    labelled = unlabelled = 0
    for path in _qa_files(demo_root):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    (answer,) = qa["answers"]
                    if "tydiqa-goldp-v1.1-dev" in path.parts:
                        assert answer == {"answer_start": 0, "text": ""}  # as XTREME ships it
                        unlabelled += 1
                        continue
                    start, text = answer["answer_start"], answer["text"]
                    assert text and context[start : start + len(text)] == text
                    labelled += 1
    assert labelled == demo_data.TRAIN_SIZE + demo_data.DEV_SIZE + 3 * demo_data.EVAL_SIZE
    assert unlabelled == 4 * demo_data.EVAL_SIZE


def test_qa_answer_is_the_object_of_the_asked_fact(demo_root: Path) -> None:
    """English: the answer has the asked relation's type and its sentence names the person."""
    pools = {"live": lex.CITIES, "work": lex.ORGS, "like": lex.FOODS}
    examples = load_examples(get_task("mlqa"), demo_root, "dev", "en")
    for ex in examples:
        assert isinstance(ex, QAExample)
        match = re.fullmatch(
            r"(?:Where|Who|What) does (.+) (live|work|like)(?: for)?\?", ex.question
        )
        assert match is not None, ex.question
        (answer,) = ex.answers
        assert answer.text in {entry["en"] for entry in pools[match.group(2)]}
        sentence = ex.context[: answer.start].rsplit(". ", 1)[-1]
        assert match.group(1) in sentence


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = demo_data.write_demo_data(tmp_path / "a")
    second = demo_data.write_demo_data(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    other = demo_data.demo_files(seed=1)
    same = demo_data.demo_files(seed=0)
    assert other.keys() == same.keys() and other != same


def test_cli_writes_the_data_and_rejects_a_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "xtreme" / "bucc2018" / "zh-en.dev.gold").is_file()
    (tmp_path / "f").write_text("x")
    bad = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "f")])
    assert bad.exit_code == 2
    assert "not a directory" in bad.output


@pytest.mark.slow
def test_demo_experiment_runs_on_the_fixture(demo_root: Path, tmp_path: Path) -> None:
    overrides = [
        f"data_dir={demo_root}",
        f"output_dir={tmp_path / 'out'}",
        "intermediate=[none, [mnli, squad]]",
        "encoder.tokenizer.max_lines=100",
        "encoder.tokenizer.vocab_size=1000",
        "encoder.tiny.vocab_size=1000",
        "train.max_train_examples=32",
        "train.max_dev_examples=16",
        "train.max_length=64",
        "evaluation.max_eval_examples=16",
        "overrides.squad.max_length=96",
        "overrides.tydiqa.max_length=96",
        "overrides.mlqa.max_length=96",
        "train.max_query_length=24",  # 96-token windows with stride 64 leave room for 28
    ]
    exp = load_experiment(DEMO, overrides)
    executor.run_experiment(exp, build_plan(exp), progress=False)
    with ResultsStore(exp.store_path) as store:
        table = xtreme_table(store)
        assert list(table.rows) == ["none", "mnli→squad"]
        assert table.columns[:-1] == list(exp.targets)
        for option in table.rows:
            for target in exp.targets:
                # A tiny smoke run may be degenerate: marked and kept apart, never dropped.
                cell = table.rows[option][target]
                values = (*cell.values, *cell.degenerate)
                if target == "tydiqa":  # unlabelled dev, as in XTREME: nothing to score
                    assert values == ()
                else:
                    assert len(values) == 1 and 0 <= values[0] <= 100
        assert "tydiqa: evaluation data has no gold labels" in table.caption
        for target in ("pawsx", "panx", "tatoeba", "bucc"):
            cols = language_table(store, target).columns
            assert sorted(cols[:-1]) == sorted(demo_data.TASK_LANGUAGES[target])
            assert cols[-1] == "avg"
