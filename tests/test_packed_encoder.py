"""The unpadded forward pass must reproduce HF's padded forward exactly (fp32) or closely (bf16)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

from xstilts.errors import ConfigError
from xstilts.models import packed as packed_module
from xstilts.models.encoder import load_encoder
from xstilts.models.packed import encode_packed, padded_forward, supports_packed
from xstilts.packing import PackedBatch, pack, to_padded, unpad_tokens

VOCAB = 60
LAYERS = 2
LENGTH_MIXES = [[1], [1, 1, 1], [5, 1, 17, 3], [8, 8, 8], [1, 30, 2, 9]]


def make_batch(lengths: list[int], seed: int = 0) -> PackedBatch:
    """XLM-R-like sequences ``<s> tokens </s>`` (a length-1 sequence is just ``<s>``)."""
    rng = random.Random(seed)
    seqs = []
    for n in lengths:
        middle = [rng.randrange(3, VOCAB) for _ in range(max(n - 2, 0))]
        seqs.append(([0, *middle, 2])[:n])
    return pack([{"sequences": [s]} for s in seqs], padding_idx=1)


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    tiny = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": LAYERS,
            "num_attention_heads": 2, "intermediate_size": 64, "seed": 0}  # fmt: skip
    return load_encoder({"tiny": tiny}).eval()


def hf_hidden_states(encoder: nn.Module, batch: PackedBatch) -> list[torch.Tensor]:
    """HF's own padded forward (HF derives the positions itself), each layer unpadded to [N, H]."""
    ids, mask, _ = to_padded(batch, pad_token_id=int(encoder.config.pad_token_id))
    out = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return [unpad_tokens(h, batch) for h in out.hidden_states]


@pytest.mark.parametrize("lengths", LENGTH_MIXES)
def test_packed_equals_hf_padded(encoder: nn.Module, lengths: list[int]) -> None:
    batch = make_batch(lengths)
    with torch.no_grad():
        reference = hf_hidden_states(encoder, batch)
        packed = encode_packed(encoder, batch)
    assert packed.shape == (sum(lengths), 32)
    torch.testing.assert_close(packed, reference[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded_forward(encoder, batch), reference[-1], atol=0, rtol=0)


@pytest.mark.parametrize("layer", range(LAYERS + 1))
def test_layer_k_equals_hf_hidden_states_k(encoder: nn.Module, layer: int) -> None:
    batch = make_batch([5, 1, 17, 3], seed=1)
    with torch.no_grad():
        reference = hf_hidden_states(encoder, batch)[layer]
        torch.testing.assert_close(
            encode_packed(encoder, batch, layer), reference, atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(padded_forward(encoder, batch, layer), reference, atol=0, rtol=0)


def test_layer_out_of_range_is_a_config_error(encoder: nn.Module) -> None:
    with pytest.raises(ConfigError, match="layer 3"):
        encode_packed(encoder, make_batch([4]), layer=LAYERS + 1)


def test_xlmr_positions_start_at_two_and_matter(encoder: nn.Module) -> None:
    batch = make_batch([3, 1, 2])
    assert batch.position_ids.tolist() == [2, 3, 4, 2, 2, 3]
    with torch.no_grad():
        reference = hf_hidden_states(encoder, batch)[-1]
        batch.position_ids = batch.position_ids - 2  # the 0-based positions of transformers#47496
        wrong = encode_packed(encoder, batch)
    assert (wrong - reference).abs().max() > 1e-2


def test_bf16_autocast_agrees_with_fp32(encoder: nn.Module) -> None:
    torch.manual_seed(0)
    head = nn.Linear(32, 3)  # a classification-style head on each sequence's <s>
    batch = make_batch([5, 1, 17, 3, 12], seed=2)
    with torch.no_grad():
        reference = head(hf_hidden_states(encoder, batch)[-1][batch.first_token_index])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = head(encode_packed(encoder, batch)[batch.first_token_index])
    assert logits.dtype == torch.bfloat16  # autocast really was in effect
    torch.testing.assert_close(logits.float(), reference, atol=5e-2, rtol=5e-2)


def test_gradients_match_hf_padded(encoder: nn.Module) -> None:
    batch = make_batch([5, 1, 17, 3], seed=3)
    weights = torch.randn(batch.num_tokens, 32, generator=torch.Generator().manual_seed(0))

    def grads(hidden_fn) -> dict[str, torch.Tensor]:
        encoder.zero_grad()
        (hidden_fn() * weights).sum().backward()
        return {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}

    packed = grads(lambda: encode_packed(encoder, batch))
    reference = grads(lambda: hf_hidden_states(encoder, batch)[-1])
    encoder.zero_grad()
    assert packed.keys() == reference.keys()
    assert packed["encoder.layer.0.attention.self.query.weight"].abs().sum() > 0
    for name in reference:
        torch.testing.assert_close(packed[name], reference[name], atol=1e-4, rtol=1e-4)


def test_dropout_follows_training_mode() -> None:
    tiny = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 64}  # fmt: skip
    enc = load_encoder({"tiny": tiny})
    batch = make_batch([6, 4])
    enc.train()
    assert not torch.equal(encode_packed(enc, batch), encode_packed(enc, batch))
    enc.eval()
    assert torch.equal(encode_packed(enc, batch), encode_packed(enc, batch))


def test_bert_positions_start_at_zero() -> None:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)  # fmt: skip
    bert = BertModel(config, add_pooling_layer=False).eval()
    assert supports_packed(bert)
    batch = make_batch([4, 1, 7])
    with torch.no_grad():
        torch.testing.assert_close(
            encode_packed(bert, batch), hf_hidden_states(bert, batch)[-1], atol=1e-5, rtol=1e-5
        )


def test_other_encoders_fall_back_to_padded_forward() -> None:
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    distil = DistilBertModel(config).eval()
    assert not supports_packed(distil)
    batch = make_batch([4, 1, 7])
    with torch.no_grad():
        hidden = encode_packed(distil, batch, layer=1)
        torch.testing.assert_close(hidden, hf_hidden_states(distil, batch)[1], atol=0, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_agrees_with_fp32(encoder: nn.Module) -> None:
    gpu = encoder.to("cuda")
    try:
        batch = make_batch([5, 1, 17, 3, 64], seed=4).to("cuda")
        with torch.no_grad():
            reference = hf_hidden_states(gpu, batch)[-1]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                hidden = encode_packed(gpu, batch)
        torch.testing.assert_close(hidden.float(), reference, atol=5e-2, rtol=5e-2)
    finally:
        encoder.to("cpu")


def test_activation_checkpointing_gives_same_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0}  # fmt: skip
    calls = []

    def counting_checkpoint(*args, **kwargs):
        calls.append(1)
        return torch.utils.checkpoint.checkpoint(*args, **kwargs)

    monkeypatch.setattr(packed_module, "checkpoint", counting_checkpoint)
    batch = make_batch([5, 1, 9])
    grads = []
    for recompute in (False, True):
        enc = load_encoder({"tiny": tiny}).train()
        if recompute:
            # transformers renamed the switch; use whichever this version has.
            enable = getattr(enc, "activation_checkpointing_enable", None)
            enable = enable or enc.gradient_checkpointing_enable
            enable()
        encode_packed(enc, batch).pow(2).sum().backward()
        grads.append(enc.embeddings.word_embeddings.weight.grad)
    assert len(calls) == 2  # one per layer, only in the checkpointed run
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("lengths", "training"), [([5, 1, 17, 3], False), ([8, 8, 8], True)])
def test_packed_forward_is_one_graph_without_host_syncs(
    encoder: nn.Module, lengths: list[int], training: bool
) -> None:
    # A host sync inside the model (bool(mask.all()), .nonzero(), .item()) breaks the graph
    # that torch.compile (--compile) traces; the packed forward must have none.
    batch = make_batch(lengths, seed=5)
    encoder.train(training)
    try:
        explained = torch._dynamo.explain(encode_packed)(encoder, batch)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0)
        compiled = torch.compile(encode_packed, fullgraph=True, backend="eager")
        if not training:  # dropout draws differ between runs; eval must match exactly
            torch.testing.assert_close(compiled(encoder, batch), encode_packed(encoder, batch))
        else:
            assert compiled(encoder, batch).shape == (sum(lengths), 32)
    finally:
        encoder.eval()
        torch._dynamo.reset()


def test_attention_path_order(encoder: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda", 0)
    bf16 = torch.bfloat16
    assert packed_module.attention_path(encoder, "cpu", torch.float32, True) == "sdpa-padded-view"
    distil = DistilBertModel(DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=1, n_heads=2))
    assert packed_module.attention_path(distil, "cpu", torch.float32, False) == "hf-padded"
    # The CUDA choices, decided without a GPU: pretend the device has FlashAttention kernels.
    monkeypatch.setattr(packed_module, "_flash_capable", lambda index: True)
    monkeypatch.setattr(packed_module, "_FLASH_ATTN", None)
    monkeypatch.setattr(packed_module, "_TORCH_VARLEN", lambda *a, **k: None)
    select = packed_module._select_path
    assert select(cuda, bf16, 0.0) == "torch-varlen"
    assert select(cuda, torch.float32, 0.0) == "sdpa-padded-view"  # FlashAttention: half only
    # varlen_attn has no dropout: a configured attention dropout is kept by padded SDPA.
    assert select(cuda, bf16, 0.1) == "sdpa-padded-view"
    assert packed_module.attention_path(encoder, cuda, bf16, training=False) == "torch-varlen"
    assert packed_module.attention_path(encoder, cuda, bf16, training=True) == "sdpa-padded-view"
    monkeypatch.setattr(packed_module, "_FLASH_ATTN", lambda *a, **k: None)
    assert select(cuda, bf16, 0.1) == "flash-attn-varlen"
    monkeypatch.setattr(packed_module, "_flash_capable", lambda index: False)
    assert select(cuda, bf16, 0.0) == "sdpa-padded-view"  # e.g. a V100: no flash kernels


def test_torch_varlen_is_found_and_asked_for_full_attention() -> None:
    fn = packed_module._load_torch_varlen()
    assert fn is not None  # torch >= 2.10 ships torch.nn.attention.varlen
    # Whichever signature this torch has, non-causal attention is requested explicitly.
    assert fn.keywords in ({"window_size": (-1, -1)}, {"is_causal": False})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_varlen_logits_equal_padded_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    if packed_module._TORCH_VARLEN is None or torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("no torch varlen_attn or no FlashAttention-capable GPU")
    tiny = {"vocab_size": VOCAB, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 128, "seed": 0}  # fmt: skip
    enc = load_encoder({"tiny": tiny}).to("cuda").eval()
    torch.manual_seed(0)
    head = nn.Linear(64, 3).to("cuda")
    batch = make_batch([5, 1, 17, 3, 64, 2], seed=6).to("cuda")
    assert packed_module.attention_path(enc, "cuda", torch.bfloat16, False) == "torch-varlen"

    def logits() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return head(encode_packed(enc, batch)[batch.first_token_index]).float()

    varlen = logits()
    monkeypatch.setattr(packed_module, "_TORCH_VARLEN", None)
    monkeypatch.setattr(packed_module, "_FLASH_ATTN", None)
    padded = logits()  # the SDPA padded-view fallback, same weights and batch
    torch.testing.assert_close(varlen, padded, atol=2e-2, rtol=2e-2)
    assert not torch.equal(varlen, torch.zeros_like(varlen))
