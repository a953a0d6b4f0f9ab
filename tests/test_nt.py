"""NT backbone and LM head: parity with transformers' EsmForMaskedLM, SwiGLU, bf16, per-base views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nttracks.errors import ModelError
from nttracks.models.loading import load_nt, save_random_nt, tiny_nt_config
from nttracks.models.nt import (
    FeedForward,
    NTConfig,
    NTForMaskedLM,
    apply_rotary,
    init_weights,
    per_base_embeddings,
    per_base_probabilities,
    rotary_cos_sin,
)
from nttracks.models.tokenizer import V1, V2, tokenize


def hf_checkpoint(directory, *, rotary: bool, tie: bool = False):
    """A tiny random EsmForMaskedLM saved by transformers; weights widened so outputs are O(1)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.EsmConfig(
        vocab_size=4107 if rotary else 4105,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=96,
        position_embedding_type="rotary" if rotary else "absolute",
        max_position_embeddings=2050 if rotary else 1002,
        token_dropout=not rotary,
        pad_token_id=1,
        mask_token_id=2,
        layer_norm_eps=1e-12,
        emb_layer_norm_before=False,
        tie_word_embeddings=tie,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )
    torch.manual_seed(1 if rotary else 2)
    model = transformers.EsmForMaskedLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            elif p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.1)
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    model.save_pretrained(directory)
    return model


def windows(with_n: bool) -> np.ndarray:
    codes = np.random.default_rng(3).integers(0, 4, (3, 150), dtype=np.uint8)
    if with_n:
        codes[1, 50] = 4
        codes[2, 7:10] = 4
    return codes


@pytest.mark.parametrize("rotary", [False, True], ids=["v1-absolute", "rotary"])
@pytest.mark.parametrize("with_n", [False, True], ids=["clean", "with-N"])
def test_parity_with_transformers(tmp_path, rotary, with_n):
    reference = hf_checkpoint(tmp_path, rotary=rotary)
    ours = load_nt(tmp_path)
    assert ours.config.rotary == rotary and not ours.config.glu and ours.config.ffn_bias
    tokens = tokenize(windows(with_n), V2 if rotary else V1)
    assert tokens.padded == with_n
    mask = None if tokens.pad_mask is None else (~tokens.pad_mask).long()
    with torch.no_grad():
        expected = reference(input_ids=tokens.ids, attention_mask=mask, output_hidden_states=True)
        logits = ours(tokens.ids, tokens.pad_mask)
        last = ours.backbone(tokens.ids, tokens.pad_mask)
        middle = ours.backbone.hidden_states(tokens.ids, 2, tokens.pad_mask)
    keep = tokens.ids.ne(1)  # HF and JAX differ at pad positions; compare real tokens only
    assert expected.logits.abs().max() > 1  # the comparison is not between near-zero numbers
    torch.testing.assert_close(logits[keep], expected.logits[keep], atol=1e-4, rtol=0)
    torch.testing.assert_close(last[keep], expected.hidden_states[-1][keep], atol=1e-4, rtol=0)
    torch.testing.assert_close(middle[keep], expected.hidden_states[2][keep], atol=1e-4, rtol=0)


def test_tied_decoder(tmp_path):
    """transformers' default ties the LM decoder to the word embeddings and then does not save it."""
    from safetensors.torch import load_file

    reference = hf_checkpoint(tmp_path, rotary=True, tie=True)
    assert "lm_head.decoder.weight" not in load_file(str(tmp_path / "model.safetensors"))
    ids = tokenize(windows(False), V2).ids
    with torch.no_grad():
        torch.testing.assert_close(load_nt(tmp_path)(ids), reference(input_ids=ids).logits, atol=1e-4, rtol=0)


def test_swiglu_against_hand_computation():
    config = NTConfig(hidden=8, layers=1, heads=2, intermediate=5, glu=True, ffn_bias=False)
    ffn = FeedForward(config)
    init_weights(ffn, torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(1))
    w1, w2 = ffn.fc1.weight.detach().numpy(), ffn.fc2.weight.detach().numpy()
    assert w1.shape == (10, 8) and ffn.fc1.bias is None and ffn.fc2.bias is None
    xn = x.numpy().astype(np.float64)
    gate, value = xn @ w1[:5].T, xn @ w1[5:].T  # first half of fc1's rows is gated
    hidden = gate / (1 + np.exp(-gate)) * value
    expected = hidden @ w2.T
    np.testing.assert_allclose(ffn(x).detach().numpy(), expected, atol=1e-5)


def test_rotary_rotate_half():
    cos, sin = rotary_cos_sin(5, 4, 10000.0, torch.device("cpu"))
    x = torch.randn(1, 1, 5, 4)
    out = apply_rotary(x, cos, sin)
    # pairs (i, i + d/2) rotate by angle t * base^(-2i/d)
    for t in range(5):
        for i in range(2):
            angle = t * 10000.0 ** (-2 * i / 4)
            a, b = x[0, 0, t, i], x[0, 0, t, i + 2]
            assert out[0, 0, t, i].item() == pytest.approx(
                (a * math.cos(angle) - b * math.sin(angle)).item(), abs=1e-5
            )
            assert out[0, 0, t, i + 2].item() == pytest.approx(
                (b * math.cos(angle) + a * math.sin(angle)).item(), abs=1e-5
            )


def test_bf16_agrees_with_fp32(tmp_path):
    save_random_nt(tmp_path, version="v2", hidden=64, layers=2, heads=4, seed=0)
    fp32 = load_nt(tmp_path)
    bf16 = load_nt(tmp_path, dtype=torch.bfloat16)
    tokens = tokenize(windows(False), V2)
    with torch.no_grad():
        a = fp32.backbone(tokens.ids)
        b = bf16.backbone(tokens.ids).float()
        la = fp32(tokens.ids).log_softmax(-1)
        lb = bf16(tokens.ids).float().log_softmax(-1)
    embedding_error = ((a - b).norm(dim=-1) / a.norm(dim=-1)).max().item()
    log_prob_error = (la - lb).abs().max().item()
    # measured on this model: 1.8e-2 relative embedding error, 0.09 nats worst log-probability error
    # (logits have std ~1); bf16 keeps 8 mantissa bits, so ~4e-3 per rounding.
    assert embedding_error < 5e-2, embedding_error
    assert log_prob_error < 0.25, log_prob_error


def test_learned_positions_limit():
    model = NTForMaskedLM(tiny_nt_config("v1", hidden=16, layers=1, heads=2))
    ids = torch.full((1, 1001), 4)
    with pytest.raises(ModelError, match="1000 learned positions"):
        model(ids)


def test_per_base_embeddings_repeat_tokens():
    tokens = tokenize(np.array([[0, 1, 2, 3, 0, 1, 4, 2]], np.uint8), V2)  # ACGTAC N G
    embeddings = torch.arange(tokens.ids.shape[1], dtype=torch.float32).view(1, -1, 1).expand(1, -1, 3)
    per_base = per_base_embeddings(embeddings, tokens)
    assert per_base[0, :, 0].tolist() == [1, 1, 1, 1, 1, 1, 2, 3]


def test_per_base_probabilities_marginalize_kmers():
    vocab = V2
    tokens = tokenize(np.array([[0, 1, 2, 3, 0, 1, 3, 4]], np.uint8), vocab)  # ACGTAC T N
    logits = torch.full((1, tokens.ids.shape[1], vocab.size), -1e4)
    # 6-mer token: half the mass on ACGTAC, half on TCGTAC -> offset 0 is A/T 50:50, the rest certain
    logits[0, 1, vocab.kmer_id("ACGTAC")] = 0.0
    logits[0, 1, vocab.kmer_id("TCGTAC")] = 0.0
    # single-nucleotide token T: G wins
    logits[0, 2, vocab.single_id("G")] = 5.0
    probs = per_base_probabilities(logits, tokens, vocab)
    assert probs.shape == (1, 8, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 8))
    acgt = "ACGT"
    assert probs[0, 0].tolist() == pytest.approx([0.5, 0, 0, 0.5])
    for position, base in enumerate("ACGTAC"[1:], start=1):
        assert probs[0, position, acgt.index(base)].item() == pytest.approx(1.0)
    assert probs[0, 6, acgt.index("G")].item() > 0.97


def test_per_base_probabilities_brute_force():
    vocab = V1
    tokens = tokenize(np.random.default_rng(0).integers(0, 4, (2, 14), dtype=np.uint8), vocab)
    logits = torch.randn(2, tokens.ids.shape[1], vocab.size, generator=torch.Generator().manual_seed(0))
    probs = per_base_probabilities(logits, tokens, vocab)
    kmer_probs = F.softmax(logits[..., vocab.kmer_offset : vocab.kmer_offset + 4096], dim=-1)
    texts = [vocab.token_text(vocab.kmer_offset + k) for k in range(4096)]
    for b in range(2):
        for position in range(12):  # the two 6-mers
            token, offset = tokens.token_of_base[b, position].item(), position % 6
            for column, base in enumerate("ACGT"):
                mass = sum(kmer_probs[b, token, k].item() for k, t in enumerate(texts) if t[offset] == base)
                assert probs[b, position, column].item() == pytest.approx(mass, abs=1e-5)


def test_parameter_counts_of_released_shapes():
    """Full-size architectures built on the meta device match the released checkpoints' sizes (nt_spec §6)."""
    with torch.device("meta"):
        v2_500m = NTForMaskedLM(NTConfig(4107, 1024, 29, 16, 4096))
        v2_50m = NTForMaskedLM(NTConfig(4107, 512, 12, 16, 2048))
    # spec: 496.2 M / 54.86 M without the unused 2050-row position table (ours has none)
    assert sum(p.numel() for p in v2_500m.parameters()) / 1e6 == pytest.approx(496.2, abs=0.05)
    assert sum(p.numel() for p in v2_50m.parameters()) / 1e6 == pytest.approx(54.86, abs=0.01)


def test_benchmark_runs(monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    pytest.importorskip("transformers")

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_backbone.py"
    argv = ["bench", "--hidden", "32", "--layers", "1", "--heads", "4", "--tokens", "64", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "nttracks" in out and "transformers" in out and "ratio" in out


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("with_n", [False, True], ids=["clean", "padded"])
def test_explicit_attention_path_reproduces_the_fused_one(version, with_n):
    from nttracks.models.nt import attention_maps

    model = NTForMaskedLM(tiny_nt_config(version, hidden=32, layers=3, heads=4))
    init_weights(model, torch.Generator().manual_seed(5))
    model.eval()
    tokens = tokenize(windows(with_n), V2 if version == "v2" else V1)
    with torch.no_grad():
        fused = model.backbone(tokens.ids, tokens.pad_mask)
        maps = attention_maps(model.backbone, tokens.ids, pad_mask=tokens.pad_mask)
        first = attention_maps(model.backbone, tokens.ids, layers=(0,), pad_mask=tokens.pad_mask)
    keep = tokens.ids.ne(1)
    assert fused.abs().max() > 0.5
    torch.testing.assert_close(maps.hidden[keep], fused[keep], atol=1e-5, rtol=0)
    assert sorted(maps.probs) == [0, 1, 2]
    queries = tokens.ids.shape[1]
    for probs in maps.probs.values():
        assert probs.shape == (3, 4, queries, queries) and probs.dtype == torch.float32
        # every query's weights sum to 1, so a head's attention mass over the window's keys is the query count
        torch.testing.assert_close(probs.sum(dim=(-1, -2)), torch.full((3, 4), float(queries)), atol=1e-4, rtol=0)
        if with_n:
            assert (probs[~keep[:, None, None, :].expand_as(probs)] == 0).all()  # no weight on <pad> keys
    # asked for layer 0 only: the blocks after it are not run
    assert list(first.probs) == [0]
    torch.testing.assert_close(first.probs[0], maps.probs[0], atol=0, rtol=0)
    expected = model.backbone.hidden_states(tokens.ids, 1, tokens.pad_mask)
    torch.testing.assert_close(first.hidden[keep], expected[keep], atol=1e-5, rtol=0)


def test_explicit_attention_rejects_a_layer_the_model_lacks():
    from nttracks.models.nt import attention_maps

    model = NTForMaskedLM(tiny_nt_config("v2", hidden=16, layers=2, heads=2))
    with pytest.raises(ModelError, match=r"attention layer 2 does not exist: this model has layers 0\.\.1"):
        attention_maps(model.backbone, torch.full((1, 5), 6), layers=(2,))
