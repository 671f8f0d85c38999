"""``xstilts export --format hf``: one stage as a standard Hugging Face ``save_pretrained`` folder.

The folder holds ``config.json``, ``model.safetensors`` and the stage's tokenizer, so
``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained`` load it with no xstilts code.
With ``head=NAME`` the task head is written as the matching ``AutoModelFor...`` class where
xstilts' head is *exactly* that class's head (same modules, same input):

==================  ===========================================  =========================
xstilts head        transformers class                           model types
==================  ===========================================  =========================
classification      ``...ForSequenceClassification`` (<s> ->      xlm-roberta, roberta,
                    dense -> tanh -> out_proj)                   camembert
tagging             ``...ForTokenClassification`` (classifier)   those + bert
extractive QA       ``...ForQuestionAnswering`` (qa_outputs)     those + bert
==================  ===========================================  =========================

Everything else is refused with the reason (:func:`hf_head_class`): HF's multiple-choice models
score the *pooler* output (dense + tanh over <s>), xstilts scores the raw <s> state, and no
pooler weights make ``tanh(W x + b) == x``; retrieval heads have no weights (pool
``hidden_states[layer]`` yourself); BERT's sequence classifier also reads the pooler.

xstilts never trains a pooler, so none is saved: load the encoder with
``AutoModel.from_pretrained(dir, add_pooling_layer=False)`` (without the flag transformers adds a
randomly initialised pooler and says so; ``last_hidden_state`` is the same either way).

Before the folder is published, it is loaded back with transformers and run on probe sentences;
the largest difference to xstilts' own forward is recorded in ``xstilts_export.json`` and the
export is refused above :data:`VERIFY_ATOL` (nothing unverified is left behind).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModel,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
)
from transformers.utils import logging as hf_logging

from xstilts.errors import CheckpointError, ConfigError
from xstilts.models.model import XstiltsModel
from xstilts.models.packed import encode_packed
from xstilts.packing import PackedBatch, pack
from xstilts.pipelines.stage import is_complete, load_stage_model
from xstilts.tasks.registry import get_task
from xstilts.tasks.spec import TaskSpec, TaskType

MANIFEST = "xstilts_export.json"
# fp32 on CPU: HF's padded SDPA and xstilts' packed forward differ by float rounding only.
VERIFY_ATOL = 1e-4
PROBES = (
    "Zero-shot transfer works across languages.",
    "Der Hund schläft.",
    "一个简单的句子",
)
_ROBERTA_FAMILY = ("xlm-roberta", "roberta", "camembert")
_TOKEN_FAMILY = (*_ROBERTA_FAMILY, "bert")


# TaskType branches stay here on purpose: which transformers class (and which model family)
# holds a head exactly is knowledge of transformers, used only by this export, not behaviour
# of the task type (a new type simply has no HF export until a case is added).
def hf_head_class(task_type: TaskType, model_type: str) -> tuple[Any, str]:
    """The ``AutoModelFor...`` class a head maps onto exactly, and its head attribute name.

    Raises:
        ConfigError: when no transformers class has exactly this head (the reason says why).
    """
    if task_type is TaskType.CLASSIFICATION and model_type in _ROBERTA_FAMILY:
        return AutoModelForSequenceClassification, "classifier"
    if task_type is TaskType.TAGGING and model_type in _TOKEN_FAMILY:
        return AutoModelForTokenClassification, "classifier"
    if task_type is TaskType.EXTRACTIVE_QA and model_type in _TOKEN_FAMILY:
        return AutoModelForQuestionAnswering, "qa_outputs"
    reasons = {
        TaskType.MULTIPLE_CHOICE: "transformers' ...ForMultipleChoice scores the pooler output "
        "(dense + tanh over <s>), xstilts scores the raw <s> state; no pooler weights make "
        "tanh(Wx + b) equal x",
        TaskType.RETRIEVAL: "a retrieval head has no weights: export the encoder and mean-pool "
        "hidden_states[layer] (see heads.json)",
        TaskType.CLASSIFICATION: f"{model_type}'s ...ForSequenceClassification reads the pooler, "
        "xstilts' classification head reads <s> through its own dense + tanh",
    }
    why = reasons.get(task_type, f"no exact {task_type} head for model type {model_type!r}")
    raise ConfigError(
        f"cannot export a {task_type} head as a transformers model: {why}",
        key="--head",
        hint="export the encoder alone (leave out --head)",
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No weight-loading/saving bars or load reports while exporting (restored afterwards)."""
    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _head_model(model: XstiltsModel, head: str, spec: TaskSpec) -> PreTrainedModel:
    """An ``AutoModelFor...`` holding the stage's encoder and head ``head`` (weights copied)."""
    config = model.encoder.config
    auto_cls, attr = hf_head_class(spec.type, config.model_type)
    labels = list(spec.labels) if spec.type is not TaskType.EXTRACTIVE_QA else []
    hf_config = copy.deepcopy(config)
    hf_config.num_labels = len(labels) or 2  # QA: start and end
    if labels:
        hf_config.id2label = dict(enumerate(labels))
        hf_config.label2id = {name: i for i, name in enumerate(labels)}
    with torch.random.fork_rng(devices=[]):  # random init before the copy: keep caller's RNG
        out = auto_cls.from_config(hf_config, attn_implementation="sdpa")
    base = getattr(out, out.base_model_prefix)
    missing, unexpected = base.load_state_dict(model.encoder.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise CheckpointError(f"encoder weights do not fit {type(out).__name__}: "
                              f"missing {missing[:5]}, unexpected {unexpected[:5]}")  # fmt: skip
    owner = model.heads[head]
    source: torch.nn.Module = getattr(owner, "classifier", owner)  # a TokenHead's classifier
    target = getattr(out, attr)
    try:
        target.load_state_dict(source.state_dict(), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"head {head!r} does not fit {type(out).__name__}.{attr}: {exc}"
        ) from exc
    return out


def _probe_batch(tokenizer: Any, padding_idx: int) -> PackedBatch:
    ids = [tokenizer(text)["input_ids"] for text in PROBES]
    return pack([{"sequences": [seq]} for seq in ids], padding_idx=padding_idx)


def _reference(model: XstiltsModel, head: str | None, batch: PackedBatch) -> torch.Tensor:
    """xstilts' own output on ``batch``: hidden ``[N, H]``, or the head's output."""
    with torch.no_grad():
        if head is None:
            return encode_packed(model.encoder, batch)  # [N, H]
        return model(batch, head)  # [B, C] or [N, C]


def _hf_output(folder: Path, head_type: TaskType | None, batch: PackedBatch) -> torch.Tensor:
    """Load ``folder`` with transformers' Auto classes and tokenizer; same shape as xstilts'."""
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    enc = tokenizer(list(PROBES), padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()  # [S, T]
    if not torch.equal(enc["input_ids"][mask], batch.input_ids):
        raise CheckpointError(
            "the exported tokenizer gives other ids than the stage's", file=folder
        )
    auto = {
        None: AutoModel,
        TaskType.CLASSIFICATION: AutoModelForSequenceClassification,
        TaskType.TAGGING: AutoModelForTokenClassification,
        TaskType.EXTRACTIVE_QA: AutoModelForQuestionAnswering,
    }[head_type]
    # Typed Any: transformers 5 types from_pretrained's keywords, and this one is a model kwarg.
    extra: dict[str, Any] = {"add_pooling_layer": False} if head_type is None else {}
    # safetensors only, as everywhere in xstilts: a pickle could run code when loaded.
    hf = auto.from_pretrained(str(folder), use_safetensors=True, **extra).eval()
    with torch.no_grad():
        out = hf(**enc)
    if head_type is None:
        return out.last_hidden_state[mask]  # [N, H]
    if head_type is TaskType.CLASSIFICATION:
        return out.logits  # [B, C]
    if head_type is TaskType.TAGGING:
        return out.logits[mask]  # [N, C]
    return torch.stack([out.start_logits, out.end_logits], -1)[mask]  # [N, 2]


def export_hf(stage_dir: Path, out: Path, head: str | None = None) -> dict[str, Any]:
    """Write stage ``stage_dir`` as a ``save_pretrained`` folder ``out`` and verify it.

    Args:
        stage_dir: A complete stage directory.
        out: The folder to create (replaced only after the new one is verified).
        head: A head of the stage to export as ``AutoModelFor...``; None = the encoder alone.

    Returns:
        The manifest (also written as ``xstilts_export.json``): stage id, class, head, task,
        labels and ``max_abs_diff`` of the verification.

    Raises:
        CheckpointError: an incomplete stage, or outputs that differ after loading back.
        ConfigError: an unknown head, or a head with no exact transformers equivalent.
    """
    stage_dir, out = Path(stage_dir), Path(out)
    if not is_complete(stage_dir):
        raise CheckpointError("not a complete stage (no COMPLETE marker)", file=stage_dir)
    model, tokenizer, heads_info = load_stage_model(stage_dir, keep_heads=head is not None)
    model.eval()
    spec: TaskSpec | None = None
    if head is not None:
        if head not in heads_info:
            raise ConfigError(f"stage {stage_dir.name} has no head {head!r}", key="--head",
                              hint=f"its heads: {sorted(heads_info) or 'none'}")  # fmt: skip
        spec = get_task(heads_info[head]["task"])
        hf_head_class(spec.type, model.encoder.config.model_type)  # refuse before any writing
        if heads_info[head].get("featurize", {}).get("head_pooling") == "mean":
            raise ConfigError(
                f"cannot export head {head!r} as a transformers model: it pools the mean token "
                "(head_pooling: mean), transformers' heads read <s>",
                key="--head", hint="export the encoder alone (leave out --head)",
            )  # fmt: skip
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with _quiet_transformers():
            hf_model = model.encoder if spec is None else _head_model(model, head or "", spec)
            hf_model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            batch = _probe_batch(tokenizer, model.padding_idx)
            expected = _reference(model, head, batch)
            got = _hf_output(tmp, None if spec is None else spec.type, batch)
        diff = float((expected - got).abs().max())
        if not diff <= VERIFY_ATOL:  # also catches NaN
            raise CheckpointError(
                f"exported model disagrees with xstilts (max |diff| {diff:.3g} > {VERIFY_ATOL})",
                file=stage_dir,
            )
        manifest = _manifest(stage_dir, type(hf_model).__name__, head, spec, diff)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _manifest(
    stage_dir: Path, cls: str, head: str | None, spec: TaskSpec | None, diff: float
) -> dict[str, Any]:
    stage_spec = json.loads((stage_dir / "spec.json").read_text(encoding="utf-8"))
    return {
        "stage_id": stage_dir.name,
        "label": "+".join(stage_spec.get("tasks") or []) or "base",
        "class": cls,
        "head": head,
        "task": spec.name if spec else None,
        "labels": list(spec.labels) if spec else [],
        "verified_on": list(PROBES),
        "max_abs_diff": diff,
        "load": "AutoModel.from_pretrained(dir, add_pooling_layer=False)"
        if spec is None
        else f"AutoModelFor{cls.split('For', 1)[-1]}.from_pretrained(dir)",
    }


def find_stage(stages_dir: Path, stage: str) -> Path:
    """The complete stage whose id is ``stage`` or starts with it (at least 4 characters).

    Raises:
        ConfigError: no such stage, or a prefix matching several.
    """
    found = [p for p in Path(stages_dir).glob(f"{stage}*") if p.is_dir() and is_complete(p)]
    if len(stage) < 4 or len(found) != 1:
        what = "ambiguous" if len(found) > 1 else "no complete stage"
        raise ConfigError(f"{what} {stage!r} in {stages_dir}", key="--stage",
                          hint="give a stage id (or a unique prefix of 4+ characters) from "
                          "`xstilts plan`")  # fmt: skip
    return found[0]


def chain_stage(
    db: Path, stages_dir: Path, chain: str, seed: int | None, experiment: str | None = None
) -> Path:
    """The target stage of chain ``chain`` (e.g. ``mnli→pawsx``; ``->`` works too) and seed.

    Raises:
        ConfigError: an unknown chain, several seeds and none chosen, or an unknown seed.
        CheckpointError: the chain's stage is not in the stage cache.
    """
    from xstilts.results.store import ResultsStore

    wanted = chain.replace("->", "→").replace(" ", "")
    with ResultsStore(db) as store:
        names = store.experiments()
        name = experiment or (names[0] if names else "")
        runs = store.runs(name)
    labels = sorted({r.chain for r in runs})
    matching = [r for r in runs if r.chain.replace(" ", "") == wanted]
    if not matching:
        raise ConfigError(f"no chain {chain!r} in experiment {name!r}", key="--chain",
                          hint=f"chains: {', '.join(labels) or 'none'}")  # fmt: skip
    seeds = sorted({r.seed for r in matching})
    if seed is None and len(seeds) > 1:
        raise ConfigError(f"chain {chain!r} ran with seeds {seeds}: choose one", key="--seed")
    pick = seeds[0] if seed is None else seed
    runs_of_seed = [r for r in matching if r.seed == pick]
    if not runs_of_seed:
        raise ConfigError(f"chain {chain!r} has no seed {pick} (seeds: {seeds})", key="--seed")
    stage_dir = Path(stages_dir) / runs_of_seed[0].target_stage_id
    if not is_complete(stage_dir):
        raise CheckpointError("the chain's stage is not in the stage cache", file=stage_dir,
                              hint="run the experiment (or pass --stages-dir)")  # fmt: skip
    return stage_dir
