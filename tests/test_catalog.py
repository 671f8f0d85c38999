"""The task catalog (registry, language lists, every task loading real data) and tasks.data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import split_files
from xstilts.errors import ConfigError, DataError
from xstilts.settings import FeaturizeSettings, TrainSettings, resolve
from xstilts.tasks import TaskType, get_task, list_tasks, register_task
from xstilts.tasks.data import available_languages, data_fingerprint, load_examples
from xstilts.tasks.readers import get_reader

EXPECTED_TASKS = {
    "mnli", "snli", "anli", "anli_plus", "qqp", "sst2", "squad", "hellaswag", "commonsenseqa",
    "cosmosqa", "ccg", "xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc",
    "tatoeba",
}  # fmt: skip


def test_catalog_has_every_task() -> None:
    assert set(list_tasks()) == EXPECTED_TASKS


def test_registry_rejects_duplicates() -> None:
    with pytest.raises(ConfigError, match="'xnli' is already registered"):
        register_task(get_task("xnli"))


def test_unknown_task_suggests_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'xnli'"):
        get_task("xnil")


@pytest.mark.parametrize(
    ("task", "count"),
    [("xnli", 15), ("pawsx", 7), ("udpos", 33), ("panx", 40), ("xquad", 12), ("mlqa", 7),
     ("tydiqa", 9), ("bucc", 4), ("tatoeba", 36)],
)  # fmt: skip
def test_xtreme_language_lists(task: str, count: int) -> None:
    spec = get_task(task)
    assert spec.is_target and spec.train_language == "en"
    assert len(spec.eval_languages) == len(set(spec.eval_languages)) == count
    assert spec.languages(spec.eval_split) == spec.eval_languages


BUMPED = {"tatoeba": "2", "tydiqa": "2", "xquad": "2", "xnli": "2"}


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_every_source_names_a_registered_reader(name: str) -> None:
    spec = get_task(name)
    # A scoring change bumps the version (and so recomputes cached evaluations).
    assert spec.version == BUMPED.get(name, "1") and spec.description
    assert spec.eval_split in spec.splits and spec.dev_split in spec.splits
    for sources in spec.splits.values():
        for source in sources:
            get_reader(source.reader)
            assert source.download_hint


def test_heads_metrics_and_defaults() -> None:
    assert {get_task(n).head for n in ("mnli", "snli", "anli", "anli_plus")} == {"nli"}
    assert get_task("xnli").head == "xnli"
    assert get_task("xnli").label_to_id == {"entailment": 0, "neutral": 1, "contradiction": 2}
    assert [get_task(n).num_choices for n in ("hellaswag", "commonsenseqa", "cosmosqa")] == [
        4, 5, 4,
    ]  # fmt: skip
    assert get_task("udpos").metrics == get_task("panx").metrics == ("f1",)
    assert get_task("bucc").metrics == ("f1",) and get_task("tatoeba").metrics == ("accuracy",)
    assert get_task("mlqa").answer_normalization == "mlqa"
    assert (
        get_task("xquad").answer_normalization == get_task("tydiqa").answer_normalization == "squad"
    )
    epochs = {n: get_task(n).defaults["epochs"] for n in ("xnli", "pawsx", "udpos", "panx")}
    assert epochs == {"xnli": 2, "pawsx": 5, "udpos": 10, "panx": 10}
    for name in ("squad", "xquad", "mlqa", "tydiqa"):
        spec = get_task(name)
        assert spec.type is TaskType.EXTRACTIVE_QA
        assert spec.metrics == ("exact_match", "f1")
        featurize = resolve(FeaturizeSettings, task=spec.defaults, task_type=spec.type.value)
        assert (featurize["max_length"], featurize["stride"]) == (384, 128)
    trainable = [get_task(n) for n in EXPECTED_TASKS if "train" in get_task(n).splits]
    assert {resolve(TrainSettings, task=spec.defaults)["lr"] for spec in trainable} == {1e-5}
    # Phang et al.: 256-token inputs for every non-QA task that trains.
    lengths = {
        resolve(FeaturizeSettings, task=s.defaults, task_type=s.type.value)["max_length"]
        for s in trainable if s.type is not TaskType.EXTRACTIVE_QA
    }  # fmt: skip
    assert lengths == {256}


def test_tydiqa_trains_on_the_english_file_only() -> None:
    (source,) = get_task("tydiqa").splits["train"]
    assert source.languages == ("en",)
    assert source.pattern.endswith("/tydiqa.goldp.en.train.json")
    assert "{lang}" not in source.pattern and "*" not in source.pattern


def test_qa_targets_train_on_squad() -> None:
    squad_train = get_task("squad").splits["train"]
    assert get_task("xquad").splits["train"] == squad_train
    assert get_task("mlqa").splits["train"] == squad_train


# ---------------------------------------------------------------- every task on real data


@pytest.mark.parametrize("name", sorted(EXPECTED_TASKS))
def test_task_loads_its_eval_and_train_splits(name: str, data_root: Path) -> None:
    spec = get_task(name)
    present = available_languages(spec, data_root, spec.eval_split)
    for lang in present:
        assert len(load_examples(spec, data_root, spec.eval_split, lang, limit=50)) > 0, lang
    if "train" in spec.splits and split_files(spec, data_root, "train", spec.train_language):
        assert load_examples(spec, data_root, "train", spec.train_language, limit=50)


def test_languages_present_in_shared_data(data_root: Path) -> None:
    assert len(available_languages(get_task("xnli"), data_root, "dev")) == 15
    assert available_languages(get_task("udpos"), data_root, "test") == ["de", "en", "fr", "zh"]
    assert available_languages(get_task("bucc"), data_root, "dev") == ["zh"]
    assert len(available_languages(get_task("tatoeba"), data_root, "test")) == 36


def test_squad_absent_reads_the_documented_stand_ins_and_warns(
    data_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = get_task("squad")
    (train,) = split_files(spec, data_root, "train", "en")
    (dev,) = split_files(spec, data_root, "dev", "en")
    assert train.name == "tydiqa.goldp.en.train.json"  # SQuAD is not in the shared data
    assert dev.name == "dev-context-en-question-en.json"
    with caplog.at_level("WARNING"):
        assert len(load_examples(spec, data_root, "train", "en")) == 3696
    assert "stand-in" in caplog.text and "train-v1.1.json" in caplog.text


def test_anli_plus_concatenates_snli_and_mnli_train(data_root: Path) -> None:
    examples = load_examples(get_task("anli_plus"), data_root, "train", "en")
    assert len(examples) == 8999 + 8999  # ANLI train files are absent from the shared data
    assert "snli_1.0_train" in examples[0].origin
    assert "multinli_1.0_train" in examples[-1].origin


def test_udpos_train_falls_back_to_the_documented_stand_in(data_root: Path) -> None:
    (path,) = split_files(get_task("udpos"), data_root, "train", "en")
    assert path.name == "en_ewt-ud-dev.conllu"


# ---------------------------------------------------------------- tasks.data on tmp trees


CONLLU = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n\n"


def test_fallback_tiers_prefer_real_train_files(tmp_path: Path) -> None:
    spec = get_task("udpos")
    ewt = tmp_path / "xtreme/udpos/UD_English-EWT"
    ewt.mkdir(parents=True)
    (ewt / "en_ewt-ud-dev.conllu").write_text(CONLLU)
    assert [p.name for p in split_files(spec, tmp_path, "train", "en")] == ["en_ewt-ud-dev.conllu"]
    (tmp_path / "xtreme/udpos/train-en.tsv").write_text("Hi\tINTJ\n")
    assert [p.name for p in split_files(spec, tmp_path, "train", "en")] == ["train-en.tsv"]
    (ewt / "en_ewt-ud-train.conllu").write_text(CONLLU)
    gum = tmp_path / "xtreme/udpos/UD_English-GUM"
    gum.mkdir()
    (gum / "en_gum-ud-train.conllu").write_text(CONLLU)
    names = [p.name for p in split_files(spec, tmp_path, "train", "en")]
    assert names == ["en_ewt-ud-train.conllu", "en_gum-ud-train.conllu"]
    assert len(load_examples(spec, tmp_path, "train", "en")) == 2


def test_missing_files_error_names_path_and_download_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_examples(get_task("xnli"), tmp_path, "dev", "de")
    message = str(err.value)
    assert str(tmp_path / "xtreme/xnli/dev-de.tsv") in message
    assert "download_data.sh" in message


def test_undeclared_split_and_language_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no 'train' split"):
        load_examples(get_task("tatoeba"), tmp_path, "train", "de")
    with pytest.raises(DataError, match="no 'dev' data for language 'xx'"):
        load_examples(get_task("xnli"), tmp_path, "dev", "xx")


def test_limit_keeps_the_first_examples(tmp_path: Path) -> None:
    (tmp_path / "xtreme/xnli").mkdir(parents=True)
    rows = "".join(f"p{i}\th{i}\tneutral\n" for i in range(5))
    (tmp_path / "xtreme/xnli/dev-de.tsv").write_text(rows)
    examples = load_examples(get_task("xnli"), tmp_path, "dev", "de", limit=2)
    assert [ex.text_a for ex in examples] == ["p0", "p1"]


def _tatoeba_tree(root: Path) -> Path:
    folder = root / "xtreme/tatoeba"
    folder.mkdir(parents=True)
    (folder / "de-en.de").write_text("eins\nzwei\n")
    (folder / "de-en.en").write_text("one\ntwo\n")
    return folder


def test_data_fingerprint_tracks_content_not_location(tmp_path: Path) -> None:
    spec = get_task("tatoeba")
    folder = _tatoeba_tree(tmp_path / "a")
    first = data_fingerprint(spec, tmp_path / "a", ["test"])
    assert first == data_fingerprint(spec, tmp_path / "a", ["test"], langs=["de"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert data_fingerprint(spec, tmp_path / "b", ["test"]) == first
    # Same size, different bytes, newer mtime: the companion English side counts too.
    english = folder / "de-en.en"
    english.write_text("one\ntwX\n")
    stat = english.stat()
    os.utime(english, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = data_fingerprint(spec, tmp_path / "a", ["test"])
    assert changed != first
    assert data_fingerprint(spec, tmp_path / "a", ["test"], langs=["fr"]) != changed


def test_xnli_selects_on_mnli_dev_not_on_the_scored_english_rows() -> None:
    # XNLI's labelled eval set is its dev split: selecting checkpoints on it would pick the
    # English result on its own test rows. Selection reads MultiNLI's held-out dev instead.
    spec = get_task("xnli")
    assert spec.eval_split == "dev" and spec.dev_split != spec.eval_split
    (select,) = spec.splits[spec.dev_split]
    assert select.pattern == "english/mnli/multinli_1.0_dev_matched.jsonl"
    assert all("xnli" in source.pattern for source in spec.splits[spec.eval_split])
