"""Plan-time catalogue cases: found by ``xstilts plan`` (and the start of ``run``), before training.

Each case writes a small, valid data folder (PAWS-X: English train and dev, German and Chinese
dev), breaks one thing, and loads the experiment the way ``xstilts plan`` does
(``load_experiment`` with every plan-time check). ``plan_ok`` is the unbroken folder, which a
test in ``test_bad_inputs.py`` plans without error, so each case fails for its own reason.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.errors import ConfigError, DataError
from xstilts.pipelines.experiment import load_experiment

sys.path.insert(0, str(Path(__file__).parent))
from bad_input_common import HINT_DATA, Bad, Trigger, write

ROW = "a\tb\t0\n"
GOOD = {
    "xtreme/pawsx/train-en.tsv": ROW * 3,
    "xtreme/pawsx/dev-en.tsv": ROW * 3,
    "xtreme/pawsx/dev-de.tsv": ROW * 3,
    "xtreme/pawsx/dev-zh.tsv": ROW * 3,
}
BASE = {"name": "p", "encoder": {"name": "xlm-roberta-large"}, "seeds": [1],
        "intermediate": ["none"], "targets": ["pawsx"], "data_dir": "data",
        "output_dir": "out"}  # fmt: skip
TINY = {"tiny": {"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
                 "num_attention_heads": 2, "intermediate_size": 16}}  # fmt: skip
SST2 = "sentence\tlabel\ngood\t1\nbad\t0\n"
MNLI = '{"gold_label": "neutral", "sentence1": "a", "sentence2": "b"}\n'
Setup = Callable[[Path], Any]


def plan_case(
    files: dict[str, str | bytes] | None = None, setup: Setup | None = None, **changes: Any
) -> Trigger:
    """Write :data:`GOOD` (with ``files`` replacing or adding), run ``setup``, then plan."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        for rel, body in {**GOOD, **(files or {})}.items():
            write(tmp / "data" / rel, body)
        if setup is not None:
            setup(tmp)
        path = write(tmp / "exp.yaml", yaml.safe_dump({**BASE, **changes}))
        return load_experiment(path)  # check_data: every plan-time check

    return trigger


plan_ok = plan_case()


def _loop(rel: str) -> Setup:
    """Make ``tmp/rel`` a symlink loop (two links pointing at each other)."""

    def setup(tmp: Path) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()
        os.symlink(path.name + ".other", path)
        os.symlink(path.name, path.with_name(path.name + ".other"))

    return setup


def _dangling(rel: str) -> Setup:
    def setup(tmp: Path) -> None:
        os.symlink(tmp / "nowhere.tsv", tmp / rel)

    return setup


def _directory(rel: str) -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / rel).unlink()
        (tmp / rel).mkdir()

    return setup


def _file(rel: str) -> Setup:
    return lambda tmp: write(tmp / rel, "not a folder\n")


def _local_encoder(tmp: Path) -> None:
    config = {"model_type": "xlm-roberta", "max_position_embeddings": 66}
    write(tmp / "enc" / "config.json", json.dumps(config))


_DEV = "xtreme/pawsx"
PLAN: tuple[Bad, ...] = (
    # -------------------------------------------------------------- every file, read now
    Bad("plan-bad-eval-row", "a bad row in the last evaluation language's file", DataError,
        ("dev-zh.tsv:2", "[targets.0]", "expected 3 tab-separated columns"), HINT_DATA,
        plan_case({f"{_DEV}/dev-zh.tsv": ROW + "only\ttwo\n"})),
    Bad("plan-bad-eval-label", "an unknown label in an evaluation file", DataError,
        ("dev-de.tsv:3", "[targets.0]", "unknown label '2'"), "use one of the listed labels",
        plan_case({f"{_DEV}/dev-de.tsv": ROW * 2 + "a\tb\t2\n"})),
    Bad("plan-bad-selection-dev", "a bad row in the English dev file (model selection)",
        DataError, ("dev-en.tsv:1", "[targets.0]", "expected 3"), HINT_DATA,
        plan_case({f"{_DEV}/dev-en.tsv": "a\tb\n"})),
    Bad("plan-bad-intermediate-train", "a bad label in an intermediate task's train file",
        DataError, ("sst2/train.tsv:4", "[intermediate.1]", "unknown label 'maybe'"),
        "use one of the listed labels",
        plan_case({"english/sst2/train.tsv": SST2 + "meh\tmaybe\n", "english/sst2/dev.tsv": SST2},
                  intermediate=["none", "sst2"])),
    Bad("plan-json-null-text", "JSON null as a sentence of an intermediate task", DataError,
        ("multinli_1.0_train.jsonl:2", "[intermediate.1]", "field 'sentence1' is null"),
        "give the text (or drop the record)",
        plan_case({"english/mnli/multinli_1.0_train.jsonl": MNLI + MNLI.replace('"a"', "null"),
                   "english/mnli/multinli_1.0_dev_matched.jsonl": MNLI},
                  intermediate=["none", "mnli"])),
    Bad("plan-bad-tokenizer-text", "a misaligned file the tiny tokenizer is trained on",
        DataError, ("de-en.de:2", "[encoder.tokenizer.train_on.1]", "misaligned"),
        "give both sides the same number of lines",
        plan_case({"xtreme/tatoeba/de-en.de": "eins\n", "xtreme/tatoeba/de-en.en": "one\ntwo\n"},
                  encoder={**TINY, "tokenizer": {"train_on": ["pawsx", "tatoeba"]}})),
    Bad("plan-bad-mlm-text", "a bad file read only for MLM text", DataError,
        ("sst2/train.tsv:2", "[mlm.texts_from.0]", "expected 2 tab-separated columns"),
        HINT_DATA, plan_case({"english/sst2/train.tsv": "sentence\tlabel\ngood\n"},
                             mlm={"texts_from": ["sst2"]})),
    Bad("plan-eval-language-missing", "an evaluation language without its file", ConfigError,
        ("[evaluation.languages.pawsx.0]", "no file exists", "dev-fr.tsv"),
        "download it or drop the language",
        plan_case(evaluation={"languages": {"pawsx": ["fr"]}})),
    # -------------------------------------------------------------- files and folders
    Bad("plan-data-file-is-dir", "a directory where a data file is expected", DataError,
        ("dev-de.tsv", "[targets.0]", "is a directory, expected a file"),
        "remove the directory", plan_case(setup=_directory(f"data/{_DEV}/dev-de.tsv"))),
    Bad("plan-data-symlink-loop", "a data file that is a symlink loop", ConfigError,
        ("[targets.0]", "dev-de.tsv, a symlink that does not resolve"), "fix or remove the link",
        plan_case(setup=_loop(f"data/{_DEV}/dev-de.tsv"))),
    Bad("plan-data-dangling-symlink", "a data file that is a dangling symlink", ConfigError,
        ("[targets.0]", "dev-fr.tsv, a symlink that does not resolve"),
        "fix or remove the link", plan_case(setup=_dangling(f"data/{_DEV}/dev-fr.tsv"))),
    Bad("plan-glob-symlink-loop", "a symlink loop matched by a file pattern (UD treebanks)",
        DataError, ("de_gsd-ud-test.conllu", "[targets.0]", "Too many levels of symbolic links"),
        "fix or remove the link",
        plan_case({"xtreme/udpos/UD_English-EWT/en_ewt-ud-dev.conllu":
                   "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"},
                  setup=_loop("data/xtreme/udpos/UD_German-GSD/de_gsd-ud-test.conllu"),
                  targets=["udpos"])),
    Bad("plan-data-dir-is-file", "data_dir names a file", ConfigError,
        ("[data_dir]", "is a file, not a directory"), "point data_dir at the data folder",
        plan_case(setup=_file("data.txt"), data_dir="data.txt")),
    Bad("plan-data-dir-loop", "data_dir is a symlink loop", ConfigError,
        ("[data_dir]", "Symlink loop"), "fix or remove the link",
        plan_case(setup=_loop("loop"), data_dir="loop")),
    Bad("plan-output-is-file", "output_dir is an existing file", ConfigError,
        ("[output_dir]", "out is a file"), "move the file or choose another output_dir",
        plan_case(setup=_file("out"))),
    Bad("plan-output-parent-is-file", "output_dir lies below a file", ConfigError,
        ("[output_dir]", "notes.txt is a file, so"), "choose another output_dir",
        plan_case(setup=_file("notes.txt"), output_dir="notes.txt/run")),
    Bad("plan-cache-dir-is-file", "cache_dir is an existing file", ConfigError,
        ("[cache_dir]", "cache is a file"), "move the file or choose another cache_dir",
        plan_case(setup=_file("out/cache"), cache_dir="out/cache")),
    Bad("plan-output-loop", "output_dir is a symlink loop", ConfigError,
        ("[output_dir]", "cannot resolve path", "Symlink loop"), "fix or remove the link",
        plan_case(setup=_loop("out"))),
    Bad("plan-encoder-missing", "a local encoder directory that does not exist", ConfigError,
        ("[encoder.name]", "local encoder directory", "does not exist"),
        "give a model directory or a hub id", plan_case(encoder={"name": "./no-model"})),
    # -------------------------------------------------------------- featurization limits
    Bad("plan-qa-stride", "a QA stride larger than a window's context room", ConfigError,
        ("exp.yaml [overrides.mlqa.stride]", "stride 400 must be smaller than the context room",
         "= 316"), "raise max_length or lower stride",
        plan_case(targets=["mlqa"], overrides={"mlqa": {"stride": 400}})),
    Bad("plan-qa-window-train", "a global max_length that leaves no QA context room",
        ConfigError, ("[train.max_length]", "max_length 128 - max_query_length 64", "= 60"),
        "raise max_length or lower stride",
        plan_case(targets=["tydiqa"], train={"max_length": 128})),
    Bad("plan-qa-query-length", "a question cap that fills the QA window", ConfigError,
        ("[overrides.xquad.max_query_length]", "stride 128 must be smaller"),
        "lower max_query_length",
        plan_case(targets=["xquad"], overrides={"xquad": {"max_query_length": 300}})),
    Bad("plan-max-length-xlmr", "max_length beyond XLM-R's 512 positions", ConfigError,
        ("[overrides.pawsx.max_length]", "max_length 1024 is longer", "512 tokens"),
        "use max_length <= 512", plan_case(overrides={"pawsx": {"max_length": 1024}})),
    Bad("plan-max-length-tiny", "a tiny encoder with fewer positions than max_length",
        ConfigError, ("[encoder.tiny.max_position_embeddings]", "max_length 256", "128 tokens"),
        "more positions or a shorter max_length",
        plan_case(encoder={"tiny": {**TINY["tiny"], "max_position_embeddings": 130},
                           "tokenizer": {"train_on": ["pawsx"]}})),
    Bad("plan-max-length-local-config", "max_length beyond a local model's config.json",
        ConfigError, ("[train.max_length]", "enc/config.json: max_position_embeddings 66",
                      "64 tokens"), "use max_length <= 64",
        plan_case(setup=_local_encoder, encoder={"name": "./enc"}, train={"max_length": 128})),
)  # fmt: skip
