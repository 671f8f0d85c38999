"""Settings that reach nothing: an error where they never can, a warning where this grid leaves
them unused (checked at plan time, before any stage trains)."""

from __future__ import annotations

from xstilts import settings as S
from xstilts.errors import ConfigError
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec

TRAIN_KEYS = S.keys(S.TrainSettings)


def keys_for(spec: TaskSpec) -> tuple[str, ...]:
    """The ``train``/``overrides`` keys that can reach ``spec``'s stages.

    Read from the schema and the task type, never from a list of types here: featurization
    settings apply to the types their field declares (``only=``, e.g. QA's window settings), and
    training settings to every type that trains (a retrieval task is evaluated, never trained).
    """
    featurize = S.keys(S.FeaturizeSettings, spec.type.value)
    return (*TRAIN_KEYS, *featurize) if format_of(spec).trainable else featurize


def _types_of(key: str) -> str:
    """The task types a featurization setting is declared for (``extractive_qa``)."""
    return ", ".join(S.field_of(S.FeaturizeSettings, key).metadata["only"])


def check_settings_use(exp: ExperimentSpec) -> list[str]:
    """Every setting written must reach a stage or the evaluation (no silent no-op).

    A setting that can never apply to its task is an error; one that only this grid leaves
    unused (the same YAML may serve other grids, narrowed by ``key=value`` overrides) is
    returned as a warning, shown by ``xstilts plan`` and ``run``.

    Raises:
        ConfigError: at the setting's key path, e.g. ``overrides.tatoeba.lr``.
    """
    steps = [(i, s) for i, o in enumerate(exp.options) for s in o.steps]
    targets = [t for t in exp.targets if format_of(get_task(t)).trainable]
    alone = {s.tasks[0] for _, s in steps if len(s.tasks) == 1} | set(targets)
    trained = {t for _, s in steps for t in s.tasks} | set(targets)
    reach = {key for t in trained for key in keys_for(get_task(t))}
    warnings: list[str] = []
    for task, values in exp.overrides.items():
        spec = get_task(task)
        allowed = keys_for(spec)
        for key in values:
            where = f"overrides.{task}.{key}"
            if key not in allowed and not format_of(spec).trainable:
                raise ConfigError(
                    f"{task} is a {spec.type.value} task: it is evaluated, never trained, so "
                    f"only {', '.join(allowed)} applies to it", key=where,
                    hint="remove it (pooling and layer are evaluation.retrieval settings)",
                )  # fmt: skip
            if key not in allowed:
                raise ConfigError(
                    f"{key} only applies to {_types_of(key)} tasks ({task} is {spec.type.value})",
                    key=where, hint="remove it",
                )  # fmt: skip
            if task not in trained and task not in exp.targets:
                warnings.append(f"{where}: {task} is neither trained nor evaluated here (unused)")
            elif key in TRAIN_KEYS and key not in S.PER_TASK_TRAIN and task not in alone:
                warnings.append(
                    f"{where}: {task} is only trained inside a mixture here, which takes its "
                    "training settings (all but its data caps) from train and the mixture's own "
                    "train (unused)"
                )
    for i, step in steps:
        step_keys = {key for t in step.tasks for key in keys_for(get_task(t))}
        for key in step.train:
            if key not in step_keys:
                raise ConfigError(
                    f"{key} only applies to {_types_of(key)} tasks; mixture {step.label} has none",
                    key=f"intermediate.{i}", hint=f"remove train.{key} from the mixture",
                )  # fmt: skip
    warnings += [f"train.{k}: no task this setting applies to is trained here (unused)"
                 for k in exp.train if k not in reach]  # fmt: skip
    if exp.mlm and not trained:
        warnings.append("mlm: nothing is trained here (unused)")
    if exp.keep_heads and not any(len(o.steps) + (1 if targets else 0) > 1 for o in exp.options):
        warnings.append("keep_heads: no trained stage here has a trained parent (unused)")
    evaluation = exp.source.get("evaluation") or {}
    # evaluation.retrieval (pooling, layer) is read only when an untrained target is evaluated.
    if evaluation.get("retrieval") and len(targets) == len(exp.targets):
        warnings.append("evaluation.retrieval: no retrieval target here (unused)")
    elif (evaluation.get("retrieval") or {}).get("max_sentences") is not None and not any(
        get_task(t).retrieval == "mining" for t in exp.targets
    ):
        warnings.append(
            "evaluation.retrieval.max_sentences: no mining target (BUCC) here; Tatoeba is capped "
            "by evaluation.max_eval_examples (unused)"
        )
    return warnings
