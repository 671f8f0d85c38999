"""The settings schema (xstilts.settings): every default lives once and reaches the stage spec.

* stage ids of real configs are those computed before the schema existed (fixture file),
* a default changed in the schema changes the resolved stage spec (and the id where it counts),
* no other module under src/ writes a literal default for a schema key (AST scan),
* the precedence built-in < task < train < overrides < step, in the one resolve function,
* the pipelines modules that validate and plan an experiment import no circle.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from xstilts import settings as S
from xstilts.pipelines.experiment import experiment_from_dict, load_experiment
from xstilts.pipelines.plan import Plan, build_plan
from xstilts.training.loop import TrainConfig

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "xstilts"
STAGE_IDS = json.loads((REPO / "tests/fixtures/settings_stage_ids.json").read_text())
# Mixture with its own train, chains, QA, retrieval, overrides, sparse keys, mlm, keep_heads.
MIXQA: dict[str, Any] = {
    "name": "mixqa", "encoder": {"tiny": {"hidden_size": 32}}, "seeds": [0, 1],
    "intermediate": [
        "none", "mnli", ["squad", "mnli"],
        {"mixture": ["mnli", "squad"], "sampling": "temperature",
         "train": {"lr": 3e-5, "stride": 64}},
    ],
    "targets": ["xnli", "xquad", "tatoeba", "bucc"],
    "train": {"max_steps": 3, "batch_size": 4, "freeze": ["embeddings"], "deterministic": True,
              "checkpoint_every": 2},
    "overrides": {"squad": {"max_length": 128, "epochs": 1}, "tatoeba": {"max_length": 64},
                  "xquad": {"n_best": 5}},
    "mlm": {"weight": 0.5, "max_length": 64},
    "evaluation": {"retrieval": {"pooling": "cls", "layer": 1}, "max_tokens": 2048},
    "keep_heads": True,
}  # fmt: skip


def _ids(plan: Plan) -> list[str]:
    return [s.stage_id for s in plan.stages]


@pytest.mark.parametrize("config", ["configs/demo_tiny.yaml"])
def test_stage_ids_of_configs_are_unchanged(config: str, data_root: Path) -> None:
    exp = load_experiment(REPO / config, [f"data_dir={data_root}"], check_data=False)
    assert _ids(build_plan(exp, count_examples=False)) == STAGE_IDS[config]


def test_stage_ids_of_a_grid_using_every_layer_are_unchanged(
    data_root: Path, tmp_path: Path
) -> None:
    exp = experiment_from_dict({**MIXQA, "data_dir": str(data_root)}, base_dir=tmp_path,
                               check_data=False)  # fmt: skip
    assert _ids(build_plan(exp, count_examples=False)) == STAGE_IDS["mixqa"]


def _small_plan(data_root: Path, tmp_path: Path) -> Plan:
    raw = {
        "name": "small", "data_dir": str(data_root), "encoder": {"tiny": {}},
        "intermediate": ["sst2"], "targets": ["xquad", "tatoeba"], "mlm": {"weight": 1},
    }  # fmt: skip
    return build_plan(experiment_from_dict(raw, base_dir=tmp_path, check_data=False),
                      count_examples=False)  # fmt: skip


def _stage(plan: Plan, task: str) -> Any:
    return next(s.spec for s in plan.stages if s.spec.tasks == (task,))


# (schema, setting, new default, where the resolved value shows, part of the stage id)
CHANGES = [
    (S.TrainSettings, "lr", 3e-5, lambda p: _stage(p, "sst2").train["lr"], True),
    (S.TrainSettings, "weight_decay", 0.5, lambda p: _stage(p, "xquad").train["weight_decay"],
     True),
    (S.TrainSettings, "batch_size", 7, lambda p: _stage(p, "sst2").train["batch_size"], True),
    (S.FeaturizeSettings, "max_length", 100,
     lambda p: _stage(p, "sst2").train["tasks"]["sst2"]["max_length"], True),
    (S.FeaturizeSettings, "stride", 50,
     lambda p: _stage(p, "xquad").train["tasks"]["xquad"]["stride"], True),
    (S.MlmSettings, "probability", 0.3, lambda p: _stage(p, "sst2").mlm["probability"], True),
    (S.EvaluationSettings, "max_tokens", 4096,
     lambda p: _stage(p, "sst2").train["eval_max_tokens"], False),
    (S.RetrievalSettings, "pooling", "cls",
     lambda p: p.experiment.eval_settings().retrieval_pooling, False),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "name", "value", "read", "in_id"), CHANGES,
                         ids=[f"{c[0].__name__}.{c[1]}" for c in CHANGES])  # fmt: skip
def test_a_default_changed_in_the_schema_changes_the_resolved_stage_spec(
    schema: type, name: str, value: Any, read: Any, in_id: bool, data_root: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    before = _small_plan(data_root, tmp_path)
    assert read(before) == S.default(schema, name) != value
    monkeypatch.setattr(S.field_of(schema, name), "default", value)
    after = _small_plan(data_root, tmp_path)
    assert read(after) == value
    assert (_ids(after) != _ids(before)) is in_id
    if schema is S.TrainSettings:  # the runtime config is built from the resolved spec
        spec = _stage(after, "sst2")
        assert getattr(TrainConfig.from_stage(spec.train, spec.mixture, 0), name) == value


def test_resolve_applies_the_one_precedence() -> None:
    task, exp, over, step = {"lr": 1.0}, {"lr": 2.0, "epochs": 3}, {"lr": 4.0}, {"lr": 5.0}
    assert S.resolve(S.TrainSettings, task=task, experiment=exp, override=over, step=step)[
        "lr"
    ] == 5.0  # fmt: skip
    assert S.resolve(S.TrainSettings, task=task, experiment=exp, override=over)["lr"] == 4.0
    assert S.resolve(S.TrainSettings, task=task, experiment=exp)["lr"] == 2.0
    resolved = S.resolve(S.TrainSettings, task=task)
    assert resolved["lr"] == 1.0 and resolved["epochs"] == 2.0 and resolved["batch_size"] == 32
    # ints and numeric strings of float settings become floats; sparse keys only when set
    assert S.resolve(S.TrainSettings, experiment=exp)["epochs"] == 3.0
    assert isinstance(S.resolve(S.TrainSettings, experiment=exp)["epochs"], float)
    assert "freeze" not in resolved and "deterministic" not in resolved
    assert S.resolve(S.TrainSettings, step={"deterministic": True})["deterministic"] is True
    # only QA reads the window settings
    assert S.resolve(S.FeaturizeSettings, task_type="classification") == {"max_length": 256}
    qa = S.resolve(S.FeaturizeSettings, task_type="extractive_qa")
    assert qa == {"max_length": 256, "stride": 128, "max_query_length": 64, "n_best": 20,
                  "max_answer_length": 30}  # fmt: skip


def test_runtime_objects_take_the_schema_defaults() -> None:
    from xstilts.tasks.formats import FeaturizeConfig
    from xstilts.training.evaluate import EvalSettings

    cfg = TrainConfig()
    for name, value in S.defaults(S.TrainSettings).items():
        assert getattr(cfg, name) == value, name
    assert (cfg.lr, cfg.epochs) == (1e-5, 2.0)  # the values the planner has always used
    feat = FeaturizeConfig()
    assert {k: getattr(feat, k) for k in S.keys(S.FeaturizeSettings)} == S.defaults(
        S.FeaturizeSettings
    )
    assert (feat.pooling, feat.layer) == ("mean", None)
    ev = EvalSettings()
    assert (ev.max_tokens, ev.precision, ev.max_eval_examples) == (16384, "auto", None)


# ------------------------------------------------------------------ no second default

SCHEMAS = (S.TrainSettings, S.FeaturizeSettings, S.MlmSettings, S.EvaluationSettings,
           S.RetrievalSettings, S.MixtureSettings)  # fmt: skip
KEYS = {f.name for schema in SCHEMAS for f in fields(schema)}
# Literal values for a schema key's name outside settings.py that are not that setting's default.
ALLOWED = {
    ("models/trim_vocab.py", "batch_size"): "tokenizing batch while counting vocabulary",
    ("models/heads.py", "layer"): "PoolingHead ctor; the retrieval format passes FeaturizeConfig",
    ("models/heads.py", "pooling"): "PoolingHead ctor; the retrieval format passes FeaturizeConfig",
    ("models/packed.py", "layer"): "None = the last layer's hidden states (forward argument)",
    ("training/batching.py", "max_tokens"): "make_batches argument: None = no token budget",
    ("training/loop.py", "weight"): "a micro-batch's share of the loss (DDP), not mlm.weight",
    ("training/loop.py", "epochs"): "TrainResult.epochs: epochs actually run (a measurement)",
    ("training/optim.py", "weight_decay"): "biases and LayerNorm never decay (AdamW groups)",
}


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) or (isinstance(node, ast.Tuple) and not node.elts)


def _literal_defaults(tree: ast.AST) -> set[str]:
    """Schema keys given a literal value: dict entries, keyword arguments, ``.get(key, v)``,
    annotated class fields and function parameter defaults."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            pairs = zip(node.keys, node.values, strict=True)
            found |= {k.value for k, v in pairs if isinstance(k, ast.Constant) and _is_literal(v)}
            found &= KEYS
        elif isinstance(node, ast.Call):
            found |= {kw.arg for kw in node.keywords if kw.arg in KEYS and _is_literal(kw.value)}
            func, args = node.func, node.args
            if (isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop")
                    and len(args) == 2 and isinstance(args[0], ast.Constant)
                    and args[0].value in KEYS and _is_literal(args[1])):  # fmt: skip
                found.add(args[0].value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in KEYS and node.value is not None and _is_literal(node.value):
                found.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults) :], a.defaults, strict=True))
            pairs += [(x, d) for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d]
            found |= {arg.arg for arg, d in pairs if arg.arg in KEYS and _is_literal(d)}
    return found


def test_no_other_module_defines_a_default_for_a_schema_key() -> None:
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        # The catalog is the task-defaults layer: each task's own values (epochs, QA windows).
        if rel == "settings.py" or rel.startswith("tasks/catalog/"):
            continue
        found |= {(rel, key) for key in _literal_defaults(ast.parse(path.read_text()))}
    assert found - set(ALLOWED) == set(), "define the default in xstilts/settings.py instead"
    assert set(ALLOWED) - found == set(), "stale ALLOWED entries"


def test_the_catalog_states_no_built_in_default() -> None:
    from xstilts.tasks import get_task, list_tasks

    built_in = {**S.defaults(S.TrainSettings), **S.defaults(S.FeaturizeSettings)}
    for name in list_tasks():
        for key, value in get_task(name).defaults.items():
            assert key in built_in, f"{name}: {key} is not a setting"
            if key != "epochs":  # epoch counts are per task (Phang et al. / XTREME)
                assert value != built_in[key], f"{name}.{key} repeats the built-in default"


# ------------------------------------------------------------------ imports


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0] if node.level == 0 else "." + node.module)
            if node.module == "xstilts.pipelines":
                out |= {f"xstilts.pipelines.{a.name}" for a in node.names}
            elif node.module.startswith("xstilts"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_settings_module_is_the_bottom_layer() -> None:
    imported = _imports(SRC / "settings.py")
    assert {m for m in imported if m.startswith("xstilts.")} <= {"xstilts.errors"}
    third_party = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert third_party <= {"xstilts"}  # no torch, no yaml: every layer may import it


CONFIG_MODULES = ("datacheck", "experiment", "experiment_spec", "limits", "plan",
                  "settings_use", "validate")  # fmt: skip


def test_experiment_validation_and_planning_import_no_circle() -> None:
    graph = {
        m: {i.rsplit(".", 1)[1] for i in _imports(SRC / "pipelines" / f"{m}.py")
            if i.startswith("xstilts.pipelines.") and i.rsplit(".", 1)[1] in CONFIG_MODULES}
        for m in CONFIG_MODULES
    }  # fmt: skip

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])  # fmt: skip

    assert [m for m in CONFIG_MODULES if reaches(m, m, set())] == []
