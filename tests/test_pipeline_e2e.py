"""End to end on real data slices: a grid trains each distinct stage once, a re-run trains none."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import tiny_encoder
from xstilts.pipelines import executor, stage
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.tables import language_table, xtreme_table
from xstilts.results.store import ResultsStore
from xstilts.training import loop

pytestmark = pytest.mark.slow


def _experiment(data_root: Path, out: Path) -> Any:
    raw = {
        "name": "e2e",
        "data_dir": str(data_root),
        "output_dir": str(out),
        "encoder": tiny_encoder(1000, ["sst2", "pawsx"], 200),
        "seeds": [1],
        "intermediate": ["none", "sst2", ["sst2", "qqp"]],
        "targets": ["pawsx", "tatoeba"],
        "train": {
            "lr": 1e-3,
            "max_steps": 2,
            "batch_size": 8,
            "max_train_examples": 32,
            "max_dev_examples": 16,
            "max_length": 64,
            "precision": "fp32",
        },
        "evaluation": {
            "max_eval_examples": 20,
            "languages": {"pawsx": ["en", "de"], "tatoeba": ["de", "fr"]},
        },
    }
    return experiment_from_dict(raw)


def test_grid_trains_each_stage_once_then_nothing(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    real_train = loop.train

    def counting_train(model: Any, tasks: Any, *args: Any, **kwargs: Any) -> Any:
        calls["+".join(t.name for t in tasks)] += 1
        return real_train(model, tasks, *args, **kwargs)

    monkeypatch.setattr(loop, "train", counting_train)
    exp = _experiment(data_root, tmp_path / "out")
    plan = build_plan(exp)
    assert len(plan.stages) == 6  # base, sst2, qqp, pawsx x 3
    executor.run_experiment(exp, plan, progress=False)
    assert calls == {"sst2": 1, "qqp": 1, "pawsx": 3}  # sst2 shared by two chains: once
    assert all(stage.is_complete(s.dir) for s in plan.stages)

    with ResultsStore(exp.store_path) as store:
        table = xtreme_table(store)
        first = {(r, c): table.value(r, c) for r in table.rows for c in table.columns}
        assert list(table.rows) == ["none", "sst2", "sst2→qqp"]
        for option in table.rows:
            for target in ("pawsx", "tatoeba"):
                # A 2-step tiny model may sit at the majority class: kept, marked degenerate.
                cell = table.rows[option][target]
                values = (*cell.values, *cell.degenerate)
                assert len(values) == 1 and 0 <= values[0] <= 100
        assert language_table(store, "tatoeba").columns == ["de", "fr", "avg"]
        assert {r["status"] for r in store.stage_rows()} == {"complete"}

    calls.clear()
    again = build_plan(exp)
    assert all(s.cached for s in again.stages)
    executor.run_experiment(exp, again, progress=False)
    assert calls == {}
    with ResultsStore(exp.store_path) as store:
        table = xtreme_table(store)
        assert {(r, c): table.value(r, c) for r in table.rows for c in table.columns} == first


def test_executor_skips_complete_stages_with_fakes(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor calls run_stage only for incomplete stages and evaluates every stage."""
    exp = _experiment(data_root, tmp_path / "out")
    plan = build_plan(exp, count_examples=False)
    ran: list[str] = []
    evaluated: list[tuple[str, tuple[str, ...]]] = []

    def fake_run(spec: Any, stage_dir: Path, data_dir: Path, parent: Any, **kw: Any) -> dict:
        assert parent is None or stage.is_complete(parent)
        ran.append(spec.label)
        stage_dir.mkdir(parents=True)
        (stage_dir / "COMPLETE").write_text(spec.stage_id)
        return {"train_seconds": 1.0}

    def fake_eval(spec: Any, stage_dir: Path, data_dir: Path, tasks: Any, settings: Any) -> list:
        evaluated.append((spec.label, tuple(tasks)))
        return []

    monkeypatch.setattr(stage, "run_stage", fake_run)
    monkeypatch.setattr(stage, "evaluate_stage", fake_eval)
    executor.run_experiment(exp, plan, progress=False)
    assert ran == ["base", "pawsx", "sst2", "pawsx", "qqp", "pawsx"]
    assert ("base", ("tatoeba",)) in evaluated and ("qqp", ("tatoeba",)) in evaluated
    ran.clear()
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    assert ran == []
    assert len(evaluated) == 12
