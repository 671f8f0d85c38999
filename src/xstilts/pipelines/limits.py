"""Featurization limits checked at plan time: QA stride vs window room, max_length vs positions.

Both used to surface only when a stage featurized its data: a QA stride that leaves no new
context per window fails on the first long question (for an evaluation set: after training),
and a ``max_length`` beyond the encoder's position table fails inside the forward pass. Each is
reported here with the YAML key that set the offending value (``overrides.squad.stride``,
``train.max_length``), resolved exactly as the stages resolve it
(:func:`xstilts.pipelines.plan.featurize_settings`).
"""

from __future__ import annotations

from xstilts.errors import ConfigError
from xstilts.pipelines.encoder_checks import position_limit
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.pipelines.plan import featurize_settings

# XLM-R's pair template "<s> question </s></s> context </s>" adds 4 tokens to a window.
PAIR_SPECIAL_TOKENS = 4


def setting_key(exp: ExperimentSpec, task: str, name: str) -> str | None:
    """The YAML key that set ``name`` for ``task`` (``None``: a built-in or task default)."""
    if name in exp.overrides.get(task, {}):
        return f"overrides.{task}.{name}"
    if name in exp.train:
        return f"train.{name}"
    return None


def _tasks(exp: ExperimentSpec) -> list[str]:
    return list(dict.fromkeys([t for o in exp.options for t in o.tasks] + list(exp.targets)))


def _check_qa_window(exp: ExperimentSpec, task: str, values: dict[str, int]) -> None:
    """The longest question (``max_query_length``) must leave more context than the stride."""
    length, query, stride = values["max_length"], values["max_query_length"], values["stride"]
    room = length - query - PAIR_SPECIAL_TOKENS
    if stride < room:
        return
    # Blame what the user wrote: the stride first, then the window, then the question cap.
    keys = [setting_key(exp, task, k) for k in ("stride", "max_length", "max_query_length")]
    key = next((k for k in keys if k), f"overrides.{task}.stride")
    raise ConfigError(
        f"{task}: stride {stride} must be smaller than the context room of a window, "
        f"max_length {length} - max_query_length {query} - {PAIR_SPECIAL_TOKENS} special tokens "
        f"= {room} (a question of max_query_length tokens would leave no new context)",
        key=key,
        hint=f"raise max_length above {query + stride + PAIR_SPECIAL_TOKENS}, lower stride "
        f"below {max(room, 0)}, or lower max_query_length below "
        f"{max(length - stride - PAIR_SPECIAL_TOKENS, 0)}",
    )


def check_limits(exp: ExperimentSpec) -> None:
    """Raise one ConfigError for a featurization setting no stage could use.

    Raises:
        ConfigError: a QA stride >= the window's context room, or a ``max_length`` (task or
            ``mlm``) longer than the encoder's position table; keyed by the setting's YAML path.
    """
    limit = position_limit(exp.encoder)
    for task in _tasks(exp):
        values = featurize_settings(exp, task)
        # The window settings are resolved only for the types they apply to (the schema's
        # ``only=``), so their presence says the window check applies.
        if {"stride", "max_query_length"} <= values.keys():
            _check_qa_window(exp, task, values)
        if limit is not None and values["max_length"] > limit[0]:
            key = setting_key(exp, task, "max_length") or limit[2]
            raise ConfigError(
                f"{task}: max_length {values['max_length']} is longer than the encoder's "
                f"position table allows ({limit[0]} tokens, from {limit[1]})",
                key=key,
                hint=f"use max_length <= {limit[0]} (or an encoder with more positions)",
            )
    mlm_length = exp.mlm.get("max_length") if exp.mlm else None
    if limit is not None and isinstance(mlm_length, int) and mlm_length > limit[0]:
        raise ConfigError(
            f"mlm max_length {mlm_length} is longer than the encoder's position table allows "
            f"({limit[0]} tokens, from {limit[1]})",
            key="mlm.max_length",
        )
