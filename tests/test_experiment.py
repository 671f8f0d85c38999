"""Experiment YAML: overrides, validation errors (with key paths), path resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment import experiment_from_dict, load_experiment
from xstilts.pipelines.overrides import apply_overrides, parse_override


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "t",
        "data_dir": "data",
        "encoder": {"name": "xlm-roberta-large"},
        "seeds": [1],
        "intermediate": ["none", "mnli", ["mnli", "qqp"]],
        "targets": ["xnli", "pawsx", "tatoeba"],
        "train": {"lr": 1e-5},
    }
    raw.update(changes)
    return raw


def _error(raw: dict[str, Any], overrides: tuple[str, ...] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        experiment_from_dict(apply_overrides(raw, overrides), base_dir=Path("/x"), check_data=False)
    return info.value


def test_parse_override_values() -> None:
    assert parse_override("train.lr=2e-5") == (["train", "lr"], 2e-5)
    assert parse_override("seeds=[1,2]") == (["seeds"], [1, 2])
    assert parse_override("keep_heads=true") == (["keep_heads"], True)
    assert parse_override("evaluation.max_eval_examples=null") == (
        ["evaluation", "max_eval_examples"],
        None,
    )
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_override("train.lr")


def test_apply_overrides_nested_and_lists() -> None:
    raw = _raw()
    out = apply_overrides(
        raw, ["overrides.squad.epochs=1", "intermediate.1=qqp", "intermediate.2.0=sst2"]
    )
    assert out["overrides"] == {"squad": {"epochs": 1}}
    assert out["intermediate"] == ["none", "qqp", ["sst2", "qqp"]]
    assert raw["intermediate"][1] == "mnli"  # the input is not modified
    with pytest.raises(ConfigError, match="out of range") as info:
        apply_overrides(raw, ["intermediate.7=qqp"])
    assert info.value.key == "intermediate.7"


def test_valid_experiment_resolves() -> None:
    exp = experiment_from_dict(
        apply_overrides(_raw(), ["seeds=[1,2]", "train.lr=3e-5"]),
        base_dir=Path("/x/configs"),
        check_data=False,
    )
    assert exp.seeds == (1, 2)
    assert exp.train["lr"] == 3e-5
    assert [o.label for o in exp.options] == ["none", "mnli", "mnli→qqp"]
    assert exp.data_dir == Path("/x/configs/data")
    assert exp.cache_dir == Path("/x/configs/runs/t/stages")
    assert exp.evaluation["retrieval"] == {"pooling": "mean", "layer": None, "max_sentences": None}


@pytest.mark.parametrize(
    ("raw", "overrides", "key", "text"),
    [
        (_raw(trian={}), (), "trian", "did you mean 'train'"),
        (_raw(), ("train.lrr=1",), "train.lrr", "did you mean 'lr'"),
        (_raw(), ("train.lr=0",), "train.lr", "> 0"),
        (_raw(), ("overrides.xnli.epochs=-1",), "overrides.xnli.epochs", ">= 0"),
        (_raw(), ("overrides.xnil.epochs=1",), "overrides.xnil", "did you mean 'xnli'"),
        (_raw(), ("intermediate.1=mnlii",), "intermediate.1", "did you mean 'mnli'"),
        (_raw(), ("intermediate.2=[mnli,mnli]",), "intermediate.2", "twice"),
        (_raw(), ("intermediate.1=[qqp,mnli,qqp]",), "intermediate.1", "twice"),
        (_raw(), ("intermediate.1=xnli",), "intermediate.1", "cannot follow itself"),
        (_raw(), ("intermediate.1=tatoeba",), "intermediate.1", "retrieval"),
        (_raw(), ("targets.0=mnli",), "targets.0", "not a target"),
        (_raw(), ("seeds=[]",), "seeds", "non-empty"),
        (
            _raw(),
            ("intermediate.1={mixture: [mnli, qqp], sampling: zipf}",),
            "intermediate.1.sampling",
            "unknown sampling",
        ),
        (
            _raw(),
            ("intermediate.1={mixture: [mnli, qqp], sampling: temperature, temperature: 0}",),
            "intermediate.1.temperature",
            "> 0",
        ),
        (_raw(), ("evaluation.languages.xnli=[en, xx]",), "evaluation.languages.xnli.1", "'xx'"),
        (_raw(), ("encoder={tiny: {hidden: 8}}",), "encoder.tiny.hidden", "did you mean"),
    ],
)
def test_validation_errors_name_the_key(
    raw: dict[str, Any], overrides: tuple[str, ...], key: str, text: str
) -> None:
    err = _error(raw, overrides)
    assert err.key == key
    assert text in str(err)


def test_missing_data_names_path_and_hint(data_root: Path) -> None:
    raw = apply_overrides(_raw(data_dir=str(data_root)), ["intermediate.1=ccg"])
    with pytest.raises(ConfigError) as info:
        experiment_from_dict(raw, base_dir=Path("/x"))
    err = info.value
    assert err.key == "intermediate.1"
    assert "english/ccgbank/data/AUTO" in err.message  # the expected path, named
    assert err.hint  # the task's download hint
    # A data dir that does not exist at all:
    with pytest.raises(ConfigError) as info:
        experiment_from_dict(_raw(data_dir="/nonexistent/data"), base_dir=Path("/x"))
    assert info.value.key == "data_dir"


def test_yaml_file_relative_paths_and_syntax_errors(tmp_path: Path, data_root: Path) -> None:
    cfg = tmp_path / "configs" / "e.yaml"
    cfg.parent.mkdir()
    cfg.write_text(
        f"name: e\ndata_dir: {data_root}\noutput_dir: ../runs/e\n"
        "encoder: xlm-roberta-large\nintermediate: [none, mnli]\ntargets: [pawsx]\n"
        "train: {lr: 1e-5}\n"
    )
    exp = load_experiment(cfg, ["train.epochs=1"])
    assert exp.output_dir == (tmp_path / "runs" / "e").resolve()
    assert exp.train == {"lr": 1e-5, "epochs": 1.0}  # "1e-5" (a YAML string) became a float
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntargets: [xnli\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(bad)
    assert info.value.file == str(bad)
    assert info.value.line is not None
