"""Shared pieces of the malformed-input catalogue: the :class:`Bad` entry and input builders."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.errors import XstiltsError
from xstilts.pipelines.experiment import load_experiment
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.examples import Example, TaggingExample
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.tasks.readers import get_reader

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


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def read(task: str, split: str, path: Path, lang: str = "en") -> list[Example]:
    """Run the reader of ``task``'s first ``split`` source on ``path``."""
    spec = get_task(task)
    source = spec.splits[split][0]
    return get_reader(source.reader)(path, source, spec, lang)


def reader(task: str, split: str, name: str, text: str | bytes, lang: str = "en") -> Trigger:
    return lambda tmp, mp: read(task, split, write(tmp / name, text), lang)


def split_case(task: str, rel: str, text: str) -> Trigger:
    """Write ``text`` at ``rel`` under a data root and load the task's split from there."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        write(tmp / rel, text)
        return load_examples(get_task(task), tmp, "train", "en")

    return trigger


def squad(qas: list[dict[str, Any]], context: str = "Paris is big.") -> str:
    return json.dumps({"data": [{"paragraphs": [{"context": context, "qas": qas}]}]})


def qa_pair(start: Any, text: str = "Paris") -> list[dict[str, Any]]:
    first = {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
    second = {"id": "q2", "question": "?", "answers": [{"text": text, "answer_start": start}]}
    return [first, second]


def bucc(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    src = write(tmp / "xx-en.dev.xx", "xx-1\tun\nxx-2\tdeux\n")
    write(tmp / "xx-en.dev.en", "en-1\tone\nen-2\ttwo\n")
    write(tmp / "xx-en.dev.gold", "xx-1\ten-1\nxx-2\ten-9\n")
    return read("bucc", "dev", src, lang="xx")


def tatoeba_case(xx: str, en: str) -> Trigger:
    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        write(tmp / "xx-en.en", en)
        return read("tatoeba", "test", write(tmp / "xx-en.xx", xx), lang="xx")

    return trigger


def bio_case(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.models.tokenizer import train_tokenizer
    from xstilts.tasks.formats import get_format

    spec = get_task("panx")
    bad = TaggingExample("dev-en-4", ("Paris", "is", "big"), (1, 0), origin="dev-en.tsv:4")
    tokenizer = train_tokenizer(["Paris is big"], vocab_size=100)
    return get_format(spec.type).featurize([bad], tokenizer, spec, FeaturizeConfig())


# ------------------------------------------------------------------ experiment YAML

VALID = {
    "name": "t", "data_dir": "data", "encoder": {"name": "xlm-roberta-large"}, "seeds": [1],
    "intermediate": ["none", "mnli"], "targets": ["xnli"],
}  # fmt: skip


def yaml_case(text: str | bytes | None = None, **changes: Any) -> Trigger:
    """Load an experiment file: ``text`` as is, else the valid one with ``changes``."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        body = text if text is not None else yaml.safe_dump({**VALID, **changes})
        return load_experiment(write(tmp / "exp.yaml", body), check_data=False)

    return trigger


def override_case(item: str) -> Trigger:
    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        path = write(tmp / "exp.yaml", yaml.safe_dump(VALID))
        return load_experiment(path, [item], check_data=False)

    return trigger


HINT_DATA = "fix or re-download the file"
XNLI_ROW = "a\tb\tneutral\n"
NLI = '{"gold_label": "neutral", "sentence1": "a", "sentence2": "b"}\n'
UD_ROW = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"
