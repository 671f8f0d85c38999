"""The command line: tasks listing, plan output, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.reporting.task_view import _split_summary
from xstilts.tasks import get_task, list_tasks

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo_tiny.yaml"
runner = CliRunner()


def test_tasks_lists_every_task(data_root: Path) -> None:
    result = runner.invoke(app, ["tasks", "--data-dir", str(data_root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in list_tasks():
        assert f" {name} " in result.output
    assert "train: en 8,999" in result.output  # MNLI's train file, counted
    # SQuAD is absent: its documented stand-in (TyDiQA-en train) is read, and marked so.
    assert _split_summary(get_task("squad"), data_root, "train") == (
        "train: en 3,696 [yellow](stand-in)[/]"
    )
    assert "(stand-in)" not in _split_summary(get_task("mnli"), data_root, "train")


def test_tasks_show_decodes_examples(data_root: Path) -> None:
    result = runner.invoke(app, ["tasks", "show", "pawsx", "--data-dir", str(data_root)])
    assert result.exit_code == 0, result.output
    assert "3 features from 3 train/en examples" in result.output
    assert result.output.count("<s>") >= 3


def test_plan_shows_stage_counts(data_root: Path, tmp_path: Path) -> None:
    args = ["plan", str(DEMO), f"data_dir={data_root}", f"output_dir={tmp_path}"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # The console may have been sized before COLUMNS was set (80 columns): compare unwrapped.
    text = " ".join(result.output.split())
    # 1 base + mnli + squad + mnli→squad + 4 options x 5 trained targets.
    assert "distinct stages: 24 (1 base, 23 trained); cached: 0; to run: 24" in text
    assert "chains: 28 (4 options x 7 targets x 1 seeds)" in text
    # Alone: 400 x (5 trained targets x (1+2+2+3) stages + 2 retrieval targets x (0+1+1+2)).
    assert "19,200 running each chain alone vs 9,200 with shared prefixes" in text
    # By hand: intermediates once per option (0 + 400 + 400 + 800) + 4 x 5 targets x 400.
    assert (
        "vs 9,600 training each option's intermediates once by hand: sharing saves 400 (4%)" in text
    )


def test_bad_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nintermediate: [mnli\n")
    result = runner.invoke(app, ["plan", str(bad)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "bad.yaml" in lines[0]
    assert "Traceback" not in result.output


def test_bad_override_and_unknown_task(data_root: Path) -> None:
    result = runner.invoke(app, ["plan", str(DEMO), "targets=[xnil]"])
    assert result.exit_code == 2
    assert "[targets.0]" in result.stderr and "did you mean 'xnli'" in result.stderr
    result = runner.invoke(app, ["tasks", "show", "nope"])
    assert result.exit_code == 2


def test_results_prints_tables_from_a_store(tmp_path: Path) -> None:
    from xstilts.pipelines.plan import Chain
    from xstilts.results.store import ResultsStore
    from xstilts.training.evaluate import EvalRecord

    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.record_experiment("e", {})
        store.replace_runs("e", [Chain("mnli→xnli", "mnli", "xnli", 1, ("b", "m", "s"))])
        store.record_metrics("s", 1, [EvalRecord("xnli", "1", "de", "dev", "accuracy", 61.5, 9)])
    result = runner.invoke(app, ["results", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "61.5" in result.output and "XTREME" in result.output
    assert "missing: pawsx" in result.output
    missing = runner.invoke(app, ["results", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "no results store" in missing.stderr


def test_progress_bars_show_examples_per_second_and_eta() -> None:
    import io

    from rich.console import Console

    from xstilts.pipelines.executor import _bars
    from xstilts.training.loop import Progress

    out = io.StringIO()
    console = Console(file=out, width=150, force_terminal=False)
    with _bars(True, 3, console) as bars:
        bars.steps = bars.progress.add_task("  steps", total=None)
        bars.on_step(Progress(5, 10, 160, 1234.4, 0.6931, None))
        task = bars.progress.tasks[-1]
        assert (task.completed, task.total) == (5, 10)
        assert "1,234 ex/s" in task.description and "loss 0.693" in task.description
    assert "eta" in out.getvalue()


def test_results_and_report_read_the_yaml_with_its_overrides(tmp_path: Path) -> None:
    """``output_dir=`` / ``name=`` given to ``run`` must find the same store and experiment
    afterwards, not the YAML's default one (a stale number)."""
    from xstilts.pipelines.plan import Chain
    from xstilts.results.store import ResultsStore
    from xstilts.training.evaluate import EvalRecord

    def store(folder: Path, name: str, value: float) -> None:
        with ResultsStore(folder / "results.sqlite") as s:
            s.record_experiment(name, {})
            s.replace_runs(name, [Chain("mnli→xnli", "mnli", "xnli", 1, ("b", name, "s" + name))])
            s.record_metrics(
                "s" + name, 1, [EvalRecord("xnli", "1", "de", "dev", "accuracy", value, 9)]
            )

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "name: b\noutput_dir: default\nencoder: {name: xlm-roberta-large}\nseeds: [1]\n"
        "intermediate: [none, mnli]\ntargets: [xnli]\n"
    )
    for folder in ("default", "other"):
        (tmp_path / folder).mkdir()
    store(tmp_path / "default", "b", 61.5)
    store(tmp_path / "other", "b", 70.25)
    store(tmp_path / "other", "a", 12.75)  # recorded last: the store's "most recent" experiment
    env = {"COLUMNS": "200"}
    plain = runner.invoke(app, ["results", str(cfg)], env=env)
    assert plain.exit_code == 0, plain.output
    assert "61.5" in plain.output and "70.2" not in plain.output
    moved = runner.invoke(app, ["results", str(cfg), "output_dir=other"], env=env)
    assert moved.exit_code == 0, moved.output
    assert "70.2" in moved.output and "61.5" not in moved.output and "12.8" not in moved.output
    renamed = runner.invoke(app, ["results", str(cfg), "output_dir=other", "name=a"], env=env)
    assert "12.8" in renamed.output and "70.2" not in renamed.output
    wrong = runner.invoke(app, ["report", str(tmp_path / "other"), "output_dir=x"])
    assert wrong.exit_code == 2
    assert "[output_dir]" in wrong.stderr and "not an experiment YAML" in wrong.stderr
