"""Check, before any training, that every data file an experiment reads exists.

Only file *presence* is checked (cheap: no file is read); malformed files are reported by the
readers with file and line when the stage loads them.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment import ExperimentSpec
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec, TaskType


def _missing(spec: TaskSpec, data_dir: Path, split: str, lang: str, key: str) -> ConfigError:
    """The error for an absent split: expected path(s) and the download hint."""
    sources = [s for s in spec.splits[split] if lang in s.languages]
    expected = ", ".join(str(data_dir / s.pattern_for(lang)) for s in sources) or "(none declared)"
    hints = "; ".join(dict.fromkeys(s.download_hint for s in sources if s.download_hint))
    return ConfigError(
        f"task {spec.name!r} needs its {split!r} data ({lang}) but no file exists; "
        f"expected {expected}",
        key=key,
        hint=hints or None,
    )


def _require_training_data(name: str, data_dir: Path, key: str) -> None:
    """Train split (and the dev split used for model selection, when declared) must exist."""
    spec = get_task(name)
    for split in dict.fromkeys(("train", spec.dev_split)):
        if split in spec.splits and not spec.find_files(data_dir, split, spec.train_language):
            raise _missing(spec, data_dir, split, spec.train_language, key)


def _present_eval_languages(spec: TaskSpec, data_dir: Path) -> list[str]:
    split = spec.eval_split
    return [lang for lang in spec.languages(split) if spec.find_files(data_dir, split, lang)]


def _require_eval_data(exp: ExperimentSpec, name: str, key: str) -> None:
    """At least one language of the eval split, and every language explicitly requested."""
    spec = get_task(name)
    present = _present_eval_languages(spec, exp.data_dir)
    if not present:
        raise _missing(spec, exp.data_dir, spec.eval_split, spec.languages(spec.eval_split)[0], key)
    wanted = exp.evaluation["languages"].get(name) or []
    for i, lang in enumerate(wanted):
        if lang not in present:
            raise _missing(
                spec, exp.data_dir, spec.eval_split, lang, f"evaluation.languages.{name}.{i}"
            )


def _require_text(name: str, data_dir: Path, key: str) -> None:
    """Tokenizer/MLM text comes from the train split, else from the eval split."""
    spec = get_task(name)
    if "train" in spec.splits and spec.find_files(data_dir, "train", spec.train_language):
        return
    if not _present_eval_languages(spec, data_dir):
        split = "train" if "train" in spec.splits else spec.eval_split
        raise _missing(spec, data_dir, split, spec.train_language, key)


def check_data(exp: ExperimentSpec) -> None:
    """Raise one ConfigError (key path, expected file, download hint) for absent data.

    Raises:
        ConfigError: data_dir missing, or a needed split without files.
    """
    data = exp.data_dir
    if not data.is_dir():
        raise ConfigError(
            f"data directory {data} does not exist",
            key="data_dir",
            hint="set data_dir in the experiment (relative to the YAML file) or XSTILTS_DATA_DIR",
        )
    for i, option in enumerate(exp.options):
        for j, step in enumerate(option.steps):
            key = f"intermediate.{i}.{j}" if len(option.steps) > 1 else f"intermediate.{i}"
            for task in step.tasks:
                _require_training_data(task, data, key)
    for k, target in enumerate(exp.targets):
        if get_task(target).type is not TaskType.RETRIEVAL:
            _require_training_data(target, data, f"targets.{k}")
        _require_eval_data(exp, target, f"targets.{k}")
    if "tiny" in exp.encoder:
        for i, name in enumerate(exp.encoder["tokenizer"]["train_on"]):
            _require_text(name, data, f"encoder.tokenizer.train_on.{i}")
    for i, name in enumerate(exp.mlm.get("texts_from", [])):
        _require_text(name, data, f"mlm.texts_from.{i}")
