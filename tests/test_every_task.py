"""Every registered task, end to end on a few real examples.

load (official file format, ``../shared/data``) -> featurize (its task type) -> a tiny random
XLM-R encoder + the task's head -> one training step -> predict -> post-process -> metric.
A task whose files are absent from the shared data (CCGbank: LDC licence) must instead raise
the catalog's clear "download this" error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import split_files
from xstilts.errors import DataError
from xstilts.models.encoder import build_tiny_encoder
from xstilts.models.heads import PoolingHead
from xstilts.models.model import XstiltsModel
from xstilts.models.tokenizer import train_tokenizer
from xstilts.packing import pack
from xstilts.settings import FeaturizeSettings, resolve
from xstilts.tasks import TaskType, get_task, list_tasks
from xstilts.tasks.data import available_languages, load_examples
from xstilts.tasks.examples import Example, RetrievalCorpus
from xstilts.tasks.formats import FeaturizeConfig, get_format
from xstilts.tasks.texts import example_texts
from xstilts.training.evaluate import EvalSettings, evaluate_task

N_EXAMPLES = 4
RETRIEVAL_SIZE = 40
TINY = {"vocab_size": 800, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "seed": 0}  # fmt: skip
ABSENT_FROM_SHARED_DATA = {"ccg"}  # CCGbank is LDC-licensed


def _featurize_cfg(name: str) -> FeaturizeConfig:
    spec = get_task(name)
    values = resolve(FeaturizeSettings, task=spec.defaults, task_type=spec.type.value)
    # Short windows keep the test fast; QA still needs room for question + context window.
    values["max_length"] = 96
    if "stride" in values:
        values["stride"] = 32
    return FeaturizeConfig(**values)


def _small(example: Example) -> Example:
    """A retrieval corpus cut to its first gold pairs plus distractors; other examples as is.

    BUCC has 22k sentences and sparse gold pairs: keeping the first N of each side would keep
    almost no pair, so the sentences of the first N pairs are kept, then the first N others.
    """
    if not isinstance(example, RetrievalCorpus):
        return example
    pairs = example.gold[:RETRIEVAL_SIZE]
    keep_src = list(dict.fromkeys([s for s, _ in pairs] + list(range(RETRIEVAL_SIZE))))
    keep_tgt = list(dict.fromkeys([t for _, t in pairs] + list(range(RETRIEVAL_SIZE))))
    new_src = {old: new for new, old in enumerate(keep_src)}
    new_tgt = {old: new for new, old in enumerate(keep_tgt)}

    def pick(values: tuple[str, ...], keep: list[int]) -> tuple[str, ...]:
        return tuple(values[i] for i in keep) if values else ()

    return dataclasses.replace(
        example,
        source=pick(example.source, keep_src),
        target=pick(example.target, keep_tgt),
        gold=tuple((new_src[s], new_tgt[t]) for s, t in pairs),
        source_ids=pick(example.source_ids, keep_src),
        target_ids=pick(example.target_ids, keep_tgt),
    )


@pytest.mark.parametrize("name", list_tasks())
def test_task_round_trips_through_a_tiny_model(name: str, data_root: Path) -> None:
    spec = get_task(name)
    langs = available_languages(spec, data_root, spec.eval_split)
    if name in ABSENT_FROM_SHARED_DATA:
        assert not langs
        with pytest.raises(DataError, match="expected"):
            load_examples(spec, data_root, spec.eval_split, spec.train_language)
        return
    assert langs, f"{name}: no evaluation data in the shared data"
    # English (when evaluated) plus one other language: zero-shot evaluation in one pass.
    eval_langs = list(dict.fromkeys([lang for lang in langs if lang == "en"] + langs[-1:]))
    evaluation = {
        lang: [
            _small(ex)
            for ex in load_examples(spec, data_root, spec.eval_split, lang, limit=N_EXAMPLES)
        ]
        for lang in eval_langs
    }
    texts = [t for exs in evaluation.values() for ex in exs for t in example_texts(ex)]
    tokenizer = train_tokenizer(texts, vocab_size=TINY["vocab_size"])
    # Scripts with many characters (zh) give an initial alphabet larger than the target size.
    model = XstiltsModel(build_tiny_encoder({**TINY, "vocab_size": max(len(tokenizer), 800)}))
    fmt = get_format(spec.type)
    cfg = _featurize_cfg(name)
    head = spec.head
    if spec.type is TaskType.RETRIEVAL:
        model.add_head(head, PoolingHead(layer=1, pooling="mean"))
        cfg = dataclasses.replace(cfg, pooling="mean", layer=1)
    else:
        model.add_head(head, fmt.make_head(spec, model.hidden_size, cfg))
        has_train = "train" in spec.splits and split_files(spec, data_root, "train", "en")
        train = load_examples(spec, data_root, "train" if has_train else spec.eval_split, "en",
                              limit=N_EXAMPLES)  # fmt: skip
        features = fmt.featurize(train, tokenizer, spec, cfg)
        assert features, f"{name}: no training features"
        batch = pack(features, model.padding_idx)
        loss = fmt.loss(model(batch, head), batch)
        assert torch.isfinite(loss) and loss.item() > 0
        loss.backward()
        grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)  # the encoder is trained

    predictions: dict[str, list] = {}
    records = evaluate_task(
        model, spec, evaluation, tokenizer, cfg, EvalSettings(precision="fp32"),
        torch.device("cpu"), head=head, predictions_out=predictions,
    )  # fmt: skip
    unlabelled = name == "tydiqa"  # XTREME's TyDiQA-GoldP dev files carry no answers
    if unlabelled:
        assert records == []
    else:
        assert {r.language for r in records} == set(eval_langs)
        assert {r.metric for r in records} == set(spec.metrics)
        for r in records:
            assert 0.0 <= r.value <= 100.0, r
    if spec.type is not TaskType.RETRIEVAL:
        for lang in eval_langs:
            assert len(predictions[lang]) == len(evaluation[lang])  # one per example, none lost
