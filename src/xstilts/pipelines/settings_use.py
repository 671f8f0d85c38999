"""Settings that reach nothing: an error where they never can, a warning where this grid leaves
them unused (checked at plan time, before any stage trains)."""

from __future__ import annotations

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.settings import (
    PER_TASK_TRAIN,
    SEQUENCE_HEADS,
    FeaturizeSettings,
    TrainSettings,
    field_of,
    keys,
    only_for,
)
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskType

# Read from the schema: only QA reads the window/answer settings; retrieval tasks read only the
# featurization settings every type shares (max_length).
QA_ONLY = only_for(FeaturizeSettings, TaskType.EXTRACTIVE_QA.value)
RETRIEVAL_KEYS = keys(FeaturizeSettings, TaskType.RETRIEVAL.value)
TRAIN_KEYS = keys(TrainSettings)
# Only classification / multiple-choice heads pool a sequence (head_pooling).
SEQUENCE_ONLY = tuple(
    k
    for k in keys(FeaturizeSettings)
    if field_of(FeaturizeSettings, k).metadata["only"] == SEQUENCE_HEADS
)


def check_settings_use(exp: ExperimentSpec) -> list[str]:
    """Every setting written must reach a stage or the evaluation (no silent no-op).

    A setting that can never apply to its task is an error; one that only this grid leaves
    unused (the same YAML may serve other grids, narrowed by ``key=value`` overrides) is
    returned as a warning, shown by ``xstilts plan`` and ``run``.

    Raises:
        ConfigError: at the setting's key path, e.g. ``overrides.tatoeba.lr``.
    """
    steps = [(i, s) for i, o in enumerate(exp.options) for s in o.steps]
    targets = [t for t in exp.targets if get_task(t).type is not TaskType.RETRIEVAL]
    alone = {s.tasks[0] for _, s in steps if len(s.tasks) == 1} | set(targets)
    trained = {t for _, s in steps for t in s.tasks} | set(targets)
    qa = any(get_task(t).type is TaskType.EXTRACTIVE_QA for t in trained)
    warnings: list[str] = []
    for task, values in exp.overrides.items():
        spec = get_task(task)
        for key in values:
            where = f"overrides.{task}.{key}"
            if spec.type is TaskType.RETRIEVAL and key not in RETRIEVAL_KEYS:
                raise ConfigError(
                    f"{task} is a retrieval task: it is evaluated, never trained, so only "
                    f"{', '.join(RETRIEVAL_KEYS)} applies to it", key=where,
                    hint="remove it (pooling and layer are evaluation.retrieval settings)",
                )  # fmt: skip
            if key in QA_ONLY and spec.type is not TaskType.EXTRACTIVE_QA:
                raise ConfigError(
                    f"{key} only applies to extractive-QA tasks ({task} is {spec.type.value})",
                    key=where, hint="remove it",
                )  # fmt: skip
            if key in SEQUENCE_ONLY and spec.type.value not in SEQUENCE_HEADS:
                raise ConfigError(
                    f"{key} only applies to classification and multiple-choice tasks "
                    f"({task} is {spec.type.value})", key=where, hint="remove it",
                )  # fmt: skip
            if task not in trained and task not in exp.targets:
                warnings.append(f"{where}: {task} is neither trained nor evaluated here (unused)")
            elif key in TRAIN_KEYS and key not in PER_TASK_TRAIN and task not in alone:
                warnings.append(
                    f"{where}: {task} is only trained inside a mixture here, which takes its "
                    "training settings (all but its data caps) from train and the mixture's own "
                    "train (unused)"
                )
    for i, step in steps:
        has_qa = any(get_task(t).type is TaskType.EXTRACTIVE_QA for t in step.tasks)
        for key in step.train:
            if key in QA_ONLY and not has_qa:
                raise ConfigError(
                    f"{key} only applies to extractive-QA tasks; mixture {step.label} has none",
                    key=f"intermediate.{i}", hint=f"remove train.{key} from the mixture",
                )  # fmt: skip
    pooled = any(get_task(t).type.value in SEQUENCE_HEADS for t in trained)
    unused = list(exp.train) if not trained else [k for k in exp.train if k in QA_ONLY and not qa]
    unused += [k for k in exp.train if k in SEQUENCE_ONLY and trained and not pooled]
    warnings += [f"train.{k}: no task this setting applies to is trained here (unused)"
                 for k in unused]  # fmt: skip
    if exp.mlm and not trained:
        warnings.append("mlm: nothing is trained here (unused)")
    if exp.keep_heads and not any(len(o.steps) + (1 if targets else 0) > 1 for o in exp.options):
        warnings.append("keep_heads: no trained stage here has a trained parent (unused)")
    evaluation = exp.source.get("evaluation") or {}
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
