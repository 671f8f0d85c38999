"""Every registered task type implements the whole task-type protocol, and imports without torch.

Adding a task type is one module in ``xstilts.tasks.formats`` plus readers; these tests walk the
registered types (and the catalog's tasks), so a type that misses a protocol member, declares a
value nobody understands, or a catalog task whose metrics do not give its headline number,
fails here rather than in a report.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xstilts.errors import ConfigError, DataError
from xstilts.models.heads import HEAD_KINDS, PoolingHead, TokenHead, build_head
from xstilts.tasks import TaskSpec, TaskType, get_task, list_tasks
from xstilts.tasks.formats import FeaturizeConfig, all_formats, base, format_of, task_score_of
from xstilts.tasks.formats.base import TaskFormat, TaskTypeBase

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_ATTRS = tuple(TaskFormat.__annotations__)
PROTOCOL_METHODS = tuple(
    name
    for name, value in vars(TaskFormat).items()
    if inspect.isfunction(value) and not name.startswith("_")
)
# Declared by each type itself; the base class has no meaningful default for these.
OWN = ("head_spec", "featurize", "loss", "predict", "postprocess", "score", "details")


def test_protocol_is_what_the_module_doc_lists() -> None:
    assert set(PROTOCOL_ATTRS) == {"task_type", "trainable", "export_suffix", "degenerate_check"}
    assert len(PROTOCOL_METHODS) == 16
    for name in PROTOCOL_ATTRS + PROTOCOL_METHODS:
        assert f"``{name}``" in base.__doc__ or f"~TaskFormat.{name}" in base.__doc__, name


def test_every_task_type_has_one_implementation() -> None:
    formats = all_formats()
    assert set(formats) == set(TaskType)
    for task_type, fmt in formats.items():
        assert fmt.task_type is task_type


@pytest.mark.parametrize("task_type", list(TaskType), ids=str)
def test_task_type_implements_the_whole_protocol(task_type: TaskType) -> None:
    fmt = all_formats()[task_type]
    cls = type(fmt)
    for name in PROTOCOL_METHODS:
        assert callable(getattr(fmt, name, None)), f"{task_type} lacks {name}()"
        # Same parameters as the protocol (names included): callers pass them by keyword too.
        want = list(inspect.signature(getattr(TaskFormat, name)).parameters)
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got == want, f"{task_type}.{name}{got} != protocol {want}"
    for name in OWN:
        assert getattr(cls, name) is not getattr(TaskTypeBase, name, None), (task_type, name)
    assert isinstance(fmt.trainable, bool)
    assert fmt.export_suffix in ("tsv", "json")
    assert fmt.degenerate_check in ("majority", "near_zero", "none")


@pytest.mark.parametrize("name", list_tasks())
def test_catalog_tasks_fit_their_type(name: str) -> None:
    spec = get_task(name)
    fmt = format_of(spec)
    assert fmt.selection_metric(spec) in spec.metrics
    if spec.is_target:
        # A target's declared metrics give its type's headline number (XTREME task score).
        # Not for every task: CCG (tagging, an intermediate) declares word accuracy while the
        # tagging headline is entity F1, which its scorer reports as well.
        scores = dict.fromkeys(spec.metrics, 50.0)
        assert fmt.language_score(spec, "en", scores) == 50.0
        both = {"en": scores, "de": dict.fromkeys(spec.metrics, 70.0)}
        assert task_score_of(spec, both) == 60.0
    head = fmt.head_spec(spec, FeaturizeConfig())
    assert head.kind in HEAD_KINDS
    module = fmt.make_head(spec, 8, FeaturizeConfig())
    assert isinstance(module, torch.nn.Module)


def test_declared_values_of_the_types() -> None:
    assert [t for t, f in all_formats().items() if not f.trainable] == [TaskType.RETRIEVAL]
    assert [t for t, f in all_formats().items() if f.export_suffix == "json"] == [
        TaskType.EXTRACTIVE_QA
    ]
    assert format_of(get_task("xquad")).selection_metric(get_task("xquad")) == "f1"
    assert format_of(get_task("mlqa")).language_score(
        get_task("mlqa"), "de", {"exact_match": 40.0, "f1": 60.0}
    ) == pytest.approx(50.0)
    panx, xnli = get_task("panx"), get_task("xnli")
    assert format_of(panx).head_spec(panx, None).num_outputs == len(panx.labels)
    assert format_of(xnli).head_spec(xnli, None).num_outputs == 3
    assert format_of(get_task("tatoeba")).eval_extra(FeaturizeConfig(pooling="cls", layer=3)) == {
        "pooling": "cls",
        "layer": 3,
    }
    assert format_of(xnli).eval_extra(FeaturizeConfig()) == {}


def test_retrieval_kind_is_declared_not_guessed() -> None:
    assert get_task("bucc").retrieval == "mining" and get_task("tatoeba").retrieval == "search"
    with pytest.raises(ConfigError, match="retrieval=''"):
        TaskSpec(name="ret", type="retrieval", version="1", splits={}, metrics=("f1",))
    with pytest.raises(ConfigError, match="retrieval='mining'"):
        TaskSpec(name="cls", type="classification", version="1", splits={}, labels=("a",),
                 retrieval="mining")  # fmt: skip
    with pytest.raises(ConfigError, match="answer_normalization"):
        TaskSpec(name="qa", type="extractive_qa", version="1", splits={},
                 answer_normalization="mlqa2")  # fmt: skip
    # BUCC's headline is F1 because it mines, whatever keys its scores carry.
    with pytest.raises(DataError, match="no 'f1' score"):
        format_of(get_task("bucc")).language_score(get_task("bucc"), "de", {"accuracy": 1.0})


def test_heads_are_built_in_models_from_the_declaration() -> None:
    assert isinstance(build_head(8, "token", 2), TokenHead)
    pool = build_head(8, "pooling", layer=2, pooling="cls")
    assert isinstance(pool, PoolingHead) and (pool.layer, pool.pooling) == (2, "cls")
    with pytest.raises(ConfigError, match="unknown head kind 'crf'"):
        build_head(8, "crf")


def test_tagging_ignore_index_matches_the_batch_one() -> None:
    from xstilts.packing import IGNORE_INDEX
    from xstilts.tasks.formats import tagging

    assert tagging.IGNORE_INDEX == IGNORE_INDEX


def test_task_types_import_without_torch_or_transformers() -> None:
    code = (
        "import sys, xstilts.tasks.formats as f, xstilts.tasks.catalog;"
        "f.all_formats(); import xstilts.pipelines.plan;"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules];"
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
