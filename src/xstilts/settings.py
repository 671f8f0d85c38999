"""The settings schema: every experiment setting's type, default and check, declared once.

Each dataclass below is one YAML section; each field is one setting, declared with
:func:`setting` (its default, the check a YAML value must pass and the words an error uses for
it). Nothing else in xstilts holds a default for these keys: the validator checks values against
these fields (:mod:`xstilts.pipelines.validate`), the planner resolves them with
:func:`resolve` into every :class:`~xstilts.pipelines.stage_spec.StageSpec`, and the runtime
objects (``TrainConfig``, ``FeaturizeConfig``) subclass or copy these dataclasses.

Resolution order, the one precedence rule (lowest first)::

    built-in (this module) < task defaults (catalog) < experiment ``train:``
        < ``overrides[task]`` < the chain step's own ``train:`` (a mixture entry)

This module sits at the bottom of the layers (stdlib and :mod:`xstilts.errors` only, no torch),
so every layer may read it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

Check = Callable[[Any], bool]
QA = "extractive_qa"  # tasks.spec.TaskType.EXTRACTIVE_QA (a lower layer cannot import it)
SEQUENCE_HEADS = ("classification", "multiple_choice")  # types whose head pools a sequence
HEAD_POOLING = ("cls", "mean")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
# train.freeze parts: embeddings, layer.N (0 = lowest), layers.A-B (inclusive); see expand_part.
FREEZE_HELP = "embeddings, layer.N (0 = lowest) or layers.A-B (A to B inclusive)"
_LAYER = re.compile(r"^layer\.(\d+)$")
_LAYERS = re.compile(r"^layers\.(\d+)-(\d+)$")
PRECISIONS = ("auto", "fp32", "bf16")
EMBEDDING_UPDATES = ("dense", "sparse")
SAMPLING = ("proportional", "temperature", "uniform")
# Training settings that belong to one task's data: inside a mixture each task keeps its own
# (``overrides.<task>``), while every other training setting is the stage's (one optimizer).
PER_TASK_TRAIN = ("max_train_examples", "max_dev_examples")


# ------------------------------------------------------------------ value checks


def expand_part(part: object) -> tuple[str, ...] | None:
    """One ``train.freeze`` entry -> the units it freezes, or ``None`` if it is not valid.

    ``"layers.0-2"`` -> ``("layer.0", "layer.1", "layer.2")``; ``"embeddings"`` -> itself.
    Freezing the embeddings and the lowest layers is Wu & Dredze's (2019) recipe for zero-shot
    transfer, and on CPU the cheapest speed-up: no backward pass runs below the lowest trained
    layer.
    """
    if not isinstance(part, str):
        return None
    if part == "embeddings":
        return (part,)
    if m := _LAYER.match(part):
        return (f"layer.{int(m.group(1))}",)
    if (m := _LAYERS.match(part)) and int(m.group(1)) <= int(m.group(2)):
        return tuple(f"layer.{i}" for i in range(int(m.group(1)), int(m.group(2)) + 1))
    return None


def valid_freeze(value: object) -> bool:
    """A list of valid ``train.freeze`` parts that freeze no unit twice."""
    if not isinstance(value, list):
        return False
    units: list[str] = []
    for part in value:
        expanded = expand_part(part)
        if expanded is None:
            return False
        units.extend(expanded)
    return len(set(units)) == len(units)


def freeze_units(parts: Any) -> list[str]:
    """Every unit ``parts`` freeze, in order (``embeddings`` / ``layer.N``); unknown ones kept."""
    units: list[str] = []
    for part in parts:
        units.extend(expand_part(part) or (part,))
    return units


def sparse_frozen_embeddings(train: Mapping[str, Any]) -> bool:
    """``embedding_update: sparse`` where ``freeze`` also freezes the embeddings (meaningless)."""
    frozen = "embeddings" in freeze_units(train.get("freeze") or [])
    return train.get("embedding_update") == "sparse" and frozen


def num(v: Any) -> float | None:
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


def non_finite(v: Any) -> bool:
    """``.inf``, ``.nan`` or a numeric string that overflows (``"1e400"``)."""
    if isinstance(v, str) and _FLOAT_TEXT.match(v.strip()):
        v = float(v)
    return isinstance(v, float) and not math.isfinite(v)


def is_int(v: Any) -> bool:
    """An integer that is not a bool (YAML ``true`` is an int to Python)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _positive(v: Any) -> bool:
    return (num(v) or 0) > 0


def _non_negative(v: Any) -> bool:
    return num(v) is not None and num(v) >= 0  # type: ignore[operator]


def _int_at_least(low: int) -> Check:
    return lambda v: is_int(v) and v >= low


def _optional_int(low: int) -> Check:
    return lambda v: v is None or (is_int(v) and v >= low)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


# ------------------------------------------------------------------ the field declaration


def setting(
    default: Any,
    check: Check | None,
    wanted: str,
    *,
    only: tuple[str, ...] = (),
    sparse: bool = False,
    number: bool = False,
) -> Any:
    """One schema field.

    Args:
        default: The built-in default (the only one in xstilts).
        check: True for a valid YAML value (``None``: checked with its section's other fields).
        wanted: What a valid value is, for the error message (``"a number > 0"``).
        only: Task types the setting applies to (empty: every type).
        sparse: Written into a resolved spec only when some layer sets it. These settings were
            added after stages were cached; leaving their defaults out keeps those stage ids.
        number: A float setting: YAML ints and numeric strings become floats.
    """
    meta = {"check": check, "wanted": wanted, "only": only, "sparse": sparse, "number": number}
    return field(default=default, metadata=meta)


@dataclass
class TrainSettings:  # not frozen: the runtime TrainConfig subclasses it and stays mutable
    """``train:`` (also ``overrides.<task>:`` and a mixture's ``train:``): how a stage trains."""

    lr: float = setting(1e-5, _positive, "a number > 0", number=True)
    weight_decay: float = setting(0.01, _non_negative, "a number >= 0", number=True)
    warmup_ratio: float = setting(
        0.1, lambda v: (x := num(v)) is not None and 0 <= x <= 1, "a number in [0, 1]", number=True
    )
    epochs: float = setting(2.0, _non_negative, "a number >= 0", number=True)
    max_steps: int | None = setting(None, _optional_int(1), "null or an integer >= 1")
    batch_size: int = setting(32, _int_at_least(1), "an integer >= 1")
    max_tokens: int | None = setting(None, _optional_int(1), "null or an integer >= 1")
    grad_accum: int = setting(1, _int_at_least(1), "an integer >= 1")
    max_grad_norm: float = setting(1.0, _positive, "a number > 0", number=True)
    eval_every: int | None = setting(None, _optional_int(1), "null or an integer >= 1")
    patience: int | None = setting(None, _optional_int(1), "null or an integer >= 1")
    max_train_examples: int | None = setting(None, _optional_int(1), "null or int >= 1")
    max_dev_examples: int | None = setting(None, _optional_int(1), "null or int >= 1")
    precision: str = setting("auto", lambda v: v in PRECISIONS, "one of auto, fp32, bf16")
    compile: bool = setting(False, _is_bool, "true or false")
    checkpoint_every: int | None = setting(None, _optional_int(1), "null or int >= 1", sparse=True)
    keep_checkpoints: int = setting(2, _int_at_least(1), "an integer >= 1", sparse=True)
    deterministic: bool = setting(False, _is_bool, "true or false", sparse=True)
    threads: int = setting(1, _int_at_least(1), "an integer >= 1")
    log_every: int = setting(10, _int_at_least(1), "an integer >= 1", sparse=True)
    freeze: tuple[str, ...] = setting(
        (),
        lambda v: valid_freeze(v),
        f"a list of parts to freeze, each frozen once: {FREEZE_HELP}",
        sparse=True,
    )
    # sparse: AdamW (LazyAdam-style) only on the word-table rows the step's tokens touched. The
    # dense step reads and writes all 250k x hidden rows every step for a batch's few hundred
    # tokens: about a third of an e5-small CPU step, nearly half of XLM-R Large's optimizer
    # memory traffic on GPU. Not numerically dense AdamW (an untouched row keeps its moments and
    # gets no weight decay; dense AdamW keeps moving it), hence a setting in the stage id.
    # See xstilts.training.sparse_rows.
    embedding_update: str = setting(
        "dense", lambda v: v in EMBEDDING_UPDATES, "dense or sparse", sparse=True
    )


@dataclass(frozen=True)
class FeaturizeSettings:
    """Per-task featurization, written in the same sections as :class:`TrainSettings`."""

    max_length: int = setting(256, _int_at_least(8), "an integer >= 8")
    stride: int = setting(128, _int_at_least(0), "an integer >= 0", only=(QA,))
    max_query_length: int = setting(64, _int_at_least(1), "an integer >= 1", only=(QA,))
    n_best: int = setting(20, _int_at_least(1), "an integer >= 1", only=(QA,))
    max_answer_length: int = setting(30, _int_at_least(1), "an integer >= 1", only=(QA,))
    # How a classification / multiple-choice head pools each sequence: its <s> token (XLM-R)
    # or the mean of its tokens, specials included (e5's native pooling). Sparse: stages
    # cached before it existed pooled <s> and keep their ids.
    head_pooling: str = setting(
        "cls", lambda v: v in HEAD_POOLING, "cls or mean", only=SEQUENCE_HEADS, sparse=True
    )


@dataclass(frozen=True)
class RetrievalSettings:
    """``evaluation.retrieval:``: how BUCC/Tatoeba embed sentences."""

    pooling: str = setting("mean", lambda v: v in ("mean", "cls"), "mean or cls")
    layer: int | None = setting(None, lambda v: v is None or is_int(v), "null or an integer")
    # Mining (BUCC) only: sentences kept per side, every gold pair's included (None = all).
    max_sentences: int | None = setting(None, _optional_int(1), "null or an integer >= 1")


@dataclass(frozen=True)
class EvaluationSettings:
    """``evaluation:`` (``languages`` and ``retrieval`` are checked by the validator)."""

    max_eval_examples: int | None = setting(None, _optional_int(1), "null or an integer >= 1")
    max_tokens: int = setting(16384, _int_at_least(16), "an integer >= 16")
    precision: str = setting("auto", lambda v: v in PRECISIONS, "auto, fp32 or bf16")


@dataclass(frozen=True)
class MixtureSettings:
    """A mixture entry's ``sampling`` and ``temperature``."""

    sampling: str = setting("proportional", lambda v: v in SAMPLING, f"one of {SAMPLING}")
    temperature: float = setting(1.0, _positive, "a number > 0", number=True)


# Temperature sampling without a temperature means T=2 (T=1 would be proportional sampling).
TEMPERATURE_SAMPLING_DEFAULT = 2.0


@dataclass(frozen=True)
class MlmSettings:
    """``mlm:``: the masked-language-model auxiliary loss (off when the section is absent)."""

    weight: float = setting(1.0, _positive, "a number > 0", number=True)
    probability: float = setting(
        0.15, lambda v: 0 < (num(v) or 0) < 1, "a number in (0, 1)", number=True
    )
    texts_from: tuple[str, ...] = setting((), None, "a list of task names")
    max_length: int = setting(128, _int_at_least(8), "an integer >= 8", sparse=True)


@dataclass(frozen=True)
class EncoderSettings:
    """``encoder:`` settings beside ``name``/``revision`` or ``tiny`` (the validator checks them).

    ``trim_vocab``: materialise the base encoder with its vocabulary trimmed to the pieces the
    experiment's data tokenises to (:mod:`xstilts.pipelines.trim_base`). Sparse: ids of stages
    cached before it existed stay the same.
    """

    trim_vocab: bool = setting(False, _is_bool, "true or false", sparse=True)


@dataclass(frozen=True)
class TinyEncoderSettings:
    """``encoder.tiny:``: a small random XLM-R (checked as a whole by ``encoder_checks``).

    The sparse fields' defaults are the builder's (``models.encoder.TINY_DEFAULTS``).
    """

    vocab_size: int = setting(4000, None, "an integer >= 1")
    hidden_size: int = setting(64, None, "an integer >= 1")
    num_hidden_layers: int = setting(2, None, "an integer >= 1")
    num_attention_heads: int = setting(2, None, "an integer >= 1")
    intermediate_size: int = setting(128, None, "an integer >= 1")
    seed: int = setting(0, None, "an integer")
    max_position_embeddings: int = setting(514, None, "an integer > 2", sparse=True)
    type_vocab_size: int = setting(1, None, "an integer >= 1", sparse=True)
    hidden_dropout_prob: float = setting(0.1, None, "a number in [0, 1)", sparse=True)
    attention_probs_dropout_prob: float = setting(0.1, None, "a number in [0, 1)", sparse=True)
    hidden_act: str = setting("gelu", None, "an activation name", sparse=True)
    layer_norm_eps: float = setting(1e-5, None, "a number > 0", sparse=True)


@dataclass(frozen=True)
class TokenizerSettings:
    """``encoder.tokenizer:`` of a tiny encoder.

    ``train_on`` defaults to every task of the experiment and ``vocab_size`` to the tiny
    encoder's (``None`` here: derived by the validator, which knows both).
    """

    train_on: tuple[str, ...] | None = setting(None, None, "a list of task names")
    max_lines: int = setting(2000, None, "an integer >= 1")
    vocab_size: int | None = setting(None, None, "an integer >= 1")


# ------------------------------------------------------------------ reading the schema


def keys(schema: type, task_type: str | None = None) -> tuple[str, ...]:
    """The setting names of ``schema`` (only those that apply to ``task_type``, if given)."""
    return tuple(
        f.name
        for f in fields(schema)
        if task_type is None or not f.metadata["only"] or task_type in f.metadata["only"]
    )


def field_of(schema: type, name: str) -> Field[Any]:
    """The declaration of setting ``name`` (KeyError for an unknown name)."""
    return schema.__dataclass_fields__[name]  # type: ignore[attr-defined]


def default(schema: type, name: str) -> Any:
    """The built-in default of ``name``, read at call time (so a test can change it)."""
    f = field_of(schema, name)
    return None if f.default is MISSING else f.default


def defaults(schema: type) -> dict[str, Any]:
    """Every built-in default of ``schema`` (sparse fields included)."""
    return {f.name: default(schema, f.name) for f in fields(schema)}


def problem(schema: type, name: str, value: Any) -> str | None:
    """``None`` when ``value`` passes the check of setting ``name``, else what it must be."""
    f = field_of(schema, name)
    check = f.metadata["check"]
    if check is None or check(value):
        return None
    return str(f.metadata["wanted"])


def as_value(schema: type, name: str, value: Any) -> Any:
    """A checked YAML value in its runtime type (a float setting's ``"1e-5"`` -> ``1e-05``)."""
    if field_of(schema, name).metadata["number"] and value is not None:
        parsed = num(value) if isinstance(value, str) else value
        assert parsed is not None  # a checked value: a numeric string always parses
        return float(parsed)
    return value


def task_setting(train: Mapping[str, Any], task: str, name: str) -> Any:
    """A :data:`PER_TASK_TRAIN` setting of ``task`` in a resolved ``StageSpec.train``.

    A mixture records a task's own value under ``train["tasks"][task]`` where it differs from
    the stage's; otherwise (and in single-task stages) the stage's value applies.
    """
    own = (train.get("tasks") or {}).get(task) or {}
    return own[name] if name in own else train.get(name)


def resolve(
    schema: type,
    *,
    task: Mapping[str, Any] | None = None,
    experiment: Mapping[str, Any] | None = None,
    override: Mapping[str, Any] | None = None,
    step: Mapping[str, Any] | None = None,
    task_type: str | None = None,
) -> dict[str, Any]:
    """The resolved settings of one section for one task: the one place defaults are applied.

    Precedence, lowest first: built-in < ``task`` (catalog defaults) < ``experiment``
    (``train:``) < ``override`` (``overrides[task]``) < ``step`` (a mixture's ``train:``).
    Keys of other sections in a layer are ignored; a setting that does not apply to
    ``task_type`` is left out; a sparse setting appears only when a layer sets it.

    Returns:
        ``{name: value}``, float settings as floats.
    """
    layers = [layer or {} for layer in (task, experiment, override, step)]
    out: dict[str, Any] = {}
    for name in keys(schema, task_type):
        given = [layer[name] for layer in layers if name in layer]
        if given:
            out[name] = as_value(schema, name, given[-1])
        elif not field_of(schema, name).metadata["sparse"]:
            out[name] = as_value(schema, name, default(schema, name))
    return out
