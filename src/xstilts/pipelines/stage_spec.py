"""A stage is one unit of training (or the untouched base encoder); its id is a content hash.

``stage_id = sha256(canonical JSON of the resolved StageSpec, its data fingerprint, parent id)``.
Two chains that share a prefix therefore share the prefix's stage directories.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

STAGE_SCHEMA_VERSION = "1"
_EVAL_ONLY = ("evaluate", "eval_languages")
# How often a stage checkpoints changes nothing it computes (resume is exact), nor do the
# progress-log interval and the dev evaluation's batch budget: not in the id. The torch thread
# count is recorded (spec.json, metrics.json) but not in the id either: every executor applies
# the same resolved count, so a stage's result does not depend on where it ran, and changing it
# must not invalidate a cache of finished stages.
_RUN_ONLY_TRAIN = (
    "checkpoint_every",
    "keep_checkpoints",
    "log_every",
    "eval_max_tokens",
    "threads",
)


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) used for hashing."""
    return json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class StageSpec:
    """Fully resolved description of one stage.

    Attributes:
        kind: ``"base"`` (materialise the starting encoder; no training) or ``"train"``.
        tasks: Tasks trained in this stage (one, or several for a mixture). Empty for base.
        role: ``"base"``, ``"intermediate"`` or ``"target"``.
        encoder: The encoder spec (hub name/path, or a tiny random config), resolved.
        parent: Parent stage id (``None`` only for base stages).
        seed: Random seed of this stage.
        train: Resolved training hyper-parameters (lr, epochs, max_steps, batch sizes, ...),
            per task under ``train["tasks"][name]`` for per-task featurization settings. A base
            stage's is empty, or ``{"trim_to": [tasks]}`` with ``encoder.trim_vocab``.
        mixture: ``{"sampling": "proportional"|"temperature"|"uniform", "temperature": T}``
            for multi-task stages, else empty.
        mlm: Optional MLM auxiliary settings (empty = off).
        keep_heads: Carry the parent's heads into this stage instead of dropping them.
        evaluate: Tasks evaluated in every language after this stage (target stages: the
            target; base and intermediate stages: the retrieval tasks).
        eval_languages: Restrict evaluation languages per task (empty = all present).
        data_fingerprint: Hash of the training/dev data files this stage reads.
    """

    kind: str
    tasks: tuple[str, ...]
    role: str
    encoder: Mapping[str, Any]
    parent: str | None
    seed: int
    train: Mapping[str, Any] = field(default_factory=dict)
    mixture: Mapping[str, Any] = field(default_factory=dict)
    mlm: Mapping[str, Any] = field(default_factory=dict)
    keep_heads: bool = False
    evaluate: tuple[str, ...] = ()
    eval_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    data_fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (written as the stage's ``spec.yaml``/``spec.json``)."""
        return _canonical(asdict(self))

    @property
    def stage_id(self) -> str:
        """Content hash of what the stage *trains* (parent id included): 16 hex chars.

        ``evaluate`` and ``eval_languages`` are left out: evaluating a cached stage on one more
        task must not retrain it. Evaluations are cached separately inside the stage dir.
        """
        ident = {k: v for k, v in self.to_dict().items() if k not in _EVAL_ONLY}
        ident["train"] = {k: v for k, v in ident["train"].items() if k not in _RUN_ONLY_TRAIN}
        payload = canonical_json({"schema": STAGE_SCHEMA_VERSION, **ident})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``mnli`` or ``mix(mnli+squad)`` or ``base``."""
        if self.kind == "base":
            return "base"
        if len(self.tasks) > 1:
            return "mix(" + "+".join(self.tasks) + ")"
        return self.tasks[0]
