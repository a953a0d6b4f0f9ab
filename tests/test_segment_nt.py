"""SegmentNT: tiny HF checkpoint, U-Net vs an independent computation, rotary rescaling, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from nttracks.errors import CheckpointError, ModelError
from nttracks.models.base import Geometry, TrackModel
from nttracks.models.inspect import describe_model
from nttracks.models.nt import NTBackbone, NTConfig, init_weights
from nttracks.models.segment_nt import (
    FEATURES,
    TRAINING_RESCALING,
    SegmentNT,
    UNetHead,
    load_segment_nt,
    save_random_segment_nt,
)
from nttracks.models.tokenizer import V2, tokenize


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_random_segment_nt(tmp_path_factory.mktemp("segment_nt"), hidden=32, layers=2, heads=4, seed=0)


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_segment_nt(checkpoint)


def random_codes(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 4, (batch, length), dtype=np.uint8))


def test_loads_and_runs(model, checkpoint):
    assert isinstance(model, TrackModel)
    assert model.geometry == Geometry(window=30_000, multiple=24, min_length=240, grid=6, resolution=1)
    assert model.channels == FEATURES and len(FEATURES) == 14
    names = load_file(str(checkpoint / "model.safetensors")).keys()
    assert {n.split(".")[0] for n in names} == {"esm", "unet", "fc"}
    assert "unet._upsample_blocks.1.conv_layers.0.weight" in names
    with torch.inference_mode():
        probs = model(random_codes(3, 1200))
    assert probs.shape == (3, 1200, 14) and probs.dtype == torch.float32
    assert bool(((probs > 0) & (probs < 1)).all())
    assert probs.std() > 1e-3  # the random head is not constant


def test_batch_invariance(model):
    codes = random_codes(3, 480, seed=1)
    with torch.inference_mode():
        together = model(codes)
        alone = torch.cat([model(codes[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_bf16_close_to_fp32(checkpoint, model):
    bf16 = load_segment_nt(checkpoint, dtype=torch.bfloat16)
    codes = random_codes(2, 480, seed=2)
    with torch.inference_mode():
        error = (bf16(codes) - model(codes)).abs().max().item()
    assert bf16(codes).dtype == torch.float32
    assert error < 3e-2, error  # probabilities; measured ~5e-3


def test_rejects_n_and_bad_lengths(model):
    codes = random_codes(2, 480)
    codes[1, 100] = 4
    with pytest.raises(ModelError, match="cannot take N: window 1 has a non-ACGT base at position 100"):
        model(codes)
    with pytest.raises(ModelError, match="multiples of 24"):
        model(random_codes(1, 486))  # a multiple of 6, not of 24
    with pytest.raises(ModelError, match="at least 240"):
        model(random_codes(1, 216))
    with pytest.raises(ModelError, match="uint8"):
        model(random_codes(1, 480).long())
    with pytest.raises(ModelError, match="divisible by 4"):
        model.segment_logits(tokenize(random_codes(1, 30), V2).ids)


def test_rotary_base_rescaled_by_formula(model):
    config = model.config.with_(hidden=1024, heads=16)  # the released SegmentNT's head_dim 64
    d = 64
    assert config.rope_factor(5001) == TRAINING_RESCALING
    assert config.rope_base(5001) == pytest.approx(10000 * 2.44140625 ** (d / (d - 2)))
    assert config.rope_base(5001) == pytest.approx(25127.2, abs=0.1)
    assert config.rope_base(41) == config.rope_base(5001)  # always rescaled, even for short inputs
    # above 30 kb: s = tokens (incl. CLS) / 2048, e.g. 40,008 bp = 6668 tokens + CLS
    assert config.rope_factor(6669) == pytest.approx(6669 / 2048)
    assert config.rope_base(6669) == pytest.approx(10000 * (6669 / 2048) ** (d / (d - 2)))


def test_backbone_uses_rescaled_base(model):
    ids = tokenize(random_codes(1, 240), V2).ids
    plain = NTBackbone(model.config.with_(rope_scaling=None, rope_long_context=None))
    plain.load_state_dict(model.esm.state_dict())
    with torch.inference_mode():
        assert not torch.allclose(plain(ids), model.esm(ids), atol=1e-4)
        rescaled = NTBackbone(model.config.with_(rope_long_context=None))
        rescaled.load_state_dict(model.esm.state_dict())
        torch.testing.assert_close(rescaled(ids), model.esm(ids))


def test_head_reshape_order(checkpoint):
    """Each token's 168 outputs are 6 nucleotides x 14 features x 2 classes, in that order."""
    model = load_segment_nt(checkpoint)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.arange(168, dtype=torch.float32))
        logits = model.segment_logits(tokenize(random_codes(1, 48), V2).ids)
    assert logits.shape == (1, 48, 14, 2)
    for position in (0, 5, 6, 47):
        for feature in (0, 3, 13):
            for cls in (0, 1):
                expected = ((position % 6) * 14 + feature) * 2 + cls
                assert logits[0, position, feature, cls].item() == expected


# --- the U-Net against a NumPy computation written from the description -----------------------


def silu(x):
    return x / (1 + np.exp(-x))


def conv_same(x, w, b):
    """x (C_in, T), w (C_out, C_in, 3): y[o, t] = b[o] + sum_i,k w[o, i, k] x[i, t + k - 1], zero padded."""
    xp = np.pad(x, ((0, 0), (1, 1)))
    t = x.shape[1]
    return b[:, None] + sum(w[:, :, k] @ xp[:, k : k + t] for k in range(3))


def conv_transpose(x, w, b):
    """x (C_in, T), w (C_in, C_out, 3), stride 1, padding 1.

    y[o, t] = b[o] + sum_i,k w[i, o, k] x[i, t - k + 1]: input s scatters to output s + k - 1.
    """
    t = x.shape[1]
    y = np.tile(b[:, None], (1, t))
    for s in range(t):
        for k in range(3):
            out = s + k - 1
            if 0 <= out < t:
                y[:, out] += w[:, :, k].T @ x[:, s]
    return y


def test_unet_against_independent_computation():
    torch.manual_seed(0)
    head = UNetHead(embed_dim=4, num_layers=2)
    init_weights(head, torch.Generator().manual_seed(3), std=0.5)
    x = torch.randn(1, 4, 8)
    p = {k: v.detach().double().numpy() for k, v in head.state_dict().items()}

    def block(h, name, transposed=False, last=True):
        conv = conv_transpose if transposed else conv_same
        h = silu(conv(h, p[f"{name}.conv_layers.0.weight"], p[f"{name}.conv_layers.0.bias"]))
        h = conv(h, p[f"{name}.conv_layers.1.weight"], p[f"{name}.conv_layers.1.bias"])
        return silu(h) if last else h

    h = x[0].double().numpy()
    h0 = block(h, "_downsample_blocks.0")  # (4, 8)
    h = (h0[:, 0::2] + h0[:, 1::2]) / 2  # average pool -> (4, 4)
    h1 = block(h, "_downsample_blocks.1")  # (8, 4)
    h = (h1[:, 0::2] + h1[:, 1::2]) / 2  # (8, 2)
    h = block(h, "_upsample_blocks.0", transposed=True)  # (8, 2)
    h = np.repeat(h, 2, axis=1) + h1  # nearest x2, skip of level 1
    h = block(h, "_upsample_blocks.1", transposed=True)  # (4, 4)
    h = np.repeat(h, 2, axis=1) + h0  # nearest x2, skip of level 0
    expected = block(h, "final_block", last=False)
    assert p["_upsample_blocks.0.conv_layers.0.weight"].shape == (8, 8, 3)
    assert p["_upsample_blocks.1.conv_layers.0.weight"].shape == (8, 4, 3)  # [in, out, K]
    with torch.no_grad():
        got = head(x)[0].double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


# --- checkpoint strictness ----------------------------------------------------------------------


def edited_copy(checkpoint, tmp_path, change):
    directory = tmp_path / "edited"
    directory.mkdir()
    (directory / "config.json").write_text((checkpoint / "config.json").read_text())
    tensors = load_file(str(checkpoint / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(directory / "model.safetensors"))
    return directory


def test_missing_head_tensor_is_named(checkpoint, tmp_path):
    directory = edited_copy(checkpoint, tmp_path, lambda t: t.pop("unet.final_block.conv_layers.1.bias"))
    with pytest.raises(CheckpointError, match=r"lacks tensor unet\.final_block\.conv_layers\.1\.bias"):
        load_segment_nt(directory)


def test_wrong_head_shape_is_named(checkpoint, tmp_path):
    def change(tensors):
        tensors["unet._downsample_blocks.1.conv_layers.0.weight"] = torch.zeros(64, 32, 5)

    directory = edited_copy(checkpoint, tmp_path, change)
    with pytest.raises(
        CheckpointError, match=r"_downsample_blocks\.1\.conv_layers\.0\.weight has shape \(64, 32, 5\)"
    ):
        load_segment_nt(directory)


def test_lm_head_is_unexpected(checkpoint, tmp_path):
    directory = edited_copy(checkpoint, tmp_path, lambda t: t.update({"lm_head.bias": torch.zeros(4107)}))
    with pytest.raises(CheckpointError, match=r"does not use: lm_head\.bias"):
        load_segment_nt(directory)


def test_feature_names_from_config(tmp_path):
    names = tuple(f"feature_{i}" for i in range(3))
    directory = save_random_segment_nt(tmp_path, hidden=16, layers=1, heads=2, features=names)
    model = load_segment_nt(directory)
    assert model.channels == names
    with torch.inference_mode():
        assert model(random_codes(1, 240)).shape == (1, 240, 3)


def test_describe_segment_nt(checkpoint, model):
    info = describe_model(checkpoint)
    assert info.kind.startswith("SegmentNT")
    assert info.geometry == model.geometry and info.channels == FEATURES
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert "rescaled by x2.44140625" in str(info) and "30,000 bp default" in str(info)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_matches_cpu(checkpoint, model):
    gpu = load_segment_nt(checkpoint, device="cuda", dtype=torch.bfloat16)
    codes = random_codes(4, 1200, seed=4)
    with torch.inference_mode():
        error = (gpu(codes.cuda()).cpu() - model(codes)).abs().max().item()
    assert error < 3e-2, error


def test_window_choice(checkpoint):
    assert load_segment_nt(checkpoint, window=1200).geometry.window == 1200
    with pytest.raises(ModelError, match="multiples of 24"):
        load_segment_nt(checkpoint, window=1206)


def test_parameter_count_of_released_shape():
    """SegmentNT at full size: 66.25 M head, 559.3 M with the unused position table (nt_spec §3.3, §6)."""
    with torch.device("meta"):
        full = SegmentNT(NTConfig(4107, 1024, 29, 16, 4096, rope_scaling=TRAINING_RESCALING))
    head = sum(p.numel() for m in (full.unet, full.fc) for p in m.parameters())
    total = sum(p.numel() for p in full.parameters()) + 2050 * 1024
    assert head / 1e6 == pytest.approx(66.25, abs=0.01)
    assert total / 1e6 == pytest.approx(559.3, abs=0.05)
