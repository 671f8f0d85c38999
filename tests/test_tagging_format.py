"""Tagging: first-sub-token labels, truncation fallback, entity F1 from mapped predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.errors import DataError
from xstilts.models.tokenizer import train_tokenizer
from xstilts.packing import IGNORE_INDEX, pack
from xstilts.tasks.examples import TaggingExample
from xstilts.tasks.formats import get_format
from xstilts.tasks.formats.base import FeaturizeConfig
from xstilts.tasks.spec import TaskSpec

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
OUT, B_PER, I_PER, B_LOC, I_LOC, B_ORG, I_ORG = range(7)
SPEC = TaskSpec(
    name="toy_ner", type="tagging", version="1", splits={}, labels=LABELS, metrics=("f1",)
)
CFG = FeaturizeConfig(max_length=32)
FMT = get_format("tagging")
CORPUS = [
    "Anna Schmidt lives in the city and works for the bank.",
    "The bank opened a new office in the city last year.",
    "Anna likes the river and the old bridge in the city.",
] * 4
# "Wolkenkuckucksheim" never occurs in CORPUS: the tiny tokenizer splits it into pieces.
SENT_1 = TaggingExample(
    "1", ("Anna", "Schmidt", "visited", "Wolkenkuckucksheim"), (B_PER, I_PER, OUT, B_LOC)
)
SENT_2 = TaggingExample("2", ("the", "bank", "opened"), (B_ORG, OUT, OUT))


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, vocab_size=120)


def test_only_first_sub_token_is_labelled(tok) -> None:
    pieces = tok("Wolkenkuckucksheim", add_special_tokens=False)["input_ids"]
    assert len(pieces) >= 3  # precondition: the entity word really is split
    [feat] = FMT.featurize([SENT_1], tok, SPEC, CFG)
    labels, starts = feat["token_labels"], feat["_word_starts"]
    assert len(labels) == len(feat["sequences"][0])
    assert labels[0] == labels[-1] == IGNORE_INDEX  # <s>, </s>
    loc = starts[3]
    assert labels[loc] == B_LOC
    assert labels[loc + 1 : loc + len(pieces)] == [IGNORE_INDEX] * (len(pieces) - 1)
    assert [labels[p] for p in starts] == list(SENT_1.tags)
    assert sum(lab != IGNORE_INDEX for lab in labels) == len(SENT_1.tokens)
    assert feat["sequences"][0][loc : loc + len(pieces)] == pieces


def fake_predictions(feats: list[dict], word_tags: list[list[int]], junk: int) -> list:
    """Per-token predictions: the wanted tag on first sub-tokens, ``junk`` everywhere else."""
    raw = []
    for feat, tags in zip(feats, word_tags, strict=True):
        tokens = np.full(len(feat["sequences"][0]), junk, dtype=np.int16)
        for w, pos in enumerate(feat["_word_starts"]):
            if pos >= 0:
                tokens[pos] = tags[w]
        raw.append(tokens)
    return raw


def test_predictions_map_back_to_words_and_entity_f1(tok) -> None:
    examples = [SENT_1, SENT_2]
    feats = FMT.featurize(examples, tok, SPEC, CFG)
    # PER right, LOC missed (O), ORG right, one spurious LOC on "opened".
    wanted = [[B_PER, I_PER, OUT, OUT], [B_ORG, OUT, B_LOC]]
    raw = fake_predictions(feats, wanted, junk=I_ORG)  # junk on later sub-tokens is ignored
    preds = FMT.postprocess(examples, feats, raw, SPEC, CFG)
    assert preds == wanted
    # gold entities: PER, LOC, ORG; predicted: PER, ORG, LOC(spurious) -> tp=2, P=R=F1=2/3
    scores = FMT.score(examples, preds, SPEC, "en")
    assert scores["f1"] == pytest.approx(200 / 3)
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(200 / 3)


def test_truncated_words_predicted_o(tok) -> None:
    cfg = FeaturizeConfig(max_length=6)  # <s> + 4 tokens + </s>: the LOC word is cut off
    [feat] = FMT.featurize([SENT_1], tok, SPEC, cfg)
    assert len(feat["sequences"][0]) == 6
    assert feat["_word_starts"][3] == -1
    raw = [np.full(6, B_LOC, dtype=np.int16)]  # would tag every word LOC if it could
    [pred] = FMT.postprocess([SENT_1], [feat], raw, SPEC, cfg)
    assert pred[3] == OUT
    assert all(
        tag == B_LOC for tag, pos in zip(pred, feat["_word_starts"], strict=True) if pos >= 0
    )
    pos_spec = TaskSpec(
        name="toy_pos", type="tagging", version="1", splits={}, labels=("NOUN", "VERB", "PROPN")
    )
    [pos_pred] = FMT.postprocess([SENT_1], [feat], raw, pos_spec, cfg)
    assert pos_pred[3] == 0  # no "O" tag: class 0


def test_loss_head_and_bad_input(tok) -> None:
    feats = FMT.featurize([SENT_1, SENT_2], tok, SPEC, CFG)
    batch = pack(feats)
    head = FMT.make_head(SPEC, 8, CFG)
    logits = head(torch.randn(batch.num_tokens, 8), batch)
    assert logits.shape == (batch.num_tokens, len(LABELS))
    labels = batch.labels["token_labels"]
    keep = labels != IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(FMT.loss(logits, batch), expected)
    batch.labels["token_labels"] = torch.full_like(labels, IGNORE_INDEX)
    assert FMT.loss(logits, batch).item() == 0.0
    raw = FMT.predict(logits, batch)
    assert [r.shape for r in raw] == [(len(f["sequences"][0]),) for f in feats]
    bad = TaggingExample("b", ("a", "b"), (OUT,), origin="dev-en.tsv:40")
    with pytest.raises(DataError, match=r"dev-en\.tsv:40: 2 words but 1 tags"):
        FMT.featurize([bad], tok, SPEC, CFG)
    with pytest.raises(DataError, match="tag 9 out of range"):
        FMT.featurize([TaggingExample("c", ("a",), (9,))], tok, SPEC, CFG)
