"""The notebook API: ``import xstilts`` is light; load/plan/run/results/report on a tiny grid."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import xstilts
from conftest import tiny_encoder
from xstilts.cli import app
from xstilts.errors import ConfigError, DataError
from xstilts.reporting.collect import load_experiment_data

REPO = Path(__file__).resolve().parents[1]


def _raw(data_root: Path, out: Path) -> dict[str, Any]:
    return {
        "name": "api",
        "data_dir": str(data_root),
        "output_dir": str(out),
        "encoder": tiny_encoder(600, ["sst2", "pawsx"], 150, layers=1),
        "seeds": [1],
        "intermediate": ["none", "sst2"],
        "targets": ["pawsx"],
        "train": {
            "lr": 1e-3,
            "max_steps": 2,
            "batch_size": 8,
            "max_train_examples": 16,
            "max_dev_examples": 8,
            "max_length": 48,
            "precision": "fp32",
        },
        "evaluation": {"max_eval_examples": 12, "languages": {"pawsx": ["en", "de"]}},
    }


def test_import_is_light_and_results_is_callable_whatever_is_imported_first() -> None:
    code = (
        "import sys, xstilts; assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'transformers' not in sys.modules; import xstilts.results.store;"
        "assert callable(xstilts.results); from xstilts.results import ResultsStore;"
        "print(xstilts.__version__)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == xstilts.__version__


def test_load_experiment_overrides(data_root: Path, tmp_path: Path) -> None:
    exp = xstilts.load_experiment(_raw(data_root, tmp_path), seeds=[3, 4], train__lr=5e-4)
    assert exp.seeds == (3, 4) and exp.train["lr"] == 5e-4
    yaml_path = REPO / "configs" / "demo_tiny.yaml"
    demo = xstilts.load_experiment(yaml_path, check_data=False, train__batch_size=4)
    assert demo.train["batch_size"] == 4 and demo.name == "demo_tiny"
    with pytest.raises(ConfigError, match=r"train\.lr"):
        xstilts.load_experiment(_raw(data_root, tmp_path), train__lr__x=1)
    with pytest.raises(ConfigError, match="unknown key"):
        xstilts.load_experiment(_raw(data_root, tmp_path), trian={"lr": 1})
    with pytest.raises(DataError, match="no results store"):
        xstilts.results(tmp_path / "nothing-here")


@pytest.mark.slow
def test_plan_run_results_report(data_root: Path, tmp_path: Path) -> None:
    exp = xstilts.load_experiment(_raw(data_root, tmp_path / "out"))
    plan = xstilts.plan(exp)
    assert [s.spec.label for s in plan.stages] == ["base", "pawsx", "sst2", "pawsx"]
    assert not any(s.cached for s in plan.stages)
    out = xstilts.run(exp, progress=False)
    assert out == tmp_path / "out" and all(s.cached for s in xstilts.plan(exp).stages)

    df = xstilts.results(out)
    assert list(df.columns) == list(xstilts.api.RESULT_COLUMNS)
    assert set(df["condition"]) == {"none", "sst2"} and set(df["target"]) == {"pawsx"}
    assert set(df["language"]) == {"en", "de"} and set(df["seed"]) == {1}
    assert "accuracy" in set(df["metric"])
    assert str(df["degenerate"].dtype) == "bool" and str(df["value"].dtype) == "float64"
    # Every value is the store's, row for row.
    con = sqlite3.connect(out / "results.sqlite")
    stored = con.execute(
        "SELECT r.option, r.seed, r.target, m.language, m.metric, m.value FROM runs r JOIN "
        "metrics m ON m.stage_id = r.target_stage_id AND m.task = r.target"
    ).fetchall()
    con.close()
    assert sorted(stored) == sorted(
        df[["condition", "seed", "target", "language", "metric", "value"]].itertuples(
            index=False, name=None
        )
    )
    # degenerate agrees with the report's own flags, per run.
    flags = {
        (r.option, r.seed): r.degenerate for r in load_experiment_data(out / "results.sqlite").runs
    }
    for (cond, seed), group in df.groupby(["condition", "seed"]):
        assert set(group["degenerate"]) == {flags[(cond, seed)]}
    # results.json beside the store: config, versions, the chains' stages, every metric.
    doc = json.loads((out / "results.json").read_text())
    assert doc["experiment"] == "api" and doc["config"]["targets"] == ["pawsx"]
    assert {s["stage_id"] for s in doc["stages"]} == {s.stage_id for s in plan.stages}
    assert {"xstilts", "torch", "transformers"} <= set(doc["versions"])
    as_rows = sorted((r["condition"], r["seed"], r["target"], lang, metric, value)
                     for r in doc["runs"] for lang, ms in r["metrics"].items()
                     for metric, value in ms.items())  # fmt: skip
    assert as_rows == sorted(stored)
    # The YAML, the dir and the ExperimentSpec name the same results.
    assert xstilts.results(exp).equals(df)

    # A chain's last stage exported for transformers (by chain label, ASCII arrow accepted).
    cli = CliRunner()
    exported = cli.invoke(app, ["export", str(out), "--format", "hf", "--chain", "sst2->pawsx",
                                "--head", "pawsx"])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    target = next(c.target_stage_id for c in plan.chains if c.label == "sst2→pawsx")
    folder = out / "export-hf" / f"{target}-pawsx"
    assert json.loads((folder / "xstilts_export.json").read_text())["stage_id"] == target
    unknown = cli.invoke(app, ["export", str(out), "--format", "hf", "--chain", "mnli→pawsx"])
    assert (
        unknown.exit_code == 2 and "chains: " in unknown.output and "sst2→pawsx" in unknown.output
    )

    html = xstilts.report(out, n_boot=100, plots=False)
    assert html == out / "report" / "report.html" and html.stat().st_size > 1000
    assert "pawsx" in html.read_text(encoding="utf-8")
