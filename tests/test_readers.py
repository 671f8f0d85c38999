"""Readers on the real shared data (exact counts from its README) and on malformed inputs."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples
from xstilts.tasks.examples import Example
from xstilts.tasks.readers import get_reader

CCG_FIXTURE = Path(__file__).parent / "fixtures" / "ccg"


def _read(task: str, split: str, path: Path, lang: str = "en") -> list[Example]:
    """Run the reader of ``task``'s first ``split`` source on ``path``."""
    spec = get_task(task)
    source = spec.splits[split][0]
    return get_reader(source.reader)(path, source, spec, lang)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- real shared data


def test_xnli_dev_de_has_600_rows_200_per_label(data_root: Path) -> None:
    spec = get_task("xnli")
    examples = load_examples(spec, data_root, "dev", "de")
    assert len(examples) == 600
    assert Counter(spec.labels[ex.label] for ex in examples) == {
        "entailment": 200,
        "neutral": 200,
        "contradiction": 200,
    }
    first = examples[0]
    assert first.text_a == "und er hat gesagt, Mama ich bin daheim."
    assert spec.labels[first.label] == "neutral"


def test_pawsx_es_quoted_fields_are_unquoted(data_root: Path) -> None:
    examples = load_examples(get_task("pawsx"), data_root, "dev", "es")
    assert len(examples) == 600
    # File line 9: `NS<TAB>"El Cementerio ... ''Cementerio Macpelah"" o ..."<TAB>0`
    row9 = examples[8]
    assert row9.origin.endswith("dev-es.tsv:9")
    assert row9.text_b.startswith("El Cementerio Machpelah, también escrito como ")
    assert "''Cementerio Macpelah\" o ''Cementerio Macphelah\"," in row9.text_b
    assert row9.label == 0
    # README: 39 es rows have at least one quoted field; each now differs from a raw split.
    raw = (data_root / "xtreme/pawsx/dev-es.tsv").read_text(encoding="utf-8").split("\n")
    changed = sum(
        (ex.text_a, ex.text_b) != tuple(line.split("\t")[:2])
        for ex, line in zip(examples, raw, strict=False)
    )
    assert changed == 39
    assert not any(ex.text_a.startswith('"') and ex.text_a.endswith('"') for ex in examples)


def test_tsv_splits_lines_on_newline_only(tmp_path: Path) -> None:
    # Full PAWS-X dev-ko row 824 holds a \x1c, which str.splitlines() would treat as a break.
    path = _write(tmp_path / "dev-ko.tsv", 'a\x1cb\tc\t1\r\n"q ""x"""\td\t0\n')
    first, second = _read("pawsx", "dev", path, lang="ko")
    assert (first.text_a, first.text_b, first.label) == ("a\x1cb", "c", 1)
    assert second.text_a == 'q "x"'


def test_glue_tsvs_by_header_name(data_root: Path) -> None:
    qqp = load_examples(get_task("qqp"), data_root, "train", "en")
    assert len(qqp) == 8999
    # train.tsv row id 3: question2 `"""Marriage is an institution."" What does this mean?"`
    assert qqp[3].text_a == "Marriage"
    assert qqp[3].text_b == '"Marriage is an institution." What does this mean?'
    sst2 = load_examples(get_task("sst2"), data_root, "dev", "en")
    assert len(sst2) == 872
    assert sst2[0].text_b is None and sst2[0].label == 1
    assert sst2[0].origin.endswith("dev.tsv:2")  # line 1 is the header


def test_nli_jsonl_counts_and_anli_label_map(data_root: Path) -> None:
    assert len(load_examples(get_task("mnli"), data_root, "train", "en")) == 8999
    anli_spec = get_task("anli")
    anli = load_examples(anli_spec, data_root, "dev", "en")
    assert len(anli) == 1000 + 1000 + 1198
    assert set(Counter(ex.label for ex in anli)) == {0, 1, 2}


def test_snli_dev_skips_16_dash_records_and_logs_the_count(
    data_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="xstilts"):
        examples = load_examples(get_task("snli"), data_root, "dev", "en")
    assert len(examples) == 1289 - 16
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1
    assert "snli_1.0_dev.jsonl: skipped 16 record(s)" in warnings[0]


def test_panx_dev_en_500_sentences_and_train_5000(data_root: Path) -> None:
    spec = get_task("panx")
    dev = load_examples(spec, data_root, "dev", "en")
    assert len(dev) == 500
    assert dev[0].tokens[:3] == ("Sioux", "Falls", "Arena")
    assert [spec.labels[t] for t in dev[0].tags[:3]] == ["B-ORG", "I-ORG", "I-ORG"]
    assert len(load_examples(spec, data_root, "train", "en")) == 5000


def test_ud_en_test_300_sentences_skips_multiword_ranges(data_root: Path) -> None:
    spec = get_task("udpos")
    examples = load_examples(spec, data_root, "test", "en")
    assert len(examples) == 300
    assert examples[0].tokens == ("What", "if", "Google", "Morphed", "Into", "GoogleOS", "?")
    assert [spec.labels[t] for t in examples[0].tags] == [
        "PRON", "SCONJ", "PROPN", "VERB", "ADP", "PROPN", "PUNCT",
    ]  # fmt: skip
    # Sentence 5 has the range `6-7 Google's`: only its parts 6 `Google` and 7 `'s` are kept.
    assert examples[4].tokens[4:8] == ("that", "Google", "'s", "rush")
    # 5,224 integer-ID token lines in the file (grep -c -P '^\d+\t').
    assert sum(len(ex.tokens) for ex in examples) == 5224


def test_tydiqa_en_train_3696_qas_with_unique_guids(data_root: Path) -> None:
    examples = load_examples(get_task("tydiqa"), data_root, "train", "en")
    assert len(examples) == 3696
    assert len({ex.guid for ex in examples}) == 3696
    assert len({ex.guid.split("#")[0] for ex in examples}) == 89  # README: 89 distinct ids
    assert examples[0].guid == "12#0"
    assert examples[0].answers[0].text == "1920s" and examples[0].answers[0].start == 159


def test_tydiqa_dev_is_unlabelled_and_keeps_full_ids(data_root: Path) -> None:
    examples = load_examples(get_task("tydiqa"), data_root, "dev", "en")
    assert len(examples) == 150
    assert all(ex.answers == () for ex in examples)
    assert examples[0].guid == "english--3215621880858840488-2"


def test_xquad_and_mlqa_answers_sit_at_their_offsets(data_root: Path) -> None:
    xquad = load_examples(get_task("xquad"), data_root, "test", "de")
    mlqa = load_examples(get_task("mlqa"), data_root, "dev", "zh")
    assert (len(xquad), len(mlqa)) == (536, 150)
    for ex in xquad + mlqa:
        assert ex.answers
        for ans in ex.answers:
            assert ex.context[ans.start : ans.start + len(ans.text)] == ans.text


def test_tatoeba_te_has_234_aligned_pairs(data_root: Path) -> None:
    (corpus,) = load_examples(get_task("tatoeba"), data_root, "test", "te")
    assert len(corpus.source) == len(corpus.target) == 234
    assert corpus.gold == tuple((i, i) for i in range(234))


def test_bucc_zh_has_257_gold_pairs(data_root: Path) -> None:
    (corpus,) = load_examples(get_task("bucc"), data_root, "dev", "zh")
    assert (len(corpus.source), len(corpus.target), len(corpus.gold)) == (8624, 13589, 257)
    src, tgt = corpus.gold[0]
    assert (corpus.source_ids[src], corpus.target_ids[tgt]) == ("zh-000000057", "en-000008530")


def test_multiple_choice_counts(data_root: Path) -> None:
    csqa = load_examples(get_task("commonsenseqa"), data_root, "dev", "en")
    hella = load_examples(get_task("hellaswag"), data_root, "dev", "en")
    cosmos = load_examples(get_task("cosmosqa"), data_root, "dev", "en")
    assert (len(csqa), len(hella), len(cosmos)) == (321, 1000, 584)
    assert csqa[0].choices[2] == "convention center" and csqa[0].label == 2  # answerKey C
    assert hella[0].context == "A man is kneeling down on a blue mat. another man"
    assert hella[0].label == 3 and len(hella[0].choices) == 4
    assert all(len(ex.choices) == 4 for ex in cosmos)
    assert not any(c.endswith("\r") for ex in cosmos for c in (*ex.choices, ex.question))


def test_ccg_fixture_words_and_supertags() -> None:
    spec = get_task("ccg")
    dev = load_examples(spec, CCG_FIXTURE, "dev", "en")
    assert [ex.guid for ex in dev] == ["wsj_0001.1", "wsj_0001.2"]
    assert dev[1].tokens == ("Mr.", "Vinken", "is", "chairman", ".")
    assert [spec.labels[t] for t in dev[1].tags] == ["N/N", "N", "(S[dcl]\\NP)/NP", "N", "."]
    assert dev[0].tokens[:6] == ("Pierre", "Vinken", ",", "61", "years", "old")
    assert spec.labels[dev[0].tags[5]] == "(S[adj]\\NP)\\NP"
    assert spec.labels[dev[0].tags[15]] == "((S\\NP)\\(S\\NP))/N[num]"
    assert len(dev[0].tokens) == 18
    (train,) = load_examples(spec, CCG_FIXTURE, "train", "en")
    # `((S[dcl]\NP)/NP)/PP` is outside the inventory: mapped to the catch-all, not dropped.
    assert [spec.labels[t] for t in train.tags] == ["N", "<UNK>", "N", "."]


# ---------------------------------------------------------------- malformed input


def test_wrong_column_count_names_file_and_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "dev-xx.tsv", "a\tb\tneutral\nonly\ttwo\n")
    with pytest.raises(DataError, match=r"dev-xx\.tsv:2: expected 3 tab-separated columns"):
        _read("xnli", "dev", bad)


def test_unknown_label_names_label_and_allowed(tmp_path: Path) -> None:
    bad = _write(tmp_path / "dev-xx.tsv", "a\tb\tneutral\na\tb\tcontradictory\na\tb\tmaybe\n")
    with pytest.raises(DataError, match=r"dev-xx\.tsv:3: unknown label 'maybe'") as err:
        _read("xnli", "dev", bad)
    assert "'entailment'" in str(err.value) and "'contradiction'" in str(err.value)


def test_qa_answer_not_at_offset(tmp_path: Path) -> None:
    qas = [
        {"id": "q1", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "q2", "question": "?", "answers": [{"text": "Paris", "answer_start": 3}]},
    ]
    doc = {"data": [{"paragraphs": [{"context": "Paris is big.", "qas": qas}]}]}
    bad = _write(tmp_path / "qa.json", json.dumps(doc))
    with pytest.raises(DataError, match=r"qa\.json:2: answer 'Paris' not found at answer_start 3"):
        _read("xquad", "test", bad)


def test_tydiqa_non_english_id_in_english_split(tmp_path: Path) -> None:
    qas = [
        {"id": "english--1-0", "question": "?", "answers": [{"text": "a", "answer_start": 0}]},
        {"id": "arabic--123-0", "question": "?", "answers": [{"text": "a", "answer_start": 0}]},
    ]
    doc = {"data": [{"paragraphs": [{"context": "a b", "qas": qas}]}]}
    bad = _write(tmp_path / "tydiqa.goldp.en.train.json", json.dumps(doc))
    with pytest.raises(DataError, match=r"train\.json:2: QA id 'arabic--123-0' is arabic"):
        _read("tydiqa", "train", bad)


def test_misaligned_tatoeba_names_both_files_and_counts(tmp_path: Path) -> None:
    xx = _write(tmp_path / "xx-en.xx", "un\ndeux\ntrois\n")
    _write(tmp_path / "xx-en.en", "one\ntwo\n")
    with pytest.raises(DataError, match=r"xx-en\.xx:3: misaligned") as err:
        _read("tatoeba", "test", xx, lang="xx")
    assert "xx-en.xx has 3 lines but xx-en.en has 2" in str(err.value)


def test_sorted_tatoeba_english_side_is_refused(tmp_path: Path) -> None:
    xx = _write(tmp_path / "xx-en.xx", "".join(f"s{i}\n" for i in range(12)))
    _write(tmp_path / "xx-en.en", "".join(f"{chr(97 + i)}\n" for i in range(12)))
    with pytest.raises(DataError, match=r"xx-en\.en: xx-en\.en is sorted"):
        _read("tatoeba", "test", xx, lang="xx")


def test_empty_file(tmp_path: Path) -> None:
    empty = _write(tmp_path / "train-en.tsv", "\n")
    with pytest.raises(DataError, match=r"train-en\.tsv:1: file is empty"):
        _read("panx", "train", empty)


def test_invalid_json_line(tmp_path: Path) -> None:
    good = '{"gold_label": "neutral", "sentence1": "a", "sentence2": "b"}\n'
    bad = _write(tmp_path / "nli.jsonl", good + good + '{"gold_label": "neutral",\n')
    with pytest.raises(DataError, match=r"nli\.jsonl:3: invalid JSON"):
        _read("mnli", "train", bad)


def test_invalid_json_document(tmp_path: Path) -> None:
    bad = _write(tmp_path / "qa.json", '{\n  "data": [\n    {"paragraphs": ]\n}')
    with pytest.raises(DataError, match=r"qa\.json:3: invalid JSON"):
        _read("squad", "train", bad)


def test_bucc_gold_id_missing_from_sentence_files(tmp_path: Path) -> None:
    src = _write(tmp_path / "xx-en.dev.xx", "xx-1\tun\nxx-2\tdeux\n")
    _write(tmp_path / "xx-en.dev.en", "en-1\tone\nen-2\ttwo\n")
    _write(tmp_path / "xx-en.dev.gold", "xx-1\ten-1\nxx-2\ten-9\n")
    with pytest.raises(DataError, match=r"xx-en\.dev\.gold:2: gold id 'en-9' is not in"):
        _read("bucc", "dev", src, lang="xx")


def test_conllu_wrong_column_count(tmp_path: Path) -> None:
    row = "1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_\n"
    bad = _write(tmp_path / "xx-ud-test.conllu", "# text = Hi\n" + row + "2\t!\t!\tPUNCT\n")
    with pytest.raises(DataError, match=r"xx-ud-test\.conllu:3: expected 10 tab-separated"):
        _read("udpos", "test", bad)


def test_panx_strips_language_prefix_and_rejects_unknown_tag(tmp_path: Path) -> None:
    good = _write(tmp_path / "dev-de.tsv", "de:Berlin\tB-LOC\nde:ist\tO\n\nde:Ja\tO")
    (first, second) = _read("panx", "dev", good, lang="de")
    assert first.tokens == ("Berlin", "ist") and second.tokens == ("Ja",)
    bad = _write(tmp_path / "dev-fr.tsv", "Paris\tB-LOC\nest\tB-CITY\n")
    with pytest.raises(DataError, match=r"dev-fr\.tsv:2: unknown label 'B-CITY'"):
        _read("panx", "dev", bad, lang="fr")


def test_malformed_ccg_derivation(tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "wsj_9999.auto",
        "ID=wsj_9999.1 PARSER=GOLD NUMPARSE=1\n(<T S[dcl] 0 2> (<L N NN NN x N>) \n",
    )
    with pytest.raises(DataError, match=r"wsj_9999\.auto:2: malformed CCG derivation"):
        _read("ccg", "dev", bad)


def test_missing_ccgbank_names_ldc_catalog_entry(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_examples(get_task("ccg"), tmp_path, "train", "en")
    message = str(err.value)
    assert "LDC2005T13" in message
    assert str(tmp_path / "english/ccgbank/data/AUTO/0[2-9]/wsj_*.auto") in message


def test_unknown_reader_suggests_a_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'squad_json'"):
        get_reader("squad_jsn")
