"""Validation of an experiment mapping: keys, values, tasks, chains and data files.

Every check raises ONE :class:`ConfigError` whose ``key`` is the dotted path of the offending
value (the same path a ``key.path=value`` override would use), e.g. ``intermediate.2.1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xstilts import settings as S
from xstilts.errors import ConfigError
from xstilts.pipelines.encoder_checks import check_tiny, check_trim
from xstilts.pipelines.experiment_spec import (
    TOP_KEYS,
    ExperimentSpec,
    IntermediateOption,
    Step,
    check_keys,
    default_data_dir,
)
from xstilts.pipelines.primary import parse_report
from xstilts.pipelines.shapes import check_shapes
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec

# The keys a train/overrides/mixture-train mapping may hold: both sections of the schema.
FEATURIZE_KEYS = S.keys(S.FeaturizeSettings)
TRAIN_KEYS = S.keys(S.TrainSettings)
TINY_KEYS = S.keys(S.TinyEncoderSettings)
ENCODER_KEYS = S.keys(S.EncoderSettings)


def _section_of(key: str) -> type:
    return S.FeaturizeSettings if key in FEATURIZE_KEYS else S.TrainSettings


def check_train_values(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a ``train``/``overrides`` mapping; returns it with numeric strings as floats.

    Raises:
        ConfigError: unknown key (did you mean) or a bad value, at ``where.key``.
    """
    if not isinstance(values, Mapping):
        raise ConfigError("must be a mapping of training settings", key=where)
    check_keys(values, [*TRAIN_KEYS, *FEATURIZE_KEYS], where)
    out = dict(values)
    for key, value in values.items():
        if S.non_finite(value):
            raise ConfigError(f"bad value {value!r}: not a finite number", key=f"{where}.{key}")
        wanted = S.problem(_section_of(key), key, value)
        if wanted is not None:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ConfigError(f"bad value {shown}: must be {wanted}", key=f"{where}.{key}")
        out[key] = S.as_value(_section_of(key), key, value)
    check_embedding_update(out, f"{where}.embedding_update")
    return out


def check_embedding_update(train: Mapping[str, Any], key: str) -> None:
    """Refuse ``embedding_update: sparse`` where ``freeze`` freezes the embeddings.

    Checked on each written mapping and on each resolved stage (the two may come from different
    layers: ``train.freeze`` and ``overrides.<task>.embedding_update``).

    Raises:
        ConfigError: at ``key``.
    """
    if S.sparse_frozen_embeddings(train):
        raise ConfigError(
            "embedding_update: sparse updates rows of the word embeddings, which "
            "freeze: [embeddings] keeps fixed (there is nothing to update)", key=key,
            hint="remove embedding_update, or embeddings from freeze",
        )  # fmt: skip


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
    if not format_of(spec).trainable:
        raise ConfigError(
            f"{spec.type.value} task {spec.name!r} cannot be an intermediate task "
            "(it has no training)",
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
    given = {k: entry[k] for k in ("sampling", "temperature") if k in entry}
    if S.problem(S.MixtureSettings, "sampling", given.get("sampling")) and "sampling" in given:
        raise ConfigError(
            f"unknown sampling {given['sampling']!r}", key=f"{key}.sampling",
            hint=f"one of {S.SAMPLING}",
        )  # fmt: skip
    if "temperature" in given and S.problem(S.MixtureSettings, "temperature", given["temperature"]):
        raise ConfigError("temperature must be a number > 0", key=f"{key}.temperature")
    if given.get("sampling") == "temperature":
        given.setdefault("temperature", S.TEMPERATURE_SAMPLING_DEFAULT)
    mixture = S.resolve(S.MixtureSettings, step=given)
    train = check_train_values(entry.get("train") or {}, f"{key}.train")
    return Step(names, mixture, train)


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
    own = _encoder_settings(raw)
    if "name" in raw:
        check_keys(raw, ["name", "revision", *ENCODER_KEYS], "encoder")
        out = {**raw, **own}
        name = str(out["name"])
        # A local checkpoint written as ./x or ../x is relative to the YAML file, like data_dir.
        if base is not None and name.startswith(("./", "../", "~")):
            out["name"] = str(_path(base, name, "encoder.name"))
        check_trim(out)
        return out
    check_keys(raw, ["tiny", "tokenizer", *ENCODER_KEYS], "encoder")
    check_trim({**raw, **own})  # before anything is trained: a tiny encoder cannot be trimmed
    tiny = dict(raw["tiny"] or {})
    check_keys(tiny, TINY_KEYS, "encoder.tiny")
    # Values as written (checked below by check_tiny): tiny settings keep their YAML types.
    tiny = {**S.resolve(S.TinyEncoderSettings), **tiny}
    tok = dict(raw.get("tokenizer") or {})
    check_keys(tok, S.keys(S.TokenizerSettings), "encoder.tokenizer")
    derived = {"train_on": all_tasks, "vocab_size": tiny["vocab_size"]}  # schema default None
    tok = {**S.resolve(S.TokenizerSettings), **derived, **tok}
    for i, name in enumerate(tok["train_on"]):
        _task(name, f"encoder.tokenizer.train_on.{i}")
    check_tiny(tiny, tok)
    return {"tiny": tiny, "tokenizer": tok, **own}


def _encoder_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~xstilts.settings.EncoderSettings` of ``encoder:``, checked and resolved."""
    given = {k: raw[k] for k in ENCODER_KEYS if k in raw}
    for key, value in given.items():
        if wanted := S.problem(S.EncoderSettings, key, value):
            raise ConfigError(f"bad value {value!r}: must be {wanted}", key=f"encoder.{key}")
    return S.resolve(S.EncoderSettings, experiment=given)  # sparse: only what is set


def _evaluation(raw: Any, targets: tuple[str, ...]) -> dict[str, Any]:
    raw = dict(raw or {})
    keys = ["max_eval_examples", "max_tokens", "languages", "retrieval", "precision"]
    check_keys(raw, keys, "evaluation")
    for name in S.keys(S.EvaluationSettings):
        if name in raw and (wanted := S.problem(S.EvaluationSettings, name, raw[name])):
            raise ConfigError(f"must be {wanted}", key=f"evaluation.{name}")
    resolved = S.resolve(S.EvaluationSettings, experiment=raw)
    retrieval = dict(raw.get("retrieval") or {})
    check_keys(retrieval, S.keys(S.RetrievalSettings), "evaluation.retrieval")
    for name in S.keys(S.RetrievalSettings):
        if name in retrieval and (wanted := S.problem(S.RetrievalSettings, name, retrieval[name])):
            raise ConfigError(f"must be {wanted}", key=f"evaluation.retrieval.{name}")
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
        **resolved, "languages": languages,
        "retrieval": S.resolve(S.RetrievalSettings, experiment=retrieval),
    }  # fmt: skip


def _mlm(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    check_keys(raw, S.keys(S.MlmSettings), "mlm")
    for name in ("weight", "max_length", "probability"):
        if name in raw and (wanted := S.problem(S.MlmSettings, name, raw[name])):
            raise ConfigError(f"must be {wanted}", key=f"mlm.{name}")
    out = S.resolve(S.MlmSettings, experiment=raw)
    out["texts_from"] = list(out["texts_from"])
    for i, name in enumerate(out["texts_from"]):
        _task(name, f"mlm.texts_from.{i}")
    return out


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
    if not isinstance(seeds, list) or not seeds or not all(S.is_int(s) for s in seeds):
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
        primary=parse_report(raw.get("report"), labels, targets),
        description=str(raw.get("description") or ""),
        source=raw,
        path=path,
    )
