"""Validation of an experiment mapping: keys, values, tasks, chains and data files.

Every check raises ONE :class:`ConfigError` whose ``key`` is the dotted path of the offending
value (the same path a ``key.path=value`` override would use), e.g. ``intermediate.2.1``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.encoder_checks import check_tiny
from xstilts.pipelines.experiment import (
    TOP_KEYS,
    ExperimentSpec,
    IntermediateOption,
    Step,
    check_keys,
    default_data_dir,
)
from xstilts.pipelines.shapes import check_shapes
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec, TaskType
from xstilts.training.freeze_parts import FREEZE_HELP, valid_freeze

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
Check = Callable[[Any], bool]


def _num(v: Any) -> float | None:
    """A finite number from a YAML value (``"1e-5"`` is a string to YAML 1.1), else None.

    ``.inf``/``.nan`` (and ``1e400``, which overflows to inf) are refused: an infinite epoch
    count would train forever, and every comparison with NaN is false.
    """
    numeric = isinstance(v, int | float) or (isinstance(v, str) and _FLOAT_TEXT.match(v.strip()))
    if isinstance(v, bool) or not numeric:
        return None
    try:
        out = float(v)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return out if math.isfinite(out) else None


def _non_finite(v: Any) -> bool:
    """``.inf``, ``.nan`` or a numeric string that overflows (``"1e400"``)."""
    if isinstance(v, str) and _FLOAT_TEXT.match(v.strip()):
        v = float(v)
    return isinstance(v, float) and not math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_RULES: dict[str, tuple[Check, str]] = {
    "lr": (lambda v: (_num(v) or 0) > 0, "a number > 0"),
    "weight_decay": (lambda v: _num(v) is not None and _num(v) >= 0, "a number >= 0"),
    "warmup_ratio": (lambda v: _num(v) is not None and 0 <= _num(v) <= 1, "a number in [0, 1]"),
    "epochs": (lambda v: _num(v) is not None and _num(v) >= 0, "a number >= 0"),
    "max_steps": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "max_tokens": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
    "grad_accum": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "max_grad_norm": (lambda v: (_num(v) or 0) > 0, "a number > 0"),
    "eval_every": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
    "patience": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
    "max_train_examples": (lambda v: v is None or (_is_int(v) and v >= 1), "null or int >= 1"),
    "max_dev_examples": (lambda v: v is None or (_is_int(v) and v >= 1), "null or int >= 1"),
    "precision": (lambda v: v in ("auto", "fp32", "bf16"), "one of auto, fp32, bf16"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "checkpoint_every": (lambda v: v is None or (_is_int(v) and v >= 1), "null or int >= 1"),
    "keep_checkpoints": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "deterministic": (lambda v: isinstance(v, bool), "true or false"),
    "threads": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "log_every": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "freeze": (
        valid_freeze,
        f"a list of parts to freeze, each frozen once: {FREEZE_HELP}",
    ),
    "max_length": (lambda v: _is_int(v) and v >= 8, "an integer >= 8"),
    "stride": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "max_query_length": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "n_best": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "max_answer_length": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
}
FLOAT_KEYS = ("lr", "weight_decay", "warmup_ratio", "epochs", "max_grad_norm")
FEATURIZE_KEYS = ("max_length", "stride", "max_query_length", "n_best", "max_answer_length")
TRAIN_KEYS = tuple(k for k in _RULES if k not in FEATURIZE_KEYS)
SAMPLING = ("proportional", "temperature", "uniform")
TINY_DEFAULTS = {
    "vocab_size": 4000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 128, "seed": 0,
}  # fmt: skip
TINY_KEYS = (
    *TINY_DEFAULTS, "max_position_embeddings", "type_vocab_size", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "hidden_act", "layer_norm_eps",
)  # fmt: skip


def check_train_values(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a ``train``/``overrides`` mapping; returns it with numeric strings as floats.

    Raises:
        ConfigError: unknown key (did you mean) or a bad value, at ``where.key``.
    """
    if not isinstance(values, Mapping):
        raise ConfigError("must be a mapping of training settings", key=where)
    check_keys(values, list(_RULES), where)
    out = dict(values)
    for key, value in values.items():
        ok, wanted = _RULES[key]
        if _non_finite(value):
            raise ConfigError(f"bad value {value!r}: not a finite number", key=f"{where}.{key}")
        if not ok(value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ConfigError(f"bad value {shown}: must be {wanted}", key=f"{where}.{key}")
        if key in FLOAT_KEYS:
            out[key] = float(_num(value))  # type: ignore[arg-type]
    return out


def _task(name: Any, key: str) -> TaskSpec:
    """The task called ``name`` (a ConfigError at ``key`` with did-you-mean otherwise)."""
    if not isinstance(name, str):
        raise ConfigError(f"expected a task name, got {name!r}", key=key)
    try:
        return get_task(name)
    except ConfigError as exc:
        raise ConfigError(exc.message, key=key, hint=exc.hint) from None


def _trainable(name: Any, key: str) -> str:
    spec = _task(name, key)
    if spec.type is TaskType.RETRIEVAL:
        raise ConfigError(
            f"retrieval task {spec.name!r} cannot be an intermediate task (it has no training)",
            key=key,
            hint="list it under targets: it is evaluated on every intermediate encoder",
        )
    if "train" not in spec.splits:
        raise ConfigError(f"task {spec.name!r} has no train split", key=key)
    return spec.name


def _mixture_step(entry: Mapping[str, Any], key: str) -> Step:
    check_keys(entry, ["mixture", "sampling", "temperature", "train"], key)
    tasks = entry.get("mixture")
    if not isinstance(tasks, list) or len(tasks) < 2:
        raise ConfigError("a mixture needs a list of at least two tasks", key=f"{key}.mixture")
    names = tuple(_trainable(t, f"{key}.mixture.{i}") for i, t in enumerate(tasks))
    sampling = entry.get("sampling", "proportional")
    if sampling not in SAMPLING:
        raise ConfigError(
            f"unknown sampling {sampling!r}", key=f"{key}.sampling", hint=f"one of {SAMPLING}"
        )
    temperature = _num(entry.get("temperature", 2.0 if sampling == "temperature" else 1.0))
    if temperature is None or temperature <= 0:
        raise ConfigError("temperature must be a number > 0", key=f"{key}.temperature")
    train = check_train_values(entry.get("train") or {}, f"{key}.train")
    return Step(names, {"sampling": sampling, "temperature": temperature}, train)


def _step(entry: Any, key: str) -> Step:
    if isinstance(entry, Mapping):
        return _mixture_step(entry, key)
    if entry == "none":
        raise ConfigError("'none' cannot be part of a chain", key=key)
    return Step((_trainable(entry, key),))


def parse_option(entry: Any, key: str) -> IntermediateOption:
    """One ``intermediate`` entry: ``none``, a task, a list (chain), a mixture or ``{chain: …}``.

    Raises:
        ConfigError: unknown task, retrieval task, empty chain or a repeated task.
    """
    if entry is None or entry == "none":
        return IntermediateOption(())
    if isinstance(entry, Mapping) and "chain" in entry:
        check_keys(entry, ["chain"], key)
        entry, key = entry["chain"], f"{key}.chain"
    if isinstance(entry, list):
        if not entry:
            raise ConfigError("empty chain (use 'none' for no intermediate task)", key=key)
        steps = tuple(_step(e, f"{key}.{i}") for i, e in enumerate(entry))
    else:
        steps = (_step(entry, key),)
    option = IntermediateOption(steps)
    seen: set[str] = set()
    for task in option.tasks:
        if task in seen:
            raise ConfigError(
                f"chain {option.label} trains {task!r} twice (a chain must not repeat a task)",
                key=key,
            )
        seen.add(task)
    return option


def _targets(raw: Any, options: tuple[IntermediateOption, ...]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("targets must be a non-empty list of target tasks", key="targets")
    out: list[str] = []
    for i, name in enumerate(raw):
        spec = _task(name, f"targets.{i}")
        if not spec.is_target:
            raise ConfigError(
                f"{spec.name!r} is not a target task", key=f"targets.{i}",
                hint="targets are the XTREME tasks: xnli, pawsx, udpos, panx, xquad, mlqa, "
                "tydiqa, bucc, tatoeba",
            )  # fmt: skip
        if spec.name in out:
            raise ConfigError(f"target {spec.name!r} listed twice", key=f"targets.{i}")
        for j, option in enumerate(options):
            if spec.name in option.tasks:
                raise ConfigError(
                    f"target {spec.name!r} is also an intermediate task of {option.label} "
                    "(a task cannot follow itself)",
                    key=f"intermediate.{j}",
                )
        out.append(spec.name)
    return tuple(out)


def _encoder(raw: Any, all_tasks: list[str], base: Path | None = None) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or ("name" in raw) == ("tiny" in raw):
        raise ConfigError("encoder needs exactly one of 'name' or 'tiny'", key="encoder")
    if "name" in raw:
        check_keys(raw, ["name", "revision"], "encoder")
        out = dict(raw)
        name = str(out["name"])
        # A local checkpoint written as ./x or ../x is relative to the YAML file, like data_dir.
        if base is not None and name.startswith(("./", "../", "~")):
            out["name"] = str(_path(base, name, "encoder.name"))
        return out
    check_keys(raw, ["tiny", "tokenizer"], "encoder")
    tiny = dict(raw["tiny"] or {})
    check_keys(tiny, TINY_KEYS, "encoder.tiny")
    tiny = {**TINY_DEFAULTS, **tiny}
    tok = dict(raw.get("tokenizer") or {})
    check_keys(tok, ["train_on", "max_lines", "vocab_size"], "encoder.tokenizer")
    tok.setdefault("train_on", all_tasks)
    tok.setdefault("max_lines", 2000)
    tok.setdefault("vocab_size", tiny["vocab_size"])
    for i, name in enumerate(tok["train_on"]):
        _task(name, f"encoder.tokenizer.train_on.{i}")
    check_tiny(tiny, tok)
    return {"tiny": tiny, "tokenizer": tok}


def _evaluation(raw: Any, targets: tuple[str, ...]) -> dict[str, Any]:
    raw = dict(raw or {})
    keys = ["max_eval_examples", "max_tokens", "languages", "retrieval", "precision"]
    check_keys(raw, keys, "evaluation")
    cap = raw.get("max_eval_examples")
    if cap is not None and not (_is_int(cap) and cap >= 1):
        raise ConfigError("must be null or an integer >= 1", key="evaluation.max_eval_examples")
    max_tokens = raw.get("max_tokens", 16384)
    if not (_is_int(max_tokens) and max_tokens >= 16):
        raise ConfigError("must be an integer >= 16", key="evaluation.max_tokens")
    retrieval = dict(raw.get("retrieval") or {})
    check_keys(retrieval, ["pooling", "layer"], "evaluation.retrieval")
    retrieval.setdefault("pooling", "mean")
    retrieval.setdefault("layer", None)
    if retrieval["pooling"] not in ("mean", "cls"):
        raise ConfigError("must be mean or cls", key="evaluation.retrieval.pooling")
    precision = raw.get("precision", "auto")
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError("must be auto, fp32 or bf16", key="evaluation.precision")
    languages: dict[str, list[str] | None] = {}
    for task, langs in dict(raw.get("languages") or {}).items():
        key = f"evaluation.languages.{task}"
        if task not in targets:
            raise ConfigError(f"{task!r} is not a target of this experiment", key=key)
        spec = get_task(task)
        if langs is not None:
            if not langs:
                raise ConfigError(
                    "an empty language list scores nothing", key=key,
                    hint="list languages, or null for every language present",
                )  # fmt: skip
            declared = spec.languages(spec.eval_split)
            for i, lang in enumerate(langs):
                if lang not in declared:
                    raise ConfigError(
                        f"{task} has no language {lang!r}", key=f"{key}.{i}",
                        hint=f"declared: {', '.join(declared)}",
                    )  # fmt: skip
            langs = list(langs)
        languages[task] = langs
    return {
        "max_eval_examples": cap, "max_tokens": max_tokens, "languages": languages,
        "retrieval": retrieval, "precision": precision,
    }  # fmt: skip


def _mlm(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    check_keys(raw, ["weight", "probability", "texts_from", "max_length"], "mlm")
    out = {"weight": 1.0, "probability": 0.15, "texts_from": [], **raw}
    if (_num(out["weight"]) or 0) <= 0:
        raise ConfigError("must be a number > 0", key="mlm.weight")
    if "max_length" in out and not _RULES["max_length"][0](out["max_length"]):
        raise ConfigError(f"must be {_RULES['max_length'][1]}", key="mlm.max_length")
    if not 0 < (_num(out["probability"]) or 0) < 1:
        raise ConfigError("must be a number in (0, 1)", key="mlm.probability")
    for i, name in enumerate(out["texts_from"]):
        _task(name, f"mlm.texts_from.{i}")
    return {**out, "weight": float(out["weight"]), "probability": float(out["probability"])}


def _path(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError("must be a path", key=key)
    p = Path(value).expanduser()
    try:
        return (p if p.is_absolute() else base / p).resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError on a symlink loop
        raise ConfigError(f"cannot resolve path {value!r}: {exc}", key=key) from None


def build_spec(raw: dict[str, Any], base: Path, path: Path | None) -> ExperimentSpec:
    """Validate keys and values (no file-system checks) and build the spec."""
    check_keys(raw, TOP_KEYS, "")
    check_shapes(raw)
    name = raw.get("name") or (path.stem if path else None)
    if not isinstance(name, str):
        raise ConfigError("experiment needs a name", key="name")
    if not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ConfigError(
            f"bad experiment name {name!r}", key="name", hint="no slashes: it names a directory"
        )
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
        raise ConfigError("seeds must be a non-empty list of integers", key="seeds")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds are repeated", key="seeds")
    inter = raw.get("intermediate", ["none"])
    if not isinstance(inter, list) or not inter:
        raise ConfigError("intermediate must be a non-empty list of options", key="intermediate")
    options = tuple(parse_option(e, f"intermediate.{i}") for i, e in enumerate(inter))
    labels = [o.label for o in options]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise ConfigError(f"option {label} listed twice", key=f"intermediate.{i}")
    targets = _targets(raw.get("targets"), options)
    overrides = dict(raw.get("overrides") or {})
    for task in overrides:
        _task(task, f"overrides.{task}")
    all_tasks = list(dict.fromkeys([t for o in options for t in o.tasks] + list(targets)))
    output_dir = _path(base, raw.get("output_dir", f"runs/{name}"), "output_dir")
    data_dir = raw.get("data_dir")
    cache_dir = _path(base, raw["cache_dir"], "cache_dir") if raw.get("cache_dir") else None
    if cache_dir is not None and not cache_dir.is_relative_to(output_dir):
        # xstilts writes only inside the experiment directory (output_dir), wherever that is.
        raise ConfigError(
            f"cache_dir {cache_dir} is outside output_dir {output_dir}", key="cache_dir",
            hint="use a directory inside output_dir (or leave cache_dir out: output_dir/stages)",
        )  # fmt: skip
    keep = raw.get("keep_heads", False)
    if not isinstance(keep, bool):
        raise ConfigError("must be true or false", key="keep_heads")
    return ExperimentSpec(
        name=name,
        data_dir=_path(base, data_dir, "data_dir") if data_dir else default_data_dir().resolve(),
        output_dir=output_dir,
        cache_dir=cache_dir or output_dir / "stages",
        encoder=_encoder(raw.get("encoder", {"name": "xlm-roberta-large"}), all_tasks, base),
        seeds=tuple(seeds),
        options=options,
        targets=targets,
        train=check_train_values(raw.get("train") or {}, "train"),
        overrides={t: check_train_values(v, f"overrides.{t}") for t, v in overrides.items()},
        evaluation=_evaluation(raw.get("evaluation"), targets),
        keep_heads=keep,
        mlm=_mlm(raw.get("mlm")),
        description=str(raw.get("description") or ""),
        source=raw,
        path=path,
    )
