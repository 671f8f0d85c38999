"""Metrics: hand-computed values and equality with the official seqeval implementation."""

from __future__ import annotations

import random
import warnings

import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.metrics import (
    XTREME_TASKS,
    accuracy,
    entity_scores,
    exact_match,
    f1,
    get_entities,
    mlqa_scores,
    normalize_answer,
    squad_scores,
    task_score,
    xtreme_score,
)
from xstilts.metrics import mlqa as mlqa_mod
from xstilts.tasks import get_task
from xstilts.tasks.formats import task_score_of

# ---------------------------------------------------------------- classification


def test_accuracy_percent() -> None:
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 75.0


def test_accuracy_rejects_misaligned_and_empty() -> None:
    with pytest.raises(DataError, match="3 predictions for 2 references"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(DataError, match="zero examples"):
        accuracy([], [])


# ---------------------------------------------------------------- seqeval


def test_get_entities_iob() -> None:
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # Lenient mode: an I- tag opens a chunk, and a type change splits one.
    assert get_entities(["I-PER", "I-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 2, 2)]
    assert get_entities(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]


def test_get_entities_iobes() -> None:
    tags = ["S-PER", "B-LOC", "I-LOC", "E-LOC", "E-LOC", "O"]
    assert get_entities(tags) == [("PER", 0, 0), ("LOC", 1, 3), ("LOC", 4, 4)]


def test_get_entities_pos_quirks() -> None:
    # Bare POS tags: first letter is the "prefix", the rest the type; identical tags merge.
    tags = ["NOUN", "NOUN", "VERB", "DET", "NOUN"]
    assert get_entities(tags) == [("OUN", 0, 1), ("ERB", 2, 2), ("ET", 3, 3), ("OUN", 4, 4)]
    # "X" has type "_", the same as "O": a final X is never closed, hence dropped ...
    assert get_entities(["NOUN", "X"]) == [("OUN", 0, 0)]
    # ... and X runs merge across the "O" that seqeval puts between sentences.
    assert get_entities(["X", "O", "X", "NOUN"]) == [("_", 0, 2), ("OUN", 3, 3)]
    # "SCONJ" has prefix S (single-token chunks), "INTJ" prefix I (continues a chunk).
    assert get_entities(["SCONJ", "SCONJ"]) == [("CONJ", 0, 0), ("CONJ", 1, 1)]
    assert get_entities(["INTJ", "INTJ"]) == [("NTJ", 0, 1)]
    assert get_entities(["ADP", "ADV"]) == [("DP", 0, 0), ("DV", 1, 1)]


def test_entity_scores_hand_computed() -> None:
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    hyps = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG"]]
    # gold {PER 0-1, LOC 3, ORG 5}; predicted {PER 0-1, ORG 3, ORG 5}: 2 correct of 3 and 3.
    scores = entity_scores(refs, hyps)
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)


def test_entity_scores_sentence_boundary_splits_chunks() -> None:
    # Without the implicit "O" between sentences the two NOUNs would be one chunk.
    refs = [["NOUN"], ["NOUN"]]
    hyps = [["NOUN"], ["VERB"]]
    scores = entity_scores(refs, hyps)
    assert (scores["precision"], scores["recall"]) == (50.0, 50.0)


def test_entity_scores_zero_division_gives_zero() -> None:
    assert entity_scores([["O", "O"]], [["O", "O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_entity_scores_rejects_misaligned() -> None:
    with pytest.raises(DataError, match="sentence 1: 2 reference tags but 1 predicted"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(DataError, match="1 predicted sentences for 2"):
        entity_scores([["O"], ["O"]], [["O"]])


_TAG_SETS = {
    "iob": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    "iobes": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
    "pos": [
        "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
        "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
    ],
    # Odd corners of the state machine: bare prefixes, '.', dashes inside the type.
    "mixed": ["O", "B-PER", "I-PER", "E-LOC", "S-LOC", "NOUN", "X", "INTJ", "SCONJ", "B", "I",
              ".", ".-PER", "B-I-X", "I-I-X", "E"],
}  # fmt: skip


@pytest.mark.parametrize("scheme", sorted(_TAG_SETS))
def test_entity_scores_equal_seqeval(scheme: str) -> None:
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.metrics.sequence_labeling import get_entities as seqeval_entities

    rng = random.Random(sorted(_TAG_SETS).index(scheme))
    tags = _TAG_SETS[scheme]
    for _ in range(150):
        # Few tags per corpus so that correct chunks (and merges) are frequent.
        pool = rng.sample(tags, k=rng.randint(2, min(5, len(tags))))
        lengths = [rng.randint(0, 8) for _ in range(rng.randint(1, 5))]
        refs = [[rng.choice(pool) for _ in range(n)] for n in lengths]
        hyps = [[t if rng.random() < 0.6 else rng.choice(pool) for t in sent] for sent in refs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # seqeval warns on POS tags and zero division
            expected = {
                "precision": 100 * seqeval_metrics.precision_score(refs, hyps),
                "recall": 100 * seqeval_metrics.recall_score(refs, hyps),
                "f1": 100 * seqeval_metrics.f1_score(refs, hyps),
            }
            for sent in refs:
                assert get_entities(sent) == seqeval_entities(list(sent))
        got = entity_scores(refs, hyps)
        assert got == pytest.approx(expected, abs=1e-9), (refs, hyps)


# ---------------------------------------------------------------- SQuAD


def test_squad_normalize_answer() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    # Only ASCII punctuation: SQuAD keeps the inverted question mark.
    assert normalize_answer("¿Qué?") == "¿qué"


def test_squad_em_f1() -> None:
    assert exact_match("An Apple.", "apple")
    assert not exact_match("apple pie", "apple")
    # pred [cat, sat], gold [cat, sat, on, mat]: P = 1, R = 1/2.
    assert f1("the cat sat", "a cat sat on mat") == pytest.approx(2 / 3)
    assert f1("dog", "cat") == 0.0


def test_squad_scores_max_over_golds_mean_over_questions() -> None:
    scores = squad_scores(["cat sat", "blue"], [["the cat sat on mat", "cat sat"], ["red"]])
    assert scores == {"exact_match": 50.0, "f1": 50.0}
    scores = squad_scores(["cat sat"], [["the cat sat on the mat", "sat"]])
    # golds: [cat, sat, on, mat] -> F1 2/3; [sat] -> P 1/2 R 1 -> 2/3.
    assert scores["f1"] == pytest.approx(200 / 3)


def test_squad_scores_errors() -> None:
    with pytest.raises(DataError, match="question 1 has no gold answer"):
        squad_scores(["a", "b"], [["a"], []])
    with pytest.raises(DataError, match="1 predictions for 2 questions"):
        squad_scores(["a"], [["a"], ["b"]])


# ---------------------------------------------------------------- MLQA


def test_mlqa_zh_character_f1() -> None:
    # pred [北 京 大 学], gold [北 京]: P = 1/2, R = 1 -> F1 2/3.
    assert mlqa_mod.f1("北京大学", "北京", "zh") == pytest.approx(2 / 3)
    assert mlqa_mod.exact_match("北京。", "北京", "zh")
    assert mlqa_mod.normalize_answer("2008年 奥运会 Games", "zh") == "2008 年 奥 运 会 games"
    assert mlqa_scores(["北京大学"], [["北京"]], "zh") == pytest.approx(
        {"exact_match": 0.0, "f1": 200 / 3}
    )


def test_mlqa_arabic_article_and_punctuation() -> None:
    assert mlqa_mod.normalize_answer("الكتاب،", "ar") == "كتاب"
    # The official rule removes every "ال", also inside and at the end of words.
    assert mlqa_mod.normalize_answer("رجال", "ar") == "رج"
    assert mlqa_mod.exact_match("الكتاب", "كتاب", "ar")


def test_mlqa_hindi_punctuation_no_articles() -> None:
    assert mlqa_mod.exact_match("भारत।", "भारत", "hi")
    assert mlqa_mod.normalize_answer("the film", "hi") == "the film"


def test_mlqa_articles_per_language() -> None:
    assert mlqa_mod.exact_match("el perro", "Perro", "es")
    # [casas, blancas] vs [casas]: P = 1/2, R = 1.
    assert mlqa_mod.f1("las casas blancas", "casas", "es") == pytest.approx(2 / 3)
    assert mlqa_mod.exact_match("Einem Hund", "der hund", "de")
    assert mlqa_mod.normalize_answer("cái bàn của tôi", "vi") == "bàn tôi"
    # Spanish articles are not English ones and vice versa.
    assert mlqa_mod.normalize_answer("the perro", "es") == "the perro"
    assert mlqa_mod.normalize_answer("el dog", "en") == "el dog"


def test_mlqa_unicode_punctuation_differs_from_squad() -> None:
    assert mlqa_mod.normalize_answer("“Quoted” ¿sí?", "es") == "quoted sí"
    assert normalize_answer("“Quoted”") == "“quoted”"


def test_mlqa_scores_aggregate_and_unknown_language() -> None:
    scores = mlqa_scores(["der Hund", "Katze"], [["Hund"], ["eine Maus", "Katzen"]], "de")
    assert scores == {"exact_match": 50.0, "f1": 50.0}
    with pytest.raises(ConfigError, match="no rules for language 'fr'"):
        mlqa_scores(["a"], [["a"]], "fr")


# ---------------------------------------------------------------- XTREME score


def test_task_score_per_type() -> None:
    # The task type picks each language's number (``language_score``); task_score averages.
    qa = {"en": {"exact_match": 60.0, "f1": 80.0}, "de": {"exact_match": 40.0, "f1": 50.0}}
    assert task_score_of(get_task("xquad"), qa) == pytest.approx((70 + 45) / 2)
    acc = {"en": {"accuracy": 80.0}, "fr": {"accuracy": 70.0}}
    assert task_score_of(get_task("xnli"), acc) == 75
    assert task_score_of(get_task("panx"), {"en": {"f1": 90.0, "precision": 1.0}}) == 90
    assert task_score_of(get_task("bucc"), {"zh": {"f1": 60.0, "threshold": 1.1}}) == 60
    assert task_score_of(get_task("tatoeba"), {"de": {"accuracy": 55.0}}) == 55
    # Mining is declared, not guessed from the score keys: BUCC without F1 is an error.
    with pytest.raises(DataError, match="has no 'f1' score"):
        task_score_of(get_task("bucc"), {"de": {"accuracy": 55.0}})
    assert task_score({"a": {"x": 1.0}, "b": {"x": 4.0}}, lambda lang, s: s["x"] * 2) == 5.0


def test_task_score_errors() -> None:
    with pytest.raises(DataError, match="language 'de' has no 'f1' score"):
        task_score_of(get_task("udpos"), {"en": {"f1": 1.0}, "de": {"accuracy": 1.0}})
    with pytest.raises(DataError, match="no languages"):
        task_score_of(get_task("udpos"), {})


def test_xtreme_score_needs_all_nine() -> None:
    scores = {name: float(i) for i, name in enumerate(XTREME_TASKS)}
    assert xtreme_score(scores) == (pytest.approx(4.0), [])
    del scores["bucc"], scores["xnli"]
    scores["mnli"] = 99.0
    assert xtreme_score(scores) == (None, ["xnli", "bucc"])
