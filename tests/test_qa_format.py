"""Extractive QA: windows, gold positions across windows, n-best decoding, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xstilts.errors import ConfigError, DataError
from xstilts.models.tokenizer import train_tokenizer
from xstilts.packing import pack
from xstilts.tasks.examples import Answer, QAExample
from xstilts.tasks.formats import get_format
from xstilts.tasks.formats.base import FeaturizeConfig
from xstilts.tasks.formats.extractive_qa import best_span
from xstilts.tasks.spec import TaskSpec

CONTEXT = (
    "The Rhine rises in the Swiss Alps and flows north through Basel. "
    "Below Basel the river forms the border between France and Germany. "
    "Near Mainz it turns west and cuts a deep valley through the slate mountains. "
    "The Loreley rock stands high above the narrowest part of that valley. "
    "Finally the Rhine reaches the Netherlands and splits into several arms."
)
QUESTION = "Which rock stands above the valley?"
CFG = FeaturizeConfig(max_length=40, stride=10, max_query_length=12, n_best=5, max_answer_length=8)
SPEC = TaskSpec(name="toy_qa", type="extractive_qa", version="1", splits={})
FMT = get_format("extractive_qa")


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([CONTEXT, QUESTION] * 5, vocab_size=200)


def windows_of(tok, example: QAExample, cfg: FeaturizeConfig = CFG) -> list[dict]:
    return FMT.featurize([example], tok, SPEC, cfg)


def straddling_answer(tok) -> Answer:
    """Two words across the end of window 0's context (found from the unlabelled windows)."""
    feats = windows_of(tok, QAExample("u", QUESTION, CONTEXT, ()))
    assert len(feats) >= 3  # the context really is split
    end0 = max(o[1] for o in feats[0]["_offsets"] if o is not None)
    start = CONTEXT.rfind(" ", 0, end0 - 1) + 1  # start of the word window 0 ends in
    end = CONTEXT.find(" ", end0 + 1)  # end of the next word
    assert start < end0 < end
    return Answer(CONTEXT[start:end], start)


def decode(feature: dict) -> str:
    offsets = feature["_offsets"]
    return CONTEXT[offsets[feature["start"]][0] : offsets[feature["end"]][1]]


def test_answer_straddling_two_windows(tok) -> None:
    answer = straddling_answer(tok)
    feats = windows_of(tok, QAExample("s", QUESTION, CONTEXT, (answer,)))
    labelled = [f for f in feats if f["start"] != 0]
    assert feats[0]["start"] == feats[0]["end"] == 0  # only part of the answer in window 0
    assert feats[1] in labelled  # the overlap (stride) carries it whole into window 1
    for f in labelled:
        assert 0 < f["start"] <= f["end"]
        assert decode(f) == answer.text
    for f in feats:
        ctx = [o for o in f["_offsets"] if o is not None]
        inside = ctx[0][0] <= answer.start and answer.start + len(answer.text) <= ctx[-1][1]
        assert (f["start"] != 0) == inside
        assert len(f["sequences"][0]) <= CFG.max_length


def test_question_truncated_and_windows_overlap(tok) -> None:
    long_q = " ".join([QUESTION] * 4)
    feats = windows_of(tok, QAExample("q", long_q, CONTEXT, ()))
    for f in feats:
        offsets = f["_offsets"]
        first_ctx = next(i for i, o in enumerate(offsets) if o is not None)
        assert first_ctx - 3 <= CFG.max_query_length  # <s> q </s></s> context
    ids0, ids1 = feats[0]["sequences"][0], feats[1]["sequences"][0]
    ctx0 = [t for t, o in zip(ids0, feats[0]["_offsets"], strict=True) if o is not None]
    ctx1 = [t for t, o in zip(ids1, feats[1]["_offsets"], strict=True) if o is not None]
    assert ctx0[-CFG.stride :] == ctx1[: CFG.stride]


def test_postprocess_picks_best_valid_span_across_windows(tok) -> None:
    example = QAExample("p", QUESTION, CONTEXT, ())
    feats = windows_of(tok, example)
    raw = [np.zeros((len(f["sequences"][0]), 2), np.float32) for f in feats]
    ctx = [[i for i, o in enumerate(f["_offsets"]) if o is not None] for f in feats]
    # window 0: a valid span scoring 3 + 3
    raw[0][ctx[0][2], 0], raw[0][ctx[0][4], 1] = 3.0, 3.0
    # window 1: best valid span scores 5 + 4 = 9; higher-scoring but invalid candidates:
    s1, e1 = ctx[1][3], ctx[1][5]
    raw[1][s1, 0], raw[1][e1, 1] = 5.0, 4.0
    raw[1][1, 0] = raw[1][1, 1] = 50.0  # question token: not in the context
    raw[1][ctx[1][6], 0] = 20.0  # start after every good end: end < start
    raw[1][ctx[1][1], 1] = 20.0
    raw[1][ctx[1][-1], 1] = 30.0  # too long with start s1 (max_answer_length = 8)
    [answer] = FMT.postprocess([example], feats, raw, SPEC, CFG)
    offsets = feats[1]["_offsets"]
    assert answer == CONTEXT[offsets[s1][0] : offsets[e1][1]]
    assert answer and answer == answer.strip()
    # nothing valid anywhere -> empty answer
    assert best_span([(np.zeros((3, 2)), [None, None, None])], 5, 8) is None


def test_round_trip_scores_100(tok) -> None:
    words = [(m, CONTEXT.index(m)) for m in ("Swiss Alps", "Mainz", "Loreley rock", "Netherlands")]
    examples = [
        QAExample(str(i), QUESTION, CONTEXT, (Answer(t, s),)) for i, (t, s) in enumerate(words)
    ]
    examples.append(QAExample("s", QUESTION, CONTEXT, (straddling_answer(tok),)))
    feats = FMT.featurize(examples, tok, SPEC, CFG)
    batch = pack(feats)
    gold = torch.zeros(batch.num_tokens, 2)  # [N, 2]: 10 at gold start/end where labelled
    for j, f in enumerate(feats):
        if f["start"]:
            base = int(batch.cu_seqlens[j])
            gold[base + f["start"], 0] = gold[base + f["end"], 1] = 10.0
    raw = FMT.predict(gold, batch)
    assert [r.shape for r in raw] == [(len(f["sequences"][0]), 2) for f in feats]
    preds = FMT.postprocess(examples, feats, raw, SPEC, CFG)
    assert preds == [ex.answers[0].text for ex in examples]
    assert FMT.score(examples, preds, SPEC, "en") == pytest.approx(
        {"exact_match": 100.0, "f1": 100.0}
    )


def test_loss_is_mean_of_per_sequence_start_end_ce(tok) -> None:
    ex = QAExample("l", QUESTION, CONTEXT, (Answer("Mainz", CONTEXT.index("Mainz")),))
    feats = windows_of(tok, ex)
    batch = pack(feats)
    torch.manual_seed(0)
    logits = torch.randn(batch.num_tokens, 2, requires_grad=True)  # [N, 2]
    loss = FMT.loss(logits, batch)
    parts = torch.split(logits, batch.seq_lens.tolist())
    manual = sum(
        F.cross_entropy(p[:, 0], torch.tensor(f["start"]))
        + F.cross_entropy(p[:, 1], torch.tensor(f["end"]))
        for p, f in zip(parts, feats, strict=True)
    ) / (2 * len(feats))
    torch.testing.assert_close(loss, manual)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    head = FMT.make_head(SPEC, 8, CFG)
    assert head(torch.randn(batch.num_tokens, 8), batch).shape == (batch.num_tokens, 2)


def test_unlabelled_bad_offsets_and_stride(tok) -> None:
    unlabelled = [QAExample("u", QUESTION, CONTEXT, ())]
    assert all(f["start"] == f["end"] == 0 for f in windows_of(tok, unlabelled[0]))
    assert FMT.score(unlabelled, ["x"], SPEC, "te") == {}
    labelled = QAExample("l", QUESTION, CONTEXT, (Answer("Mainz", CONTEXT.index("Mainz")),))
    with pytest.raises(DataError, match="no gold answer"):
        FMT.score([labelled, *unlabelled], ["Mainz", "x"], SPEC, "en")
    wrong = QAExample("w", QUESTION, CONTEXT, (Answer("Mainz", 3),), origin="dev.json:12")
    with pytest.raises(DataError, match=r"dev\.json:12: answer 'Mainz' is not at character 3"):
        windows_of(tok, wrong)
    with pytest.raises(ConfigError, match="stride"):
        windows_of(tok, unlabelled[0], FeaturizeConfig(max_length=30, stride=20))


def test_real_xquad_windows_contain_gold(data_root) -> None:
    """Every real XQuAD answer lands whole in some window, and its tokens cover exactly it."""
    import json

    articles = json.loads((data_root / "xtreme/xquad/xquad.de.json").read_text("utf-8"))["data"]
    paragraphs = [p for art in articles[:3] for p in art["paragraphs"]]
    examples = [
        QAExample(
            qa["id"],
            qa["question"],
            p["context"],
            tuple(Answer(a["text"], a["answer_start"]) for a in qa["answers"]),
        )
        for p in paragraphs
        for qa in p["qas"]
    ]
    tok = train_tokenizer([p["context"] for p in paragraphs], vocab_size=800)
    cfg = FeaturizeConfig(max_length=96, stride=24)
    feats = FMT.featurize(examples, tok, SPEC, cfg)
    assert len(feats) > len(examples)  # real contexts need several windows
    assert {f["example_index"] for f in feats if f["start"]} == set(range(len(examples)))
    for f in (f for f in feats if f["start"]):
        ex, offsets = examples[f["example_index"]], f["_offsets"]
        span = (offsets[f["start"]][0], offsets[f["end"]][1])
        gold = (ex.answers[0].start, ex.answers[0].start + len(ex.answers[0].text))
        # tokens may start before / end after the answer (e.g. "1817," is one piece), never
        # inside it, and the first/last token must overlap it.
        assert span[0] <= gold[0] < offsets[f["start"]][1]
        assert offsets[f["end"]][0] < gold[1] <= span[1]
