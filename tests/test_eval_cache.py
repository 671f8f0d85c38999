"""Issue 12, finding 1: a cached evaluation is reused only for exactly the data it scored.

One tiny PAWS-X run (base + target stage) is made once; every test copies its stages and its
data into a fresh folder, changes the evaluation data, runs again and checks that the stage is
NOT retrained, the evaluation IS redone (and the run says why), and the results store then
holds the new scores only.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import tiny_encoder
from xstilts.pipelines import executor, stage
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.tables import language_table
from xstilts.results.store import ResultsStore
from xstilts.tasks import get_task
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.training import evaluate, loop

pytestmark = pytest.mark.slow

PAWSX = ("train-en.tsv", "dev-en.tsv", "dev-de.tsv", "dev-fr.tsv")
N_EVAL = 20  # examples scored per language: one flipped gold label moves accuracy by 5.0


def _experiment(data: Path, out: Path) -> Any:
    raw = {
        "name": "cache", "data_dir": str(data), "output_dir": str(out),
        "encoder": tiny_encoder(600, ["pawsx"], 200),
        "seeds": [1], "intermediate": ["none"], "targets": ["pawsx"],
        "train": {"lr": 1e-3, "max_steps": 2, "batch_size": 8, "max_train_examples": 32,
                  "max_dev_examples": 16, "max_length": 64, "precision": "fp32"},
        "evaluation": {"max_eval_examples": N_EVAL, "precision": "fp32"},
    }  # fmt: skip
    return experiment_from_dict(raw)


@pytest.fixture(scope="module")
def primed(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data/`` (a PAWS-X slice: en, de, fr) and ``out/`` (trained and evaluated once).

    English dev selects the model (it is training data: changing it retrains, rightly); the
    tests change the other languages' files, which are evaluation data only.
    """
    root = tmp_path_factory.mktemp("primed")
    (root / "data" / "xtreme" / "pawsx").mkdir(parents=True)
    for name in PAWSX:
        shutil.copy(data_root / "xtreme" / "pawsx" / name, root / "data" / "xtreme" / "pawsx")
    exp = _experiment(root / "data", root / "out")
    executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
    return root


class Run:
    """A copy of the primed run in its own folder, re-run with counters on train and evaluate."""

    def __init__(self, primed: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shutil.copytree(primed / "data", tmp / "data")
        shutil.copytree(primed / "out", tmp / "out")
        self.data, self.out = tmp / "data", tmp / "out"
        self.calls: Counter[str] = Counter()
        real_train, real_eval = loop.train, evaluate.evaluate_featurized

        def counting_train(*args: Any, **kwargs: Any) -> Any:
            self.calls["train"] += 1
            return real_train(*args, **kwargs)

        def counting_eval(model: Any, spec: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls[f"evaluate {spec.name}"] += 1  # one pass over all languages of a task
            return real_eval(model, spec, *args, **kwargs)

        monkeypatch.setattr(loop, "train", counting_train)
        monkeypatch.setattr(evaluate, "evaluate_featurized", counting_eval)

    def run(self, data: Path | None = None) -> Any:
        exp = _experiment(data or self.data, self.out)
        plan = build_plan(exp, count_examples=False)
        assert all(s.cached for s in plan.stages)  # evaluation data never enters a stage id
        executor.run_experiment(exp, plan, progress=False)
        return exp

    def scores(self) -> dict[str, float]:
        with ResultsStore(self.out / "results.sqlite") as store:
            (run,) = store.runs("cache")
            metrics = store.task_metrics(run.target_stage_id, "pawsx")
        return {lang: m["accuracy"] for lang, m in metrics.items()}

    def evaluation(self) -> dict[str, Any]:
        with ResultsStore(self.out / "results.sqlite") as store:
            (run,) = store.runs("cache")
            return store.evaluations()[(run.target_stage_id, "pawsx")]


def _flip_first_label(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cols = lines[0].rstrip("\n").split("\t")
    cols[-1] = {"0": "1", "1": "0"}[cols[-1]]
    lines[0] = "\t".join(cols) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def test_unchanged_data_is_served_from_the_cache(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    before = run.scores()
    run.run()  # another folder, the same bytes: the cached scores are the right ones
    assert run.calls == {}
    assert run.scores() == before
    assert run.evaluation()["status"] == "cached"


def test_a_fixed_label_rescores_without_retraining(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    before = run.scores()
    _flip_first_label(run.data / "xtreme" / "pawsx" / "dev-de.tsv")
    with caplog.at_level(logging.WARNING, logger="xstilts"):
        run.run()
    assert run.calls == {"evaluate pawsx": 1}  # evaluated again, nothing trained
    after = run.scores()
    # The flipped example is now right where it was wrong, or wrong where it was right.
    assert abs(after["de"] - before["de"]) == pytest.approx(100 / N_EVAL)
    assert after["en"] == pytest.approx(before["en"])
    assert after["fr"] == pytest.approx(before["fr"])
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "re-evaluating" in said and "changed xtreme/pawsx/dev-de.tsv" in said
    row = run.evaluation()
    assert row["status"] == "evaluated" and "changed xtreme/pawsx/dev-de.tsv" in row["reason"]
    assert set(row["files"]) == {f"xtreme/pawsx/dev-{lang}.tsv" for lang in ("de", "en", "fr")}


def test_a_new_language_file_is_scored(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    shutil.copy(data_root / "xtreme/pawsx/dev-es.tsv", run.data / "xtreme/pawsx/dev-es.tsv")
    run.run()
    assert run.calls == {"evaluate pawsx": 1}
    assert set(run.scores()) == {"de", "en", "es", "fr"}
    assert "added xtreme/pawsx/dev-es.tsv" in run.evaluation()["reason"]
    assert run.evaluation()["languages"] == {lang: N_EVAL for lang in ("de", "en", "es", "fr")}


def test_added_rows_rescore_and_a_removed_language_leaves_no_stale_row(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    before = run.scores()
    de = run.data / "xtreme/pawsx/dev-de.tsv"
    de.write_text(de.read_text(encoding="utf-8") * 2, encoding="utf-8")  # rows appended
    (run.data / "xtreme/pawsx/dev-fr.tsv").unlink()
    run.run()
    assert run.calls == {"evaluate pawsx": 1}
    after = run.scores()
    assert set(after) == {"de", "en"}  # fr's old score is gone from the store
    assert after["de"] == pytest.approx(before["de"])  # the first N_EVAL rows are unchanged
    reason = run.evaluation()["reason"]
    assert "changed xtreme/pawsx/dev-de.tsv" in reason
    assert "removed xtreme/pawsx/dev-fr.tsv" in reason
    with ResultsStore(run.out / "results.sqlite") as store:
        assert language_table(store, "pawsx").columns == ["de", "en", "avg"]


def test_another_data_dir_with_other_files_is_rescored(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run.data, elsewhere)
    _flip_first_label(elsewhere / "xtreme" / "pawsx" / "dev-fr.tsv")
    before = run.scores()
    run.run(elsewhere)
    assert run.calls == {"evaluate pawsx": 1}
    assert abs(run.scores()["fr"] - before["fr"]) == pytest.approx(100 / N_EVAL)
    row = run.evaluation()
    assert row["data_dir"] == str(elsewhere.resolve())
    # The cached scores were computed in the primed folder (this copy only reused them).
    assert f"data_dir {(primed / 'data').resolve()} -> {elsewhere.resolve()}" in row["reason"]


@pytest.mark.parametrize(
    "content",
    ['{"identity": {"task": "pawsx"}, "records": []}', "\x00garbage{", "[1, 2]"],
    ids=["another identity", "not JSON", "old list format"],
)
def test_an_unreadable_cache_file_is_not_trusted(
    primed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    run = Run(primed, tmp_path, monkeypatch)
    before = run.scores()
    (stage_dir,) = (p for p in (run.out / "stages").iterdir() if (p / "eval").is_dir())
    for cache in (stage_dir / "eval").glob("pawsx-*.json"):
        cache.write_text(content)
    run.run()
    assert run.calls == {"evaluate pawsx": 1}
    assert run.scores() == before


def test_the_key_holds_the_effective_precision() -> None:
    """``auto`` is bf16 on CUDA and fp32 elsewhere: a CPU score is not reused on a GPU."""
    task = get_task("pawsx")

    def key(precision: str, device: str) -> str:
        settings = evaluate.EvalSettings(precision=precision)
        ident = evaluate.eval_identity(
            task, settings, FeaturizeConfig(), ["de"], {}, torch.device(device)
        )
        return evaluate.eval_key(ident)

    assert key("auto", "cpu") == key("fp32", "cpu") == key("fp32", "cuda")
    assert key("auto", "cuda") == key("bf16", "cpu") != key("auto", "cpu")


def test_stage_module_still_evaluates(primed: Path, data_root: Path) -> None:
    """``stage.evaluate_stage`` (the executor's entry point) returns records and summaries."""
    exp = _experiment(primed / "data", primed / "out")
    planned = build_plan(exp, count_examples=False).stages[-1]
    results = stage.evaluate_stage(
        planned.spec, planned.dir, exp.data_dir, ["pawsx"], exp.eval_settings(),
        device=torch.device("cpu"),
    )  # fmt: skip
    assert {r.language for r in results} == {"de", "en", "fr"}
    (summary,) = results.summaries
    assert summary.status == "cached"
    assert summary.languages == {"de": N_EVAL, "en": N_EVAL, "fr": N_EVAL}
