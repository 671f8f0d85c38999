"""Run one stage (base or training) into its directory, atomically; evaluate a finished stage.

A stage directory appears only complete (:mod:`xstilts.pipelines.locking`): under a per-stage
lock, training checkpoints into ``<stages_root>/.partial-<id>/checkpoints``, the stage is
assembled in ``.partial-<id>/final`` (``COMPLETE`` last), recorded in the results store, and only
then renamed to ``<id>``. A crash leaves a resumable ``.partial-*``, never a half-written stage.

Contents: ``spec.json``, ``encoder.safetensors``, ``encoder_config.json``, ``heads.safetensors``,
``heads.json``, ``tokenizer/``, ``trainer_state.json``, ``metrics.json``, ``COMPLETE``; after
evaluation also ``eval/<task>-<evaluation key>.json`` (scores and the identity they were computed
under: see :func:`evaluate_stage`), ``examples/`` and ``predictions/``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from xstilts.errors import CheckpointError, ConfigError
from xstilts.fileio import storage_errors
from xstilts.fileio import write_json as _write_json
from xstilts.models import builtin, model_io
from xstilts.models.encoder import load_encoder
from xstilts.models.model import XstiltsModel
from xstilts.models.tokenizer import load_tokenizer, train_tokenizer
from xstilts.pipelines import integrity, stage_eval, trim_base
from xstilts.pipelines.locking import StageLock, partial_dir, publish
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.settings import task_setting
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.formats import FeaturizeConfig, get_format
from xstilts.tasks.spec import TaskSpec
from xstilts.tasks.texts import task_texts
from xstilts.training import loop, movement
from xstilts.training.checkpointing import kill_hook
from xstilts.training.evaluate import EvalResults, EvalSettings
from xstilts.training.mlm import build_mlm_objective

COMPLETE = "COMPLETE"
RETRIEVAL_HEAD = stage_eval.RETRIEVAL_HEAD
_FEATURIZE_KEYS = {f.name for f in dataclasses.fields(FeaturizeConfig)}


def is_complete(stage_dir: Path) -> bool:
    """True when ``stage_dir`` holds a finished stage (its ``COMPLETE`` marker exists)."""
    return (Path(stage_dir) / COMPLETE).is_file()


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_stage(
    spec: StageSpec,
    stage_dir: Path,
    data_dir: Path,
    parent_dir: Path | None,
    *,
    device: torch.device | None = None,
    progress: Callable[[loop.Progress], None] | None = None,
    on_saved: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Build, train (kind ``"train"``, resuming from a checkpoint) and save one stage, atomically.

    Args:
        spec: The resolved stage; ``stage_dir.name`` must equal ``spec.stage_id``.
        stage_dir: Final directory (``<stages_root>/<stage_id>``).
        data_dir: Shared data root (``xtreme/`` and ``english/``).
        parent_dir: The parent stage's directory (``None`` for base stages).
        device: Training device (default: CUDA if available).
        progress: Optional per-step callback passed to the training loop.
        on_saved: Called with the metrics once every file is written and before the stage
            is published (the executor records the stage in the results store here).

    Returns:
        The stage's metrics (also written as ``metrics.json``).

    Raises:
        CheckpointError: wrong directory name, an incomplete or corrupt parent, another
            process running the same stage, or a storage fault (full disk, read-only folder).
    """
    stage_dir = Path(stage_dir)
    if spec.kind not in ("base", "train"):
        raise ConfigError(f"unknown stage kind {spec.kind!r} (base or train)", key="kind")
    if stage_dir.name != spec.stage_id:
        raise CheckpointError(
            f"stage dir name {stage_dir.name!r} != stage id {spec.stage_id!r}", file=stage_dir
        )
    if spec.kind != "base" and (parent_dir is None or not is_complete(parent_dir)):
        raise CheckpointError(
            f"parent stage of {spec.label} is missing or incomplete", file=parent_dir
        )
    with StageLock(stage_dir):
        if is_complete(stage_dir):  # another process finished it while we waited
            return json.loads((stage_dir / "metrics.json").read_text())
        work = partial_dir(stage_dir)
        final = work / "final"
        if is_complete(final) and integrity.is_intact(final):  # saved, killed before publishing
            metrics = json.loads((final / "metrics.json").read_text())
        else:
            shutil.rmtree(final, ignore_errors=True)
            with storage_errors(final):  # tokenizer files, checkpoints: not via atomic_write
                final.mkdir(parents=True)
                metrics = _build_and_train(spec, final, Path(data_dir), parent_dir,
                                           device or default_device(), progress)  # fmt: skip
            integrity.write_manifest(final, spec.stage_id, spec.label)  # COMPLETE, with hashes
        kill_hook("save:store")
        if on_saved is not None:
            on_saved(metrics)
        kill_hook("save:publish")
        publish(final, stage_dir)
    return metrics


def _build_and_train(
    spec: StageSpec,
    out: Path,
    data_dir: Path,
    parent_dir: Path | None,
    device: torch.device,
    progress: Callable[[loop.Progress], None] | None,
) -> dict[str, Any]:
    """Everything inside the temp dir: model, training, files."""
    torch.manual_seed(spec.seed)
    trim = None
    if spec.kind == "base":
        model, tokenizer = _build_base(spec, data_dir)
        if trim_base.is_trimmed(spec):  # checked: every text keeps its ids (trim_base doc)
            tokenizer, trim = trim_base.trim_base(spec, model, tokenizer, data_dir)
        heads_info: dict[str, dict[str, Any]] = {}
    else:
        assert parent_dir is not None
        if trim_base.is_trimmed(spec):  # only files the vocabulary was trimmed to
            trim_base.check_reads(Path(parent_dir), data_dir, trim_base.train_reads(spec))
        model, tokenizer, heads_info = load_stage_model(
            Path(parent_dir), keep_heads=spec.keep_heads
        )
    result = None
    if spec.kind == "train":
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1
        tasks = [
            _prepare_task(spec, name, data_dir, tokenizer, model, heads_info) for name in spec.tasks
        ]
        cfg = loop.TrainConfig.from_stage(spec.train, spec.mixture, spec.seed, padding_idx=pad)
        aux = build_mlm_objective(spec, data_dir, tokenizer, model) if spec.mlm else None
        ckpt_dir = out.parent / "checkpoints"
        result = loop.train(model, tasks, cfg, device=device, progress=progress, auxiliary=aux,
                            checkpoint_dir=ckpt_dir)  # fmt: skip
        if aux is not None:
            model.drop_heads(list(heads_info))
        state = {
            "config": dataclasses.asdict(cfg), "steps": result.steps, "curve": result.curve,
            "best_step": result.best_step, "stopped_early": result.stopped_early,
        }  # fmt: skip
    else:
        state = {"config": None, "steps": 0, "curve": []}
    model.to("cpu")
    model_io.save_model(model, out, heads_info)
    kill_hook("save:weights")
    tokenizer.save_pretrained(str(out / "tokenizer"))
    metrics = _metrics(result)
    if trim is not None:
        _write_json(out / trim_base.TRIM_RECORD, trim)
        metrics["vocabulary_trim"] = trim_base.summary(trim)
    if spec.role == "intermediate" and parent_dir is not None:  # did it move the encoder?
        base = movement.base_stage_dir(Path(parent_dir))
        metrics["encoder_movement"] = movement.encoder_movement(model.encoder, base)
    _write_json(out / "spec.json", {"stage_id": spec.stage_id, **spec.to_dict()})
    _write_json(out / "trainer_state.json", state)
    _write_json(out / "metrics.json", metrics)
    return metrics


def _metrics(result: loop.TrainResult | None) -> dict[str, Any]:
    """The stage's ``metrics.json`` (zeros for a base stage)."""
    if result is None:
        result = loop.TrainResult(0, None, None, [], 0, 0, 0.0, 0, {})
    d = result.to_dict()
    return {
        "train_examples": d["train_examples"],
        "examples_passes": d["examples_passes"],
        "epochs": d["epochs"],
        "steps": d["steps"],
        "train_seconds": d["seconds"],
        "real_tokens": d["real_tokens"],
        "processed_tokens": d["processed_tokens"],
        "padding_efficiency": d["padding_efficiency"],
        "tokens_per_second": d["tokens_per_second"],
        "attention": d["attention"],
        "optimizer": d["optimizer"],
        "dev_curve": d["curve"],
        "best_dev_metric": d["best_metric"],
        "best_step": d["best_step"],
        "stopped_early": d["stopped_early"],
        # Set by the executor (training.threads): recorded because it decides the last bits.
        "threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------ model building


def _build_base(spec: StageSpec, data_dir: Path) -> tuple[XstiltsModel, PreTrainedTokenizerBase]:
    """A pretrained encoder + its tokenizer, or a tiny random one + a freshly trained tokenizer."""
    enc = dict(spec.encoder)
    if "tiny" not in enc:
        # A built-in encoder's cached conversion holds its tokenizer too.
        return XstiltsModel(load_encoder(enc), {}), load_tokenizer(builtin.resolve(enc["name"]))
    tok_cfg = dict(enc.get("tokenizer") or {})
    if not tok_cfg.get("train_on"):
        raise ConfigError(
            "a tiny encoder needs tokenizer.train_on (task names)", key="encoder.tokenizer"
        )
    texts = task_texts(tok_cfg["train_on"], data_dir, int(tok_cfg.get("max_lines", 2000)))
    tokenizer = train_tokenizer(texts, int(tok_cfg.get("vocab_size", 4000)))
    tiny = dict(enc["tiny"])
    # A small corpus can give fewer pieces than asked for, never more: size the embeddings to fit.
    tiny["vocab_size"] = max(int(tiny.get("vocab_size", 0)), len(tokenizer))
    return XstiltsModel(load_encoder({"tiny": tiny}), {}), tokenizer


def load_stage_model(
    stage_dir: Path, *, keep_heads: bool = True
) -> tuple[XstiltsModel, PreTrainedTokenizerBase, dict[str, dict[str, Any]]]:
    """Encoder, tokenizer and (optionally) heads of a finished stage.

    Returns:
        ``(model, tokenizer, heads_info)``; ``heads_info`` is empty when heads are dropped.

    Raises:
        CheckpointError: an incomplete stage, or a file that differs from its recorded sha256.
    """
    integrity.verify_stage(stage_dir)  # a parent or an evaluated stage is never used unverified
    tokenizer = load_tokenizer(stage_dir / "tokenizer")
    model = XstiltsModel(model_io.load_encoder_from_dir(stage_dir), {})
    info: dict[str, dict[str, Any]] = {}
    if keep_heads:
        info = model_io.load_heads_info(stage_dir)
        # The parent's heads are overwritten by their saved weights: building them must not
        # shift the RNG, or a new head's init would depend on which parent came before (paired
        # seeds: within a seed every condition's target head starts the same).
        with torch.random.fork_rng(devices=[]):
            for head, meta in info.items():
                task = get_task(meta["task"])
                fcfg = FeaturizeConfig(**meta.get("featurize", {}))
                model.add_head(head, get_format(task.type).make_head(task, model.hidden_size, fcfg))
        model.load_heads_state(model_io.load_heads_state(stage_dir))
    return model, tokenizer, info


# ------------------------------------------------------------------ task data


def featurize_config(spec: StageSpec, task: TaskSpec) -> FeaturizeConfig:
    """Per-task featurization: ``spec.train["tasks"][name]``, resolved by the planner."""
    values = (spec.train.get("tasks") or {}).get(task.name, {})
    return FeaturizeConfig(**{k: v for k, v in values.items() if k in _FEATURIZE_KEYS})


def _prepare_task(
    spec: StageSpec,
    name: str,
    data_dir: Path,
    tokenizer: PreTrainedTokenizerBase,
    model: XstiltsModel,
    heads_info: dict[str, dict[str, Any]],
) -> loop.TrainTask:
    """Load, subsample and featurize one task; create its head unless it already exists."""
    task = get_task(name)
    if "train" not in task.splits:
        raise ConfigError(f"task {name!r} has no train split and cannot be trained on", key=name)
    fmt = get_format(task.type)
    fcfg = featurize_config(spec, task)
    train_ex = load_examples(task, data_dir, "train", task.train_language)
    cap = task_setting(spec.train, name, "max_train_examples")  # a mixture: the task's own
    if cap is not None and len(train_ex) > cap:
        random.Random(spec.seed).shuffle(train_ex)
        train_ex = train_ex[:cap]
    dev_ex = []
    if task.dev_split in task.splits:
        dev_ex = load_examples(
            task,
            data_dir,
            task.dev_split,
            task.train_language,
            limit=task_setting(spec.train, name, "max_dev_examples"),
        )
    if task.head not in heads_info:
        model.add_head(task.head, fmt.make_head(task, model.hidden_size, fcfg))
        heads_info[task.head] = {
            "task": name,
            "type": str(task.type),
            "featurize": dataclasses.asdict(fcfg),
        }
    return loop.TrainTask(
        name=name, spec=task, head=task.head, format=fmt,
        train_features=fmt.featurize(train_ex, tokenizer, task, fcfg),
        dev_examples=dev_ex, dev_features=fmt.featurize(dev_ex, tokenizer, task, fcfg),
        featurize=fcfg,
    )  # fmt: skip


# ------------------------------------------------------------------ evaluation


def evaluate_stage(
    spec: StageSpec,
    stage_dir: Path,
    data_dir: Path,
    tasks: Sequence[str],
    settings: EvalSettings,
    *,
    device: torch.device | None = None,
) -> EvalResults:
    """Evaluate a finished stage on ``tasks`` in every language present (cached per identity).

    See :func:`xstilts.pipelines.stage_eval.evaluate_tasks`: a cached evaluation is used only
    when its identity (task version, languages, the exact files and their hashes, row cap,
    featurization, precision) equals today's; changed data re-scores the stage without
    retraining it, and says so in the log.

    Returns:
        All records (language x metric) of all tasks, with one summary per task.

    Raises:
        CheckpointError: the stage is incomplete, or lacks the head a task needs.
        DataError: a task has no evaluation data, or (``encoder.trim_vocab``) a file the
            vocabulary was not trimmed to.
    """
    stage_dir = Path(stage_dir)
    if not is_complete(stage_dir):
        raise CheckpointError("stage is missing or incomplete (no COMPLETE marker)", file=stage_dir)

    if trim_base.is_trimmed(spec):  # a trimmed vocabulary covers only the files it was cut to
        reads = [(t, [get_task(t).eval_split], None) for t in tasks]
        trim_base.check_reads(stage_dir, Path(data_dir), reads)

    def load() -> tuple[XstiltsModel, PreTrainedTokenizerBase]:
        model, tokenizer, _ = load_stage_model(stage_dir, keep_heads=True)
        return model, tokenizer

    return stage_eval.evaluate_tasks(
        spec, stage_dir, Path(data_dir), tasks, settings, device or default_device(), load
    )
