"""``evaluation.retrieval.max_sentences``: BUCC mined on a deterministic subsample on CPU.

* a hand-made corpus keeps exactly every gold pair's sentences plus the first others in file
  order (ids and re-indexed gold checked by hand); gold beyond the cap is all kept, and said,
* the setting is part of a mining task's evaluation identity (not Tatoeba's), validated,
* end to end: the scores record and the per-example file hold the sentence counts, changing
  the cap re-scores (never retrains), and the report's notes say BUCC was subsampled.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import tiny_encoder
from xstilts.errors import ConfigError
from xstilts.pipelines import executor
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.reporting.collect import load_experiment_data, unscored_notes
from xstilts.results.store import ResultsStore
from xstilts.tasks import get_task
from xstilts.tasks.examples import RetrievalCorpus
from xstilts.tasks.formats import FeaturizeConfig
from xstilts.tasks.formats.retrieval import subsample_mining
from xstilts.tasks.readers.retrieval import read_bucc
from xstilts.training.evaluate import EvalSettings, eval_identity, eval_key

N_SRC, N_TGT = 10, 12
# (de index, en index): de-7 <-> en-2, de-3 <-> en-9, de-3 <-> en-10 (one sentence, two pairs)
GOLD = [(7, 2), (3, 9), (3, 10)]


def _write_bucc(folder: Path, n_src: int = N_SRC, n_tgt: int = N_TGT) -> Path:
    """``de-en.dev.{de,en,gold}`` in ``folder``; returns the ``.de`` file."""
    folder.mkdir(parents=True, exist_ok=True)
    de = "".join(f"de-{i}\tSatz Nummer {i} über Thema {i % 3}.\n" for i in range(n_src))
    en = "".join(f"en-{i}\tSentence number {i} about topic {i % 4}.\n" for i in range(n_tgt))
    gold = "".join(f"de-{s}\ten-{t}\n" for s, t in GOLD)
    (folder / "de-en.dev.de").write_text(de, encoding="utf-8")
    (folder / "de-en.dev.en").write_text(en, encoding="utf-8")
    (folder / "de-en.dev.gold").write_text(gold, encoding="utf-8")
    return folder / "de-en.dev.de"


def _corpus(tmp_path: Path) -> RetrievalCorpus:
    spec = get_task("bucc")
    path = _write_bucc(tmp_path / "bucc")
    (corpus,) = read_bucc(path, spec.splits["dev"][0], spec, "de")
    assert isinstance(corpus, RetrievalCorpus)
    return corpus


def test_the_subsample_keeps_gold_then_the_first_others_in_file_order(tmp_path: Path) -> None:
    cut, info = subsample_mining(_corpus(tmp_path), 5)
    # de: gold {3, 7} + first others 0, 1, 2; en: gold {2, 9, 10} + first others 0, 1
    assert cut.source_ids == ("de-0", "de-1", "de-2", "de-3", "de-7")
    assert cut.target_ids == ("en-0", "en-1", "en-2", "en-9", "en-10")
    assert cut.source[4] == "Satz Nummer 7 über Thema 1."  # sentences follow their ids
    assert cut.target[3] == "Sentence number 9 about topic 1."
    ids = {(cut.source_ids[s], cut.target_ids[t]) for s, t in cut.gold}
    assert ids == {("de-7", "en-2"), ("de-3", "en-9"), ("de-3", "en-10")}
    assert info == {"source": 5, "target": 5, "gold": 3, "source_total": N_SRC,
                    "target_total": N_TGT, "max_sentences": 5, "gold_over_cap": False}  # fmt: skip
    assert subsample_mining(_corpus(tmp_path), 5) == (cut, info)  # deterministic


def test_gold_beyond_the_cap_is_all_kept_and_said(tmp_path: Path) -> None:
    cut, info = subsample_mining(_corpus(tmp_path), 2)
    assert cut.source_ids == ("de-3", "de-7")  # 2 gold sentences: exactly the cap
    assert cut.target_ids == ("en-2", "en-9", "en-10")  # 3 gold sentences > cap 2: all kept
    assert len(cut.gold) == 3
    assert info["gold_over_cap"] is True
    whole, info = subsample_mining(_corpus(tmp_path), 100)  # a cap above the corpus: all kept
    assert (len(whole.source), len(whole.target), info["gold_over_cap"]) == (N_SRC, N_TGT, False)


def test_the_cap_is_part_of_a_mining_evaluation_identity_only() -> None:
    cpu = torch.device("cpu")

    def key(task: str, cap: int | None) -> str:
        settings = EvalSettings(retrieval_max_sentences=cap)
        ident = eval_identity(get_task(task), settings, FeaturizeConfig(), ["de"], {}, cpu)
        return eval_key(ident)

    assert len({key("bucc", None), key("bucc", 5), key("bucc", 6)}) == 3
    assert key("tatoeba", None) == key("tatoeba", 5)  # Tatoeba ignores it
    ident = eval_identity(get_task("bucc"), EvalSettings(), FeaturizeConfig(), ["de"], {}, cpu)
    assert "max_sentences" not in ident  # unset: keys cached before the setting stay valid


def _raw(data: Path, out: Path, cap: Any, targets: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": "bucc", "data_dir": str(data), "output_dir": str(out),
        "encoder": tiny_encoder(200, ["bucc"], 50), "intermediate": ["none"],
        "targets": targets or ["bucc"], "seeds": [0],
        "evaluation": {"precision": "fp32", "retrieval": {"max_sentences": cap, "layer": 1}},
    }  # fmt: skip


@pytest.mark.parametrize("cap", [0, 2.5, "ten", True])
def test_a_bad_cap_is_one_config_error(cap: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        experiment_from_dict(_raw(tmp_path, tmp_path / "out", cap), check_data=False)
    assert err.value.key == "evaluation.retrieval.max_sentences"


def test_a_cap_without_a_mining_target_is_a_warning(data_root: Path, tmp_path: Path) -> None:
    raw = _raw(data_root, tmp_path / "out", 5, targets=["tatoeba"])
    plan = build_plan(experiment_from_dict(raw, check_data=False), count_examples=False)
    assert any("max_sentences" in w and "unused" in w for w in plan.warnings)


def test_subsampled_bucc_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _write_bucc(data / "xtreme" / "bucc2018", n_src=30, n_tgt=40)

    def run(cap: int | None) -> Any:
        exp = experiment_from_dict(_raw(data, out, cap))
        assert exp.eval_settings().retrieval_max_sentences == cap
        executor.run_experiment(exp, build_plan(exp, count_examples=False), progress=False)
        return load_experiment_data(out / "results.sqlite")

    report = run(8)
    (only,) = report.runs
    assert only.details is not None
    want = {"source": 8, "target": 8, "gold": 3, "source_total": 30, "target_total": 40,
            "max_sentences": 8, "gold_over_cap": False}  # fmt: skip
    assert only.details["de"]["sentences"] == want
    assert len(only.details["de"]["ids"]) == 8  # one per mined source sentence
    with ResultsStore(out / "results.sqlite") as store:
        extra = store.conn.execute("SELECT extra FROM metrics WHERE task = 'bucc'").fetchone()[0]
    assert '"sentences"' in extra and '"source_total": 30' in extra
    notes = unscored_notes(report.runs, report.targets)
    assert [n for n in notes if "subsampled" in n] == [
        "bucc: BUCC subsampled: 8 x 8 sentences (of de 30 x 40; every gold pair kept, "
        "evaluation.retrieval.max_sentences)"
    ]
    caplog.set_level(logging.INFO)
    report = run(9)  # another cap: re-scored, and the report follows
    assert "max_sentences 8 -> 9" in caplog.text
    assert report.runs[0].details["de"]["sentences"]["source"] == 9
    report = run(None)  # no cap: the whole corpus, no note
    assert report.runs[0].details["de"].get("sentences") is None
    assert not [n for n in unscored_notes(report.runs, report.targets) if "subsampled" in n]
