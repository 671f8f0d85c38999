"""Malformed inputs, each built in a temp dir and triggered; rendered as ``docs/errors.md``.

Used by ``tests/test_bad_inputs.py`` (one parametrized test; run it as a script to rewrite the doc).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.errors import CheckpointError, ConfigError, DataError, TrainingError, XstiltsError
from xstilts.pipelines.experiment import load_experiment
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.examples import Example, TaggingExample
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.tasks.readers import get_reader

sys.path.insert(0, str(Path(__file__).parent))
from bad_input_runs import (
    checkpoint_disk_full,
    corrupt,
    corrupt_resume_checkpoint,
    full_final_save,
    incomplete_parent,
    locked,
    nan_loss,
    shape_mismatch,
)

Trigger = Callable[[Path, pytest.MonkeyPatch], Any]


@dataclass(frozen=True)
class Bad:
    """One catalogue entry: ``trigger`` must raise ``error`` whose text has every ``expect``."""

    id: str
    what: str
    error: type[XstiltsError]
    expect: tuple[str, ...]
    fix: str
    trigger: Trigger


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _read(task: str, split: str, path: Path, lang: str = "en") -> list[Example]:
    """Run the reader of ``task``'s first ``split`` source on ``path``."""
    spec = get_task(task)
    source = spec.splits[split][0]
    return get_reader(source.reader)(path, source, spec, lang)


def _reader(task: str, split: str, name: str, text: str | bytes, lang: str = "en") -> Trigger:
    return lambda tmp, mp: _read(task, split, _write(tmp / name, text), lang)


def _split(task: str, rel: str, text: str) -> Trigger:
    """Write ``text`` at ``rel`` under a data root and load the task's split from there."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        _write(tmp / rel, text)
        return load_examples(get_task(task), tmp, "train", "en")

    return trigger


def _squad(qas: list[dict[str, Any]], context: str = "Paris is big.") -> str:
    return json.dumps({"data": [{"paragraphs": [{"context": context, "qas": qas}]}]})


def _qa(start: Any, text: str = "Paris") -> list[dict[str, Any]]:
    first = {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
    second = {"id": "q2", "question": "?", "answers": [{"text": text, "answer_start": start}]}
    return [first, second]


def _bucc(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    src = _write(tmp / "xx-en.dev.xx", "xx-1\tun\nxx-2\tdeux\n")
    _write(tmp / "xx-en.dev.en", "en-1\tone\nen-2\ttwo\n")
    _write(tmp / "xx-en.dev.gold", "xx-1\ten-1\nxx-2\ten-9\n")
    return _read("bucc", "dev", src, lang="xx")


def _tatoeba(xx: str, en: str) -> Trigger:
    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        _write(tmp / "xx-en.en", en)
        return _read("tatoeba", "test", _write(tmp / "xx-en.xx", xx), lang="xx")

    return trigger


def _bio(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.models.tokenizer import train_tokenizer
    from xstilts.tasks.formats import get_format

    spec = get_task("panx")
    bad = TaggingExample("dev-en-4", ("Paris", "is", "big"), (1, 0), origin="dev-en.tsv:4")
    tokenizer = train_tokenizer(["Paris is big"], vocab_size=100)
    return get_format(spec.type).featurize([bad], tokenizer, spec, FeaturizeConfig())


# ------------------------------------------------------------------ experiment YAML

_VALID = {
    "name": "t", "data_dir": "data", "encoder": {"name": "xlm-roberta-large"}, "seeds": [1],
    "intermediate": ["none", "mnli"], "targets": ["xnli"],
}  # fmt: skip


def _yaml(text: str | None = None, **changes: Any) -> Trigger:
    """Load an experiment file: ``text`` as is, else the valid one with ``changes``."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        body = text if text is not None else yaml.safe_dump({**_VALID, **changes})
        return load_experiment(_write(tmp / "exp.yaml", body), check_data=False)

    return trigger


def _override(item: str) -> Trigger:
    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        path = _write(tmp / "exp.yaml", yaml.safe_dump(_VALID))
        return load_experiment(path, [item], check_data=False)

    return trigger


_HINT_DATA = "fix or re-download the file"
_XNLI = "a\tb\tneutral\n"
_NLI = '{"gold_label": "neutral", "sentence1": "a", "sentence2": "b"}\n'
_ROW = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"

CASES: tuple[Bad, ...] = (
    # -------------------------------------------------------------- data files
    Bad("missing-file", "a task's data file is absent", DataError,
        ("no 'dev' file for task 'xnli'", "xtreme/xnli/dev-de.tsv", "download_data.sh"),
        "download it (hint) or fix data_dir",
        lambda tmp, mp: load_examples(get_task("xnli"), tmp, "dev", "de")),
    Bad("empty-file", "a data file with no content", DataError,
        ("train-en.tsv:1", "file is empty"), _HINT_DATA,
        _reader("panx", "train", "train-en.tsv", "\n")),
    Bad("truncated-json", "a SQuAD JSON file cut off mid-document", DataError,
        ("qa.json:3", "invalid JSON"), _HINT_DATA,
        _reader("squad", "train", "qa.json", '{\n  "data": [\n    {"paragraphs": [')),
    Bad("truncated-jsonl", "a JSONL file whose last record is cut off", DataError,
        ("nli.jsonl:3", "invalid JSON"), _HINT_DATA,
        _reader("mnli", "train", "nli.jsonl", _NLI + _NLI + '{"gold_label": "neutral",\n')),
    Bad("empty-split", "a split whose file holds only its header", DataError,
        ("train.tsv", "'train' split of task 'sst2' (en) has no examples"), "give it examples",
        _split("sst2", "english/sst2/train.tsv", "sentence\tlabel\n")),
    Bad("jsonl-not-object", "a JSONL line that is not an object", DataError,
        ("nli.jsonl:2", "expected a JSON object per line"), _HINT_DATA,
        _reader("mnli", "train", "nli.jsonl", _NLI + "[1, 2]\n")),
    Bad("jsonl-missing-field", "an NLI record without sentence2", DataError,
        ("nli.jsonl:2", "missing field 'sentence2'"), _HINT_DATA,
        _reader("mnli", "train", "nli.jsonl", _NLI + _NLI.replace(', "sentence2": "b"', ""))),
    Bad("tsv-columns", "a TSV row with too few columns", DataError,
        ("dev-xx.tsv:2", "expected 3 tab-separated columns"), _HINT_DATA,
        _reader("xnli", "dev", "dev-xx.tsv", _XNLI + "only\ttwo\n")),
    Bad("tsv-truncated-row", "a TSV file cut off inside its last row", DataError,
        ("dev-xx.tsv:3", "expected 3 tab-separated columns"), _HINT_DATA,
        _reader("xnli", "dev", "dev-xx.tsv", _XNLI + _XNLI + "a\tb")),
    Bad("unknown-label", "a label outside the task's label set", DataError,
        ("dev-xx.tsv:2", "unknown label 'maybe'", "'entailment'"), "use one of the listed labels",
        _reader("xnli", "dev", "dev-xx.tsv", _XNLI + "a\tb\tmaybe\n")),
    Bad("unknown-tag", "a NER tag outside the task's tag set", DataError,
        ("dev-fr.tsv:2", "unknown label 'B-CITY'"), "use one of the listed labels",
        _reader("panx", "dev", "dev-fr.tsv", "Paris\tB-LOC\nest\tB-CITY\n", lang="fr")),
    Bad("non-utf8", "bytes that are not UTF-8", DataError,
        ("dev-xx.tsv:2", "not valid UTF-8"), "re-encode the file as UTF-8",
        _reader("xnli", "dev", "dev-xx.tsv", _XNLI.encode() + b"caf\xe9\tb\tneutral\n")),
    Bad("qa-answer-offset", "a QA answer not at its answer_start", DataError,
        ("qa.json:2", "answer 'Paris' not found at answer_start 3"), "correct answer_start",
        _reader("xquad", "test", "qa.json", _squad(_qa(3)))),
    Bad("qa-span-out-of-range", "a QA answer span past the end of its context", DataError,
        ("qa.json:2", "not found at answer_start 400"), "correct answer_start",
        _reader("xquad", "test", "qa.json", _squad(_qa(400)))),
    Bad("qa-span-negative", "a negative answer_start", DataError,
        ("qa.json:2", "not found at answer_start -4"), "correct answer_start",
        _reader("xquad", "test", "qa.json", _squad(_qa(-4, "big.")))),
    Bad("qa-malformed-answer", "an answer_start that is not a number", DataError,
        ("qa.json:2", "malformed answer"), _HINT_DATA,
        _reader("xquad", "test", "qa.json", _squad(_qa("zero")))),
    Bad("qa-not-squad", "a JSON file without SQuAD's data list", DataError,
        ("qa.json", "no top-level 'data' list"), "give a SQuAD-format file",
        _reader("squad", "train", "qa.json", '{"version": "1.1"}')),
    Bad("tydiqa-leak", "a non-English TyDiQA id in the English split", DataError,
        ("train.json:1", "QA id 'arabic--1-0' is arabic"), "remove non-English questions",
        _reader("tydiqa", "train", "tydiqa.goldp.en.train.json",
                _squad([{**_qa(0)[0], "id": "arabic--1-0"}]))),
    Bad("bio-length", "a tagged sentence with fewer tags than words", DataError,
        ("dev-en.tsv:4", "3 words but 2 tags"), "give one tag per word", _bio),
    Bad("conllu-columns", "a CoNLL-U token line with 4 of 10 columns", DataError,
        ("xx-ud-test.conllu:3", "expected 10 tab-separated"), _HINT_DATA,
        _reader("udpos", "test", "xx-ud-test.conllu", "# text = Hi\n" + _ROW + "2\t!\t!\tPUNCT\n")),
    Bad("parallel-misaligned", "parallel Tatoeba files of different lengths", DataError,
        ("xx-en.xx:3", "misaligned", "xx-en.xx has 3 lines but xx-en.en has 2"),
        "give both sides the same number of lines",
        _tatoeba("un\ndeux\ntrois\n", "one\ntwo\n")),
    Bad("parallel-sorted", "a Tatoeba English side sorted (pairs broken)", DataError,
        ("xx-en.en", "is sorted"), "use the original, aligned file",
        _tatoeba("".join(f"s{i}\n" for i in range(12)),
                 "".join(f"{chr(97 + i)}\n" for i in range(12)))),
    Bad("bucc-unknown-id", "a BUCC gold pair naming an unknown sentence id", DataError,
        ("xx-en.dev.gold:2", "gold id 'en-9' is not in"), "use ids of the sentence files", _bucc),
    Bad("ccg-malformed", "an unbalanced CCG derivation", DataError,
        ("wsj_9999.auto:2", "malformed CCG derivation"), _HINT_DATA,
        _reader("ccg", "dev", "wsj_9999.auto",
                "ID=wsj_9999.1 PARSER=GOLD NUMPARSE=1\n(<T S[dcl] 0 2> (<L N NN NN x N>) \n")),
    # -------------------------------------------------------------- experiment YAML
    Bad("yaml-syntax", "YAML that does not parse", ConfigError,
        ("exp.yaml:2", "invalid YAML: mapping values"), "fix the YAML at that line",
        _yaml("name: t\nseeds: : 1\n")),
    Bad("yaml-not-mapping", "a YAML list instead of a mapping", ConfigError,
        ("exp.yaml", "must be a YAML mapping"), "write key: value pairs", _yaml("- a\n- b\n")),
    Bad("yaml-type-seeds", "seeds given as a string", ConfigError,
        ("[seeds]", "non-empty list of integers"), "seeds: [0, 1, 2]", _yaml(seeds="one")),
    Bad("yaml-type-lr", "a learning rate that is not a number", ConfigError,
        ("[train.lr]", "bad value 'fast'"), "give a number > 0", _yaml(train={"lr": "fast"})),
    Bad("yaml-unknown-key", "a misspelt top-level key", ConfigError,
        ("[trian]", "unknown key", "did you mean 'train'"), "use the suggested key",
        _yaml(trian={})),
    Bad("unknown-task", "an intermediate task that does not exist", ConfigError,
        ("[intermediate.1]", "mnlii"), "use a task of `xstilts tasks`",
        _yaml(intermediate=["none", "mnlii"])),
    Bad("chain-cycle", "a chain that trains a task twice", ConfigError,
        ("[intermediate.1]", "trains 'mnli' twice"), "remove the repeated task",
        _yaml(intermediate=["none", ["mnli", "qqp", "mnli"]])),
    Bad("chain-target-cycle", "a target that is also its own intermediate task", ConfigError,
        ("[intermediate.1", "cannot follow itself"), "drop it from intermediate",
        _yaml(intermediate=["none", "pawsx"], targets=["pawsx"])),
    Bad("retrieval-intermediate", "a retrieval task used as an intermediate task", ConfigError,
        ("[intermediate.1]", "cannot be an intermediate task"), "list it under targets",
        _yaml(intermediate=["none", "tatoeba"])),
    Bad("bad-checkpoint-every", "checkpoint_every: 0", ConfigError,
        ("[train.checkpoint_every]", "null or int >= 1"), "give a step count >= 1",
        _yaml(train={"checkpoint_every": 0})),
    Bad("bad-override", "a command-line override with a bad value", ConfigError,
        ("[overrides.mnli.epochs]", "bad value -1"), "fix the override",
        _override("overrides.mnli.epochs=-1")),
    Bad("path-escape", "cache_dir outside the experiment's output_dir", ConfigError,
        ("[cache_dir]", "outside output_dir"), "put it inside output_dir",
        _yaml(output_dir="runs/t", cache_dir="../../elsewhere")),
    Bad("name-escape", "an experiment name with a path in it", ConfigError,
        ("[name]", "bad experiment name '../x'"), "use a plain name", _yaml(name="../x")),
    # -------------------------------------------------------------- checkpoints and runs
    Bad("encoder-shape", "encoder weights that do not fit their config", CheckpointError,
        ("encoder.safetensors", "weights do not match the xlm-roberta config"),
        "keep weights and encoder_config.json together",
        shape_mismatch),
    Bad("corrupt-safetensors", "a truncated safetensors file", CheckpointError,
        ("heads.safetensors", "corrupt"), "re-run the stage (delete its directory)",
        corrupt("heads.safetensors", 20)),
    Bad("missing-weights", "a stage without its encoder weights", CheckpointError,
        ("encoder.safetensors", "weight file is missing"),
        "re-run the stage (delete its directory)",
        corrupt("encoder.safetensors", None)),
    Bad("corrupt-checkpoint", "a corrupt mid-stage checkpoint when resuming", CheckpointError,
        ("step-00000004/model.safetensors", "checkpoint file is corrupt"),
        "delete that checkpoint directory",
        corrupt_resume_checkpoint),
    Bad("disk-full-checkpoint", "a full disk while writing a checkpoint", CheckpointError,
        ("step-00000003", "no space left on device"), "free space and rerun (resumes)",
        checkpoint_disk_full),
    Bad("disk-full-save", "a full disk while saving a stage's weights", CheckpointError,
        ("encoder.safetensors", "no space left on device"), "free space and rerun",
        full_final_save),
    Bad("nan-loss", "a loss that becomes NaN", TrainingError,
        ("training loss is nan at step 3", "last good checkpoint"),
        "lower lr / check data; last good checkpoint kept",
        nan_loss),
    Bad("stage-locked", "a stage another process is running", CheckpointError,
        (".lock-abc123", "already being run by process"), "wait for that run", locked),
    Bad("parent-incomplete", "a stage whose parent stage is unfinished", CheckpointError,
        ("parent", "missing or incomplete"), "run the parent first (xstilts run does)",
        incomplete_parent),
)  # fmt: skip
