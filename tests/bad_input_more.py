"""More catalogue cases: data files read by each reader, the experiment YAML, the CLI and export."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from xstilts.errors import ConfigError, DataError
from xstilts.pipelines.experiment import load_experiment
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples

sys.path.insert(0, str(Path(__file__).parent))
from bad_input_common import (
    HINT_DATA,
    NLI,
    UD_ROW,
    VALID,
    Bad,
    Trigger,
    override_case,
    qa_pair,
    read,
    reader,
    squad,
    write,
    yaml_case,
)

_QA = {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]}
_HS = {"ind": 1, "ctx_a": "A man", "ctx_b": "is", "endings": ["a", "b", "c", "d"], "label": 0}
_CSQA = {"id": "c1", "answerKey": "A", "question": {
    "stem": "?", "choices": [{"label": k, "text": k.lower()} for k in "ABCDE"]}}  # fmt: skip
_COSMOS = "id,context,question,answer0,answer1,answer2,answer3,label\n"
_CCG_ID = "ID=wsj_9999.1 PARSER=GOLD NUMPARSE=1\n"
_CCG_LEAF = "(<L N NN NN word N>)"


def _jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _null(record: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of ``record`` with the field at ``path`` set to JSON null."""
    out = json.loads(json.dumps(record))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = None
    return out


def _fs_reader(task: str, split: str, make: str) -> Trigger:
    """Read a data path that is a directory (``make="dir"``) or a symlink loop (``"loop"``)."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        path = tmp / "dev-xx.tsv"
        if make == "dir":
            path.mkdir()
        else:
            os.symlink("b.tsv", path)
            os.symlink("dev-xx.tsv", tmp / "b.tsv")
        return read(task, split, path, "xx")

    return trigger


def _experiment_path(make: str) -> Trigger:
    """``load_experiment`` on a path that is absent, a directory or a symlink loop."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        path = tmp / "exp.yaml"
        if make == "dir":
            path.mkdir()
        elif make == "loop":
            os.symlink("b.yaml", path)
            os.symlink("exp.yaml", tmp / "b.yaml")
        return load_experiment(path, check_data=False)

    return trigger


def _bucc(xx: str, en: str, gold: str | None) -> Trigger:
    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        write(tmp / "xx-en.dev.en", en)
        if gold is not None:
            write(tmp / "xx-en.dev.gold", gold)
        return read("bucc", "dev", write(tmp / "xx-en.dev.xx", xx), "xx")

    return trigger


def _tatoeba_alone(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    return read("tatoeba", "test", write(tmp / "xx-en.xx", "un\n"), "xx")


def _alias_bomb() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    return "name: t\ndescription:\n  " + text.replace("\n", "\n  ").rstrip() + "\n"


def _cli_run(**options: Any) -> Trigger:
    """Call the ``xstilts run`` command body (unwrapped: the error itself, not exit code 2)."""

    def trigger(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
        from xstilts.cli import commands as cli

        path = write(tmp / "exp.yaml", yaml.safe_dump(VALID))
        kwargs = {"executor": "local", "ray_address": None, "nproc_per_node": 1, **options}
        return cli.run.__wrapped__(path, None, progress=False, **kwargs)  # type: ignore[attr-defined]

    return trigger


def _export_empty(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.reporting.collect import ExperimentData
    from xstilts.reporting.export import export_xtreme

    return export_xtreme(ExperimentData("e", {}, ["none"], ["xnli"], [], [], tmp), tmp / "x")


def _export_label(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.reporting.export import xtreme_label

    return xtreme_label("xnli", "contradictory")


def _results_missing(tmp: Path, mp: pytest.MonkeyPatch) -> Any:
    from xstilts.cli.report import resolve

    return resolve(tmp, None)


_NLI_TEXT = "give the text (or drop the record)"
_TINY = {"hidden_size": 64, "num_attention_heads": 2}
_MIX = {"mixture": ["mnli", "qqp"], "sampling": "temperature"}

MORE_DATA: tuple[Bad, ...] = (
    Bad("json-null-text", "JSON null as a sentence (NLI)", DataError,
        ("nli.jsonl:2", "field 'sentence1' is null, expected a string"), _NLI_TEXT,
        reader("mnli", "train", "nli.jsonl",
               NLI + NLI.replace('"sentence1": "a"', '"sentence1": null'))),
    Bad("json-number-text", "a number where a sentence belongs (NLI)", DataError,
        ("nli.jsonl:1", "field 'sentence2' is a JSON number (5)"), _NLI_TEXT,
        reader("mnli", "train", "nli.jsonl", NLI.replace('"b"', "5"))),
    Bad("json-null-label", "JSON null as a label (NLI)", DataError,
        ("nli.jsonl:1", "label field 'gold_label' is null"), "give the label",
        reader("mnli", "train", "nli.jsonl", NLI.replace('"neutral"', "null"))),
    Bad("json-null-context", "JSON null as a QA context", DataError,
        ("qa.json:1", "'context' is null, expected a string"), _NLI_TEXT,
        reader("xquad", "test", "qa.json", json.dumps(
            {"data": [{"paragraphs": [{"context": None, "qas": [_QA]}]}]}))),
    Bad("json-null-question", "JSON null as a question", DataError,
        ("qa.json:2", "'question' is null, expected a string"), _NLI_TEXT,
        reader("xquad", "test", "qa.json", squad([_QA, {**_QA, "id": "q2", "question": None}]))),
    Bad("json-null-answer", "JSON null as an answer text", DataError,
        ("qa.json:2", "'text' must be a string"), "give the answer text",
        reader("xquad", "test", "qa.json", squad(qa_pair(0, None)))),  # type: ignore[arg-type]
    Bad("json-answers-not-list", "QA answers that are not a list", DataError,
        ("qa.json:1", "'answers' is null, expected a list"), HINT_DATA,
        reader("xquad", "test", "qa.json", squad([{**_QA, "answers": None}]))),
    Bad("qa-not-object", "a QA entry that is not a JSON object", DataError,
        ("qa.json:1", "a QA is not a JSON object"), HINT_DATA,
        reader("squad", "train", "qa.json", squad(["q1"]))),  # type: ignore[list-item]
    Bad("qa-no-question", "a QA without a question", DataError,
        ("qa.json:1", "has no 'question'"), HINT_DATA,
        reader("squad", "train", "qa.json", squad([{"id": "q1", "answers": []}]))),
    Bad("squad-structure", "a SQuAD article without paragraphs", DataError,
        ("qa.json:1", "article 1: missing or malformed SQuAD field"), HINT_DATA,
        reader("squad", "train", "qa.json", '{"data": [{"title": "x"}]}')),
    Bad("json-null-ending", "JSON null as a HellaSwag ending", DataError,
        ("hs.jsonl:1", "answer choice 2 is null, expected a string"), _NLI_TEXT,
        reader("hellaswag", "train", "hs.jsonl",
               _jsonl({**_HS, "endings": ["a", "b", None, "d"]}))),
    Bad("json-null-stem", "JSON null as a CommonsenseQA question", DataError,
        ("cs.jsonl:1", "field 'question.stem' is null"), _NLI_TEXT,
        reader("commonsenseqa", "train", "cs.jsonl", _jsonl(_null(_CSQA, "question", "stem")))),
    Bad("mc-choice-count", "a HellaSwag example with 3 endings", DataError,
        ("hs.jsonl:1", "expected 4 answer choices for task 'hellaswag', found 3"), HINT_DATA,
        reader("hellaswag", "train", "hs.jsonl", _jsonl({**_HS, "endings": ["a", "b", "c"]}))),
    Bad("mc-bad-label", "a HellaSwag label outside 0-3", DataError,
        ("hs.jsonl:1", "unknown label '7'"), "use one of the listed labels",
        reader("hellaswag", "train", "hs.jsonl", _jsonl({**_HS, "label": 7}))),
    Bad("csqa-choices-not-list", "CommonsenseQA choices that are not a list", DataError,
        ("cs.jsonl:1", "'question.choices' must be a list"), HINT_DATA,
        reader("commonsenseqa", "train", "cs.jsonl",
               _jsonl({**_CSQA, "question": {"stem": "?", "choices": "A B"}}))),
    Bad("csqa-answer-key", "an answerKey naming no choice", DataError,
        ("cs.jsonl:1", "unknown label 'Z'"), "use one of the choice labels",
        reader("commonsenseqa", "train", "cs.jsonl", _jsonl({**_CSQA, "answerKey": "Z"}))),
    Bad("cosmos-header", "a Cosmos QA CSV without its label column", DataError,
        ("cosmos.csv:1", "header lacks column(s) ['label']"), HINT_DATA,
        reader("cosmosqa", "train", "cosmos.csv", _COSMOS[:-7] + "\n1,c,q,a,b,c,d\n")),
    Bad("cosmos-columns", "a Cosmos QA row with too few fields", DataError,
        ("cosmos.csv:2", "expected 8 CSV columns"), HINT_DATA,
        reader("cosmosqa", "train", "cosmos.csv", _COSMOS + "1,c,q\n")),
    Bad("glue-header", "a GLUE TSV header without the text column", DataError,
        ("train.tsv:1", "header lacks column(s) ['sentence']"), HINT_DATA,
        reader("sst2", "train", "train.tsv", "text\tlabel\ngood\t1\n")),
    Bad("glue-row-columns", "a GLUE TSV row with an extra field", DataError,
        ("train.tsv:3", "expected 2 tab-separated columns (as in the header)"), HINT_DATA,
        reader("sst2", "train", "train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\tx\n")),
    Bad("conllu-bad-id", "a CoNLL-U token line with a non-numeric id", DataError,
        ("xx-ud-test.conllu:2", "bad CoNLL-U token id 'x'"), HINT_DATA,
        reader("udpos", "test", "xx-ud-test.conllu", UD_ROW + "x" + UD_ROW[1:])),
    Bad("token-tag-columns", "a NER line with three columns", DataError,
        ("dev-fr.tsv:2", "expected 2 tab-separated columns (token, tag)"), HINT_DATA,
        reader("panx", "dev", "dev-fr.tsv", "Paris\tB-LOC\nest\tO\textra\n", lang="fr")),
    Bad("tatoeba-no-english", "a Tatoeba file without its English side", DataError,
        ("xx-en.en", "English side file xx-en.en not found next to xx-en.xx"),
        "put the aligned .en file next to it", _tatoeba_alone),
    Bad("bucc-duplicate-id", "a BUCC sentence id given twice", DataError,
        ("xx-en.dev.xx:2", "duplicate sentence id 'xx-1'"), HINT_DATA,
        _bucc("xx-1\tun\nxx-1\tdeux\n", "en-1\tone\n", "xx-1\ten-1\n")),
    Bad("bucc-no-gold", "a BUCC pair without its gold file", DataError,
        ("xx-en.dev.gold", "gold file xx-en.dev.gold not found"), "download the .gold file",
        _bucc("xx-1\tun\n", "en-1\tone\n", None)),
    Bad("bucc-gold-columns", "a BUCC gold line with one id", DataError,
        ("xx-en.dev.gold:1", "expected 2 tab-separated columns (xx-id, en-id)"), HINT_DATA,
        _bucc("xx-1\tun\n", "en-1\tone\n", "xx-1\n")),
    Bad("ccg-no-id", "a CCG derivation without its ID= line", DataError,
        ("wsj_9999.auto:1", "derivation line without a preceding ID= line"), HINT_DATA,
        reader("ccg", "dev", "wsj_9999.auto", f"(<T S 0 1> {_CCG_LEAF} )\n")),
    Bad("ccg-leaf-fields", "a CCG leaf with 4 of 5 fields", DataError,
        ("wsj_9999.auto:2", "has 4 fields, expected 5"), HINT_DATA,
        reader("ccg", "dev", "wsj_9999.auto", _CCG_ID + "(<T S 0 1> (<L N NN NN word>) )\n")),
    Bad("ccg-no-derivation", "a CCG ID= line without a derivation", DataError,
        ("wsj_9999.auto:1", "wsj_9999.1 has no derivation line"), HINT_DATA,
        reader("ccg", "dev", "wsj_9999.auto", _CCG_ID)),
    Bad("data-path-is-dir", "a directory where a data file is expected", DataError,
        ("dev-xx.tsv", "is a directory, expected a file"), "remove the directory",
        _fs_reader("xnli", "dev", "dir")),
    Bad("data-symlink-loop", "a data file that is a symlink loop", DataError,
        ("dev-xx.tsv", "cannot read the file: Too many levels of symbolic links"),
        "fix or remove the link", _fs_reader("xnli", "dev", "loop")),
    Bad("undeclared-split", "a split the task does not have", DataError,
        ("task 'bucc' has no 'train' split",), "use a declared split",
        lambda tmp, mp: load_examples(get_task("bucc"), tmp, "train", "de")),
    Bad("undeclared-language", "a language the task does not have", DataError,
        ("task 'xnli' has no 'dev' data for language 'xx'",), "use a declared language",
        lambda tmp, mp: load_examples(get_task("xnli"), tmp, "dev", "xx")),
)  # fmt: skip

MORE_YAML: tuple[Bad, ...] = (
    Bad("yaml-duplicate-key", "a top-level key written twice", ConfigError,
        ("exp.yaml:3", "duplicate key 'seeds' (first given at line 2)"), "remove one of them",
        yaml_case("name: t\nseeds: [1]\nseeds: [2]\n")),
    Bad("yaml-duplicate-nested", "a training setting written twice", ConfigError,
        ("exp.yaml:4", "duplicate key 'lr' (first given at line 3)"), "remove one of them",
        yaml_case("name: t\ntrain:\n  lr: 1e-5\n  lr: 2e-5\n")),
    Bad("yaml-non-utf8", "an experiment file that is not UTF-8", ConfigError,
        ("exp.yaml:2", "not valid UTF-8"), "save the file as UTF-8",
        yaml_case(b"name: t\ndescription: caf\xe9\n")),
    Bad("yaml-alias-bomb", "nested YAML aliases (a billion laughs)", ConfigError,
        ("exp.yaml:1", "aliases expand to 490,329,068 values", "refused without expanding"),
        "write the values out", yaml_case(_alias_bomb())),
    Bad("yaml-recursive-alias", "a YAML alias inside its own anchor", ConfigError,
        ("exp.yaml:2", "recursive YAML alias"), "remove the alias",
        yaml_case("name: t\ndescription: &d [*d]\n")),
    Bad("yaml-control-char", "a NUL byte in the experiment file", ConfigError,
        ("exp.yaml", "invalid YAML: unacceptable character #x0000"), "remove the character",
        yaml_case("name: t\x00\n")),
    Bad("yaml-two-documents", "two YAML documents in one file", ConfigError,
        ("exp.yaml:2", "invalid YAML: expected a single document"), "keep one document",
        yaml_case("name: a\n---\nname: b\n")),
    Bad("yaml-too-deep", "YAML nested thousands of levels deep", ConfigError,
        ("exp.yaml", "invalid YAML: nested too deeply"), "flatten the value",
        yaml_case("name: t\ndescription: " + "[" * 1000 + "\n")),
    Bad("experiment-missing", "an experiment file that does not exist", ConfigError,
        ("exp.yaml", "experiment file not found"), "check the path",
        _experiment_path("none")),
    Bad("experiment-is-dir", "a directory given as the experiment file", ConfigError,
        ("exp.yaml", "experiment file is a directory"), "give the .yaml file",
        _experiment_path("dir")),
    Bad("experiment-symlink-loop", "an experiment file that is a symlink loop", ConfigError,
        ("exp.yaml", "cannot read the experiment file: Too many levels of symbolic links"),
        "fix or remove the link", _experiment_path("loop")),
    Bad("epochs-inf", "epochs: .inf", ConfigError,
        ("[train.epochs]", "bad value inf: not a finite number"), "give a finite number",
        yaml_case(train={"epochs": float("inf")})),
    Bad("lr-nan", "lr: .nan", ConfigError,
        ("[train.lr]", "bad value nan: not a finite number"), "give a finite number",
        yaml_case(train={"lr": float("nan")})),
    Bad("lr-overflow", "a learning rate written as 1e400 (overflows to inf)", ConfigError,
        ("[train.lr]", "bad value '1e400': not a finite number"), "give a finite number",
        yaml_case(train={"lr": "1e400"})),
    Bad("override-inf", "an override of epochs to .inf", ConfigError,
        ("[overrides.mnli.epochs]", "not a finite number"), "give a finite number",
        override_case("overrides.mnli.epochs=.inf")),
    Bad("temperature-inf", "a mixture temperature of .inf", ConfigError,
        ("[intermediate.1.temperature]", "temperature must be a number > 0"),
        "give a finite temperature",
        yaml_case(intermediate=["none", {**_MIX, "temperature": float("inf")}])),
    Bad("mlm-weight-inf", "an MLM weight of .inf", ConfigError,
        ("[mlm.weight]", "must be a number > 0"), "give a finite weight",
        yaml_case(mlm={"weight": float("inf")})),
    Bad("shape-overrides-list", "overrides given as a list", ConfigError,
        ("[overrides]", "must be a mapping (key: value) of task: {settings}, got a list"),
        "overrides: {squad: {epochs: 1}}", yaml_case(overrides=["squad"])),
    Bad("shape-languages-string", "evaluation languages given as one string", ConfigError,
        ("[evaluation.languages.xnli]", "must be a list", "got the str 'de'"),
        "languages: {xnli: [de]}", yaml_case(evaluation={"languages": {"xnli": "de"}})),
    Bad("shape-evaluation-list", "evaluation given as a list", ConfigError,
        ("[evaluation]", "must be a mapping"), "evaluation: {max_eval_examples: 100}",
        yaml_case(evaluation=["max_eval_examples"])),
    Bad("shape-tiny-list", "tiny-encoder settings given as a list", ConfigError,
        ("[encoder.tiny]", "must be a mapping", "got a list"), "tiny: {hidden_size: 64}",
        yaml_case(encoder={"tiny": [64, 2]})),
    Bad("shape-train-on-string", "tokenizer train_on given as one string", ConfigError,
        ("[encoder.tokenizer.train_on]", "got the str 'mnli'"), "train_on: [mnli]",
        yaml_case(encoder={"tiny": {}, "tokenizer": {"train_on": "mnli"}})),
    Bad("shape-texts-from-string", "mlm texts_from given as one string", ConfigError,
        ("[mlm.texts_from]", "must be a list"), "texts_from: [mnli]",
        yaml_case(mlm={"texts_from": "mnli"})),
    Bad("shape-chain-step-list", "a list nested inside a chain", ConfigError,
        ("[intermediate.1.1]", "a task or a mixture mapping, got a list"), "flatten the chain",
        yaml_case(intermediate=["none", ["mnli", ["qqp"]]])),
    Bad("shape-mixture-string", "a mixture of one string", ConfigError,
        ("[intermediate.1.mixture]", "must be a list"), "mixture: [mnli, qqp]",
        yaml_case(intermediate=["none", {"mixture": "mnli"}])),
    Bad("tiny-heads", "hidden_size not divisible by the attention heads", ConfigError,
        ("[encoder.tiny.num_attention_heads]", "hidden_size 64 is not a multiple of "
         "num_attention_heads 3"), "num_attention_heads: 1, 2, 4 ...",
        yaml_case(encoder={"tiny": {**_TINY, "num_attention_heads": 3}})),
    Bad("tiny-no-layers", "a tiny encoder with 0 layers", ConfigError,
        ("[encoder.tiny.num_hidden_layers]", "must be an integer >= 1"), "give >= 1 layers",
        yaml_case(encoder={"tiny": {**_TINY, "num_hidden_layers": 0}})),
    Bad("tiny-dropout", "a dropout probability of 1.5", ConfigError,
        ("[encoder.tiny.hidden_dropout_prob]", "must be a number in [0, 1)"), "e.g. 0.1",
        yaml_case(encoder={"tiny": {**_TINY, "hidden_dropout_prob": 1.5}})),
    Bad("tiny-activation", "an unknown activation function", ConfigError,
        ("[encoder.tiny.hidden_act]", "unknown activation 'gelux'"), "e.g. gelu",
        yaml_case(encoder={"tiny": {**_TINY, "hidden_act": "gelux"}})),
    Bad("tiny-positions", "a position table with 2 rows", ConfigError,
        ("[encoder.tiny.max_position_embeddings]", "must be an integer > 2"), "e.g. 514",
        yaml_case(encoder={"tiny": {**_TINY, "max_position_embeddings": 2}})),
    Bad("tokenizer-vocab", "a tokenizer vocabulary of 0", ConfigError,
        ("[encoder.tokenizer.vocab_size]", "must be an integer >= 1"), "e.g. 4000",
        yaml_case(encoder={"tiny": _TINY, "tokenizer": {"vocab_size": 0}})),
    Bad("encoder-both", "an encoder with both name and tiny", ConfigError,
        ("[encoder]", "exactly one of 'name' or 'tiny'"), "keep one of them",
        yaml_case(encoder={"name": "xlm-roberta-large", "tiny": {}})),
    Bad("unknown-sampling", "an unknown mixture sampling", ConfigError,
        ("[intermediate.1.sampling]", "unknown sampling 'zipf'"), "proportional, temperature "
        "or uniform", yaml_case(intermediate=["none", {**_MIX, "sampling": "zipf"}])),
    Bad("mixture-one-task", "a mixture of one task", ConfigError,
        ("[intermediate.1.mixture]", "at least two tasks"), "list two or more tasks",
        yaml_case(intermediate=["none", {"mixture": ["mnli"]}])),
    Bad("empty-chain", "an empty chain", ConfigError,
        ("[intermediate.1]", "empty chain"), "use none", yaml_case(intermediate=["none", []])),
    Bad("none-in-chain", "'none' inside a chain", ConfigError,
        ("[intermediate.1.0]", "'none' cannot be part of a chain"), "drop it from the chain",
        yaml_case(intermediate=["none", ["none", "mnli"]])),
    Bad("not-a-target", "an English task listed as a target", ConfigError,
        ("[targets.0]", "'mnli' is not a target task"), "use an XTREME task",
        yaml_case(targets=["mnli"])),
    Bad("target-twice", "a target listed twice", ConfigError,
        ("[targets.1]", "target 'xnli' listed twice"), "list it once",
        yaml_case(targets=["xnli", "xnli"])),
    Bad("option-twice", "an intermediate option listed twice", ConfigError,
        ("[intermediate.2]", "option mnli listed twice"), "list it once",
        yaml_case(intermediate=["none", "mnli", "mnli"])),
    Bad("seeds-repeated", "a seed listed twice", ConfigError,
        ("[seeds]", "seeds are repeated"), "give distinct seeds", yaml_case(seeds=[1, 1])),
    Bad("eval-unknown-language", "an evaluation language the task lacks", ConfigError,
        ("[evaluation.languages.xnli.0]", "xnli has no language 'xx'"), "use a listed language",
        yaml_case(evaluation={"languages": {"xnli": ["xx"]}})),
    Bad("eval-language-non-target", "evaluation languages for a task that is no target",
        ConfigError, ("[evaluation.languages.pawsx]", "not a target of this experiment"),
        "add it to targets", yaml_case(evaluation={"languages": {"pawsx": ["de"]}})),
    Bad("eval-precision", "an unknown evaluation precision", ConfigError,
        ("[evaluation.precision]", "must be auto, fp32 or bf16"), "auto, fp32 or bf16",
        yaml_case(evaluation={"precision": "fp16"})),
    Bad("eval-max-tokens", "an evaluation token budget of 8", ConfigError,
        ("[evaluation.max_tokens]", "integer >= 16"), "e.g. 16384",
        yaml_case(evaluation={"max_tokens": 8})),
    Bad("retrieval-pooling", "an unknown retrieval pooling", ConfigError,
        ("[evaluation.retrieval.pooling]", "must be mean or cls"), "mean or cls",
        yaml_case(evaluation={"retrieval": {"pooling": "max"}})),
    Bad("train-precision", "an unknown training precision", ConfigError,
        ("[train.precision]", "one of auto, fp32, bf16"), "auto, fp32 or bf16",
        yaml_case(train={"precision": "fp16"})),
    Bad("keep-heads-string", "keep_heads: 'yes please'", ConfigError,
        ("[keep_heads]", "must be true or false"), "true or false",
        yaml_case(keep_heads="yes please")),
    Bad("report-primary-condition", "a declared comparison naming a condition not run",
        ConfigError, ("[report.primary.0.a]", "'mnli->pawsx' is not a condition"),
        "name a condition of intermediate (did-you-mean hint)",
        yaml_case(report={"primary": [{"a": "mnli->pawsx", "b": "none", "target": "xnli"}]})),
    Bad("mlm-probability", "an MLM masking probability of 1.5", ConfigError,
        ("[mlm.probability]", "must be a number in (0, 1)"), "e.g. 0.15",
        yaml_case(mlm={"probability": 1.5})),
    Bad("override-no-equals", "an override without '='", ConfigError,
        ("bad override 'train.lr'", "expected key.path=value"), "key.path=value",
        override_case("train.lr")),
    Bad("override-index", "an override indexing past a list", ConfigError,
        ("[intermediate.5]", "index '5' out of range for a list of 2"), "use an existing index",
        override_case("intermediate.5=mnli")),
    Bad("override-into-scalar", "an override below a plain value", ConfigError,
        ("[name.x]", "cannot set a key inside a non-mapping value"), "override the value itself",
        override_case("name.x=1")),
    Bad("override-bad-yaml", "an override value that is not YAML", ConfigError,
        ("[train.lr]", "cannot parse override value '[1,'"), "quote it or fix the YAML",
        override_case("train.lr=[1,")),
    Bad("override-duplicate-key", "an override mapping with a key twice", ConfigError,
        ("[overrides.squad]", "duplicate key 'epochs'"), "remove one of them",
        override_case("overrides.squad={epochs: 1, epochs: 2}")),
)  # fmt: skip

MORE_RUNS: tuple[Bad, ...] = (
    Bad("cli-unknown-executor", "xstilts run --executor slurm", ConfigError,
        ("[--executor]", "unknown executor 'slurm'"), "local or ray",
        _cli_run(executor="slurm")),
    Bad("cli-nproc", "xstilts run --nproc-per-node 0", ConfigError,
        ("[--nproc-per-node]", "needs >= 1"), "give >= 1 processes",
        _cli_run(nproc_per_node=0)),
    Bad("results-missing", "xstilts results on a folder without results.sqlite", DataError,
        ("results.sqlite", "no results store found"), "run the experiment first",
        _results_missing),
    Bad("export-nothing", "xstilts export when no run kept predictions", DataError,
        ("no run has per-example predictions to export",), "re-run `xstilts run`",
        _export_empty),
    Bad("export-label-spelling", "a label XTREME's label set does not have", DataError,
        ("xnli label 'contradictory' has no XTREME spelling",), "update XTREME_LABELS",
        _export_label),
)  # fmt: skip
