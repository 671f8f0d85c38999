"""Task types: tiny tokenizer, classification, multiple choice, retrieval (shapes to scores)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from xstilts.errors import ConfigError, DataError
from xstilts.models.heads import PoolingHead
from xstilts.models.tokenizer import load_tokenizer, train_tokenizer
from xstilts.packing import PackedBatch, pack
from xstilts.tasks.examples import ClassificationExample, MultipleChoiceExample, RetrievalCorpus
from xstilts.tasks.formats import get_format
from xstilts.tasks.formats.base import FeaturizeConfig
from xstilts.tasks.spec import TaskSpec, TaskType

CORPUS = [
    "The weather is good today and the children play outside.",
    "The film was bad, the actors were bored and the music was loud.",
    "A good book makes a long journey feel short.",
    "Prices went up again, which is bad news for every family.",
    "She said the soup was good but the bread was stale.",
    "The river flows through the old town towards the sea.",
    "He plays the piano every evening after dinner.",
    "The committee approved the new budget on Tuesday.",
    "Two cats sleep on the warm roof of the garden house.",
    "The train to Berlin leaves at eight in the morning.",
] * 3
CFG = FeaturizeConfig(max_length=24)


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, vocab_size=300)


class FakeEncoder(nn.Module):
    """Embeddings plus each sequence's mean embedding: [N] ids -> [N, H], context-aware."""

    def __init__(self, vocab: int, hidden: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, hidden)

    def forward(self, batch: PackedBatch) -> torch.Tensor:
        x = self.emb(batch.input_ids)  # [N, H]
        lens = batch.seq_lens
        seq = torch.repeat_interleave(torch.arange(lens.numel()), lens)
        means = torch.zeros(lens.numel(), x.shape[1]).index_add(0, seq, x) / lens[:, None]
        return x + means[seq]


def cls_spec(metrics: tuple[str, ...] = ("accuracy",)) -> TaskSpec:
    return TaskSpec(
        name="toy_cls",
        type="classification",
        version="1",
        splits={},
        labels=("neg", "pos"),
        metrics=metrics,
    )


def test_tokenizer_ids_templates_and_determinism(tok, tmp_path) -> None:
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tok.mask_token_id == len(tok) - 1
    single = tok("good book")["input_ids"]
    a = tok("good book", add_special_tokens=False)["input_ids"]
    b = tok("the sea", add_special_tokens=False)["input_ids"]
    assert single == [0, *a, 2]
    assert tok("good book", "the sea")["input_ids"] == [0, *a, 2, 2, *b, 2]
    enc = tok(["good", "book"], is_split_into_words=True)
    assert enc.word_ids()[0] is None and enc.word_ids()[-1] is None
    assert train_tokenizer(CORPUS, vocab_size=300).get_vocab() == tok.get_vocab()
    tok.save_pretrained(tmp_path)  # stage directories store the tokenizer this way
    again = load_tokenizer(tmp_path)
    text = ("The   river flows", "two cats")
    kwargs = {"return_offsets_mapping": True}
    assert again(*text, **kwargs).data == tok(*text, **kwargs).data
    assert again.pad_token_id == 1 and again.mask_token_id == tok.mask_token_id


def test_get_format_matches_task_type() -> None:
    for task_type in TaskType:
        assert get_format(task_type).task_type is task_type


def test_classification_featurize_singles_pairs_truncation(tok) -> None:
    fmt = get_format("classification")
    long = " ".join(CORPUS[:4])
    examples = [
        ClassificationExample("0", "good book", None, 1),
        ClassificationExample("1", long, long, 0),
        ClassificationExample("2", "bad film", "the sea", 0),
    ]
    feats = fmt.featurize(examples, tok, cls_spec(), CFG)
    assert [f["example_index"] for f in feats] == [0, 1, 2]
    assert [f["label"] for f in feats] == [1, 0, 0]
    assert feats[0]["sequences"] == [tok("good book")["input_ids"]]
    assert len(feats[1]["sequences"][0]) == CFG.max_length
    seq = feats[1]["sequences"][0]
    assert seq[0] == 0 and seq[-1] == 2 and seq.count(2) == 3  # both sides kept
    assert feats[2]["sequences"] == [tok("bad film", "the sea")["input_ids"]]
    with pytest.raises(DataError, match="label 2 out of range"):
        fmt.featurize(
            [ClassificationExample("x", "a", None, 2, origin="f.tsv:7")], tok, cls_spec(), CFG
        )


def test_classification_trains_and_scores(tok) -> None:
    fmt = get_format("classification")
    examples = [
        ClassificationExample(str(i), s, None, int("good" in s)) for i, s in enumerate(CORPUS[:10])
    ]
    feats = fmt.featurize(examples, tok, cls_spec(), CFG)
    batch = pack(feats)
    assert batch.labels["label"].tolist() == [ex.label for ex in examples]
    encoder = FakeEncoder(len(tok))
    head = fmt.make_head(cls_spec(), 16, CFG)
    head.eval()  # no dropout: the loss sequence is deterministic
    params = [*encoder.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=0.1)
    losses = []
    for _ in range(15):
        logits = head(encoder(batch), batch)
        assert logits.shape == (10, 2)
        loss = fmt.loss(logits, batch)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(np.isfinite(losses))
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.75 * losses[0]
    raw = fmt.predict(torch.tensor([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0]]), batch)
    assert raw == [1, 0, 1]
    preds = fmt.postprocess(examples[:3], feats[:3], raw, cls_spec(), CFG)
    # labels of CORPUS[:3]: good=1, bad=0, good=1 -> predictions [1, 0, 1] all right
    assert preds == [1, 0, 1]
    assert fmt.score(examples[:3], [1, 1, 1], cls_spec(), "en") == pytest.approx(
        {"accuracy": 200 / 3}
    )
    # class-1 F1 with preds [1,1,1] vs refs [1,0,1]: tp=2, 3 predicted, 2 gold -> 2*2/5 = 0.8
    scores = fmt.score(examples[:3], [1, 1, 1], cls_spec(("accuracy", "f1")), "en")
    assert scores["f1"] == pytest.approx(80.0)


def mc_spec() -> TaskSpec:
    return TaskSpec(name="toy_mc", type="multiple_choice", version="1", splits={}, num_choices=3)


def test_multiple_choice_featurize_head_loss_score(tok) -> None:
    fmt = get_format("multiple_choice")
    examples = [
        MultipleChoiceExample("0", "The river flows.", "Where to?", ("the sea", "Berlin", "up"), 0),
        MultipleChoiceExample("1", "", "Who plays the piano?", ("he", "cats", "the train"), 1),
    ]
    feats = fmt.featurize(examples, tok, mc_spec(), CFG)
    assert [len(f["sequences"]) for f in feats] == [3, 3]
    assert feats[0]["sequences"][1] == tok("The river flows. Where to?", "Berlin")["input_ids"]
    assert feats[1]["sequences"][2] == tok("Who plays the piano?", "the train")["input_ids"]
    batch = pack(feats)
    assert batch.num_sequences == 6 and batch.sequences_per_feature == 3
    head = fmt.make_head(mc_spec(), 16, CFG)
    logits = head(FakeEncoder(len(tok))(batch), batch)
    assert logits.shape == (2, 3)
    assert torch.isfinite(fmt.loss(logits, batch))
    raw = fmt.predict(torch.tensor([[0.1, 0.5, 0.2], [0.0, 0.0, 1.0]]), batch)
    preds = fmt.postprocess(examples, feats, raw, mc_spec(), CFG)
    assert preds == [1, 2]
    assert fmt.score(examples, [0, 2], mc_spec(), "en") == pytest.approx({"accuracy": 50.0})
    bad = MultipleChoiceExample("2", "", "q", ("a", "b"), 0, origin="dev.jsonl:3")
    with pytest.raises(DataError, match=r"dev.jsonl:3: 2 choices"):
        fmt.featurize([bad], tok, mc_spec(), CFG)


def retrieval_spec(metrics: tuple[str, ...]) -> TaskSpec:
    kind = "mining" if "f1" in metrics else "search"  # BUCC-like / Tatoeba-like
    return TaskSpec(
        name="toy_ret", type="retrieval", version="1", splits={}, metrics=metrics, retrieval=kind
    )


def test_retrieval_featurize_pooling_and_postprocess(tok) -> None:
    fmt = get_format("retrieval")
    corpus = RetrievalCorpus("c", tuple(CORPUS[:3]), tuple(CORPUS[5:9]), ((0, 0),))
    spec = retrieval_spec(("accuracy",))
    feats = fmt.featurize([corpus], tok, spec, CFG)
    assert [(f["_side"], f["_index"]) for f in feats] == [(0, 0), (0, 1), (0, 2)] + [
        (1, i) for i in range(4)
    ]
    assert "label" not in feats[0]
    batch = pack(feats)
    hidden = torch.randn(batch.num_tokens, 8)  # [N, H]
    head = fmt.make_head(spec, 8, FeaturizeConfig(layer=None, pooling="mean"))
    assert head.layer is None and not list(head.parameters())
    emb = head(hidden, batch)
    assert emb.shape == (7, 8)
    second = slice(int(batch.cu_seqlens[1]), int(batch.cu_seqlens[2]))
    torch.testing.assert_close(emb[1], hidden[second].mean(0))
    cls = PoolingHead(layer=6, pooling="cls")(hidden, batch)
    torch.testing.assert_close(cls[1], hidden[second.start])
    with pytest.raises(ConfigError, match="pooling"):
        PoolingHead(pooling="max")
    with pytest.raises(ConfigError, match="no training loss"):
        fmt.loss(emb, batch)
    raw = fmt.predict(emb, batch)
    [(src, tgt)] = fmt.postprocess([corpus], feats, raw, spec, CFG)
    assert src.shape == (3, 8) and tgt.shape == (4, 8) and src.dtype == np.float32
    np.testing.assert_allclose(tgt[2], emb[5].numpy())


def test_retrieval_scores(tok) -> None:
    fmt = get_format("retrieval")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 16)).astype(np.float32)
    noisy = base + 0.01 * rng.normal(size=base.shape).astype(np.float32)
    tatoeba = RetrievalCorpus("t", ("a",) * 6, ("b",) * 6, tuple((i, i) for i in range(6)))
    # Tatoeba: target i is the noisy copy of source i, except targets 4 and 5 are swapped.
    swapped = noisy[[0, 1, 2, 3, 5, 4]]
    acc = fmt.score([tatoeba], [(base, swapped)], retrieval_spec(("accuracy",)), "de")
    assert acc == pytest.approx({"accuracy": 400 / 6})
    bucc = RetrievalCorpus("b", ("a",) * 6, ("b",) * 6, tuple((i, i) for i in range(6)))
    scores = fmt.score([bucc], [(base, noisy)], retrieval_spec(("f1",)), "zh")
    assert scores["f1"] == pytest.approx(100.0)
    assert "threshold" in scores
