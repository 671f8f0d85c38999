"""``head_pooling``: sequence heads pool ``<s>`` (the default) or the mean token.

* the mean pooling of a packed batch equals the hand-computed mean of each sequence's rows,
* it reaches the head through the type's HeadSpec and survives heads.json (a reloaded head pools
  the same way),
* it is part of a stage id only when set (default ids unchanged), applies to sequence heads only,
* a bad value is one ConfigError naming ``train.head_pooling``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from xstilts.errors import ConfigError
from xstilts.models.heads import ClassificationHead, MultipleChoiceHead, pool_sequences
from xstilts.packing import pack
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.tasks import get_task
from xstilts.tasks.formats import FeaturizeConfig, get_format
from xstilts.training.evaluate import featurize_identity

# Three sequences of 3, 1 and 2 tokens packed into N = 6 rows; H = 2.
HIDDEN = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0], [7.0, -1.0], [0.0, 1.0], [4.0, 3.0]])
# Hand-computed: (1+3+5)/3, (2+4+9)/3 | 7, -1 | (0+4)/2, (1+3)/2
MEANS = torch.tensor([[3.0, 5.0], [7.0, -1.0], [2.0, 2.0]])
FIRST = torch.tensor([[1.0, 2.0], [7.0, -1.0], [0.0, 1.0]])


def _batch(per_feature: int = 1) -> Any:
    seqs = [[0, 5, 2], [0], [0, 2]]
    feats = [{"sequences": seqs[i : i + per_feature], "label": 0} for i in range(0, 3, per_feature)]
    return pack(feats)


def test_mean_pooling_equals_the_hand_computed_mean_of_each_packed_sequence() -> None:
    batch = _batch()
    assert torch.equal(pool_sequences(HIDDEN, batch, "mean"), MEANS)
    assert torch.equal(pool_sequences(HIDDEN, batch, "cls"), FIRST)
    # bf16 in, bf16 out (the sum runs in float32)
    assert pool_sequences(HIDDEN.bfloat16(), batch, "mean").dtype == torch.bfloat16


@pytest.mark.parametrize(("pooling", "rows"), [("mean", MEANS), ("cls", FIRST)])
def test_classification_head_reads_the_pooled_rows(pooling: str, rows: torch.Tensor) -> None:
    torch.manual_seed(0)
    head = ClassificationHead(2, 3, pooling=pooling).eval()
    expected = head.out_proj(torch.tanh(head.dense(rows)))  # [3, 3]
    assert torch.allclose(head(HIDDEN, _batch()), expected)


def test_multiple_choice_head_scores_the_mean_of_each_choice() -> None:
    torch.manual_seed(0)
    # one feature of 3 choices -> scores [1, 3]
    head = MultipleChoiceHead(2, pooling="mean").eval()
    batch = _batch(per_feature=3)
    expected = (MEANS @ head.classifier.weight.T + head.classifier.bias).view(1, 3)
    assert torch.allclose(head(HIDDEN, batch), expected)


def test_head_pooling_reaches_the_head_and_survives_heads_json() -> None:
    for task in ("xnli", "hellaswag"):
        spec = get_task(task)
        fmt = get_format(spec.type)
        assert fmt.make_head(spec, 8, None).pooling == "cls"  # the default: <s>
        cfg = FeaturizeConfig(head_pooling="mean")
        saved = json.loads(json.dumps(asdict(cfg)))  # what heads.json holds
        assert saved["head_pooling"] == "mean"
        assert fmt.make_head(spec, 8, FeaturizeConfig(**saved)).pooling == "mean"
    # a heads.json written before the setting existed reloads as <s> pooling
    old = {k: v for k, v in asdict(FeaturizeConfig()).items() if k != "head_pooling"}
    assert (
        get_format(get_task("xnli").type)
        .make_head(get_task("xnli"), 8, FeaturizeConfig(**old))
        .pooling
        == "cls"
    )
    with pytest.raises(ConfigError, match="head_pooling"):
        ClassificationHead(2, 2, pooling="max")


def test_eval_identity_keeps_its_key_unless_head_pooling_is_set() -> None:
    assert "head_pooling" not in featurize_identity(FeaturizeConfig())
    assert featurize_identity(FeaturizeConfig(head_pooling="mean"))["head_pooling"] == "mean"


def _raw(data_root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "pool", "data_dir": str(data_root), "encoder": {"tiny": {}},
        "intermediate": ["none", "mnli", "squad", "hellaswag"], "targets": ["xnli"],
        "train": {"max_steps": 2}, **extra,
    }  # fmt: skip


def _ids(data_root: Path, tmp_path: Path, **extra: Any) -> dict[str, str]:
    """Chain path (``base>mnli>xnli``) -> stage id."""
    exp = experiment_from_dict(_raw(data_root, **extra), base_dir=tmp_path, check_data=False)
    specs = {s.spec.stage_id: s.spec for s in build_plan(exp, count_examples=False).stages}

    def path(spec: Any) -> str:
        parent = specs.get(spec.parent) if spec.parent else None
        return spec.label if parent is None else f"{path(parent)}>{spec.label}"

    return {path(spec): sid for sid, spec in specs.items()}


def test_head_pooling_is_in_the_stage_id_only_when_set(data_root: Path, tmp_path: Path) -> None:
    base = _ids(data_root, tmp_path)
    assert set(base) == {"base", "base>mnli", "base>squad", "base>hellaswag", "base>xnli",
                         "base>mnli>xnli", "base>squad>xnli", "base>hellaswag>xnli"}  # fmt: skip
    exp = experiment_from_dict(_raw(data_root), base_dir=tmp_path, check_data=False)
    for stage in build_plan(exp, count_examples=False).stages:
        for values in (stage.spec.train.get("tasks") or {}).values():
            assert "head_pooling" not in values  # sparse: absent unless set
    mean = _ids(data_root, tmp_path, train={"max_steps": 2, "head_pooling": "mean"})
    moved = {k for k in base if mean[k] != base[k]}
    # squad is QA (no sequence head): its stage keeps its id, and so does the base
    assert moved == set(base) - {"base", "base>squad"}
    only_xnli = _ids(data_root, tmp_path, overrides={"xnli": {"head_pooling": "mean"}})
    assert {k for k in base if only_xnli[k] != base[k]} == {k for k in base if "xnli" in k}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"train": {"head_pooling": "max"}}, "train.head_pooling"),
        ({"overrides": {"xnli": {"head_pooling": 1}}}, "overrides.xnli.head_pooling"),
        ({"overrides": {"squad": {"head_pooling": "mean"}}}, "overrides.squad.head_pooling"),
        ({"overrides": {"tatoeba": {"head_pooling": "mean"}}}, "overrides.tatoeba.head_pooling"),
    ],
)
def test_a_bad_head_pooling_is_one_config_error_at_its_key(
    extra: dict[str, Any], key: str, data_root: Path, tmp_path: Path
) -> None:
    raw = _raw(data_root, **extra)
    raw["targets"] = [*raw["targets"], "tatoeba"]
    with pytest.raises(ConfigError) as err:
        build_plan(experiment_from_dict(raw, base_dir=tmp_path, check_data=False),
                   count_examples=False)  # fmt: skip
    assert err.value.key == key
