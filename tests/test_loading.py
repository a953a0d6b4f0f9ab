"""Checkpoint loading: layouts, strict tensor checks, HF ids offline, describe_model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from nttracks.errors import CheckpointError, ModelError
from nttracks.models.inspect import describe_model
from nttracks.models.loading import (
    load_nt,
    load_nt_backbone,
    read_tensors,
    resolve_checkpoint,
    save_random_nt,
)
from nttracks.models.nt import NTForMaskedLM


@pytest.fixture()
def checkpoint(tmp_path):
    return save_random_nt(tmp_path / "ckpt", version="v2", hidden=32, layers=2, heads=4, seed=0)


def rewrite(directory, change):
    tensors = load_file(str(directory / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_round_trip(tmp_path, version):
    directory = save_random_nt(tmp_path, version=version, hidden=32, layers=2, heads=4, seed=5)
    model = load_nt(directory)
    assert isinstance(model, NTForMaskedLM)
    assert model.config.rotary == (version == "v2") and model.config.glu == (version == "v2")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    again = load_nt(save_random_nt(tmp_path / "again", version=version, hidden=32, layers=2, heads=4, seed=5))
    assert same_weights(model, again)
    backbone = load_nt_backbone(directory)
    assert same_weights(backbone, model.backbone)


def test_missing_tensor_is_named(checkpoint):
    rewrite(checkpoint, lambda t: t.pop("esm.encoder.layer.1.attention.self.value.bias"))
    with pytest.raises(
        CheckpointError, match=r"lacks tensor esm\.encoder\.layer\.1\.attention\.self\.value\.bias"
    ):
        load_nt(checkpoint)


def test_wrong_shape_is_named(checkpoint):
    def shrink(tensors):
        tensors["lm_head.dense.weight"] = tensors["lm_head.dense.weight"][:, :16].contiguous()

    rewrite(checkpoint, shrink)
    with pytest.raises(
        CheckpointError, match=r"lm_head\.dense\.weight has shape \(32, 16\), expected \(32, 32\)"
    ):
        load_nt(checkpoint)


def test_unexpected_tensor_is_named(checkpoint):
    rewrite(checkpoint, lambda t: t.update({"esm.encoder.layer.0.attention.self.extra": torch.zeros(3)}))
    with pytest.raises(
        CheckpointError, match=r"does not use: esm\.encoder\.layer\.0\.attention\.self\.extra"
    ):
        load_nt(checkpoint)


def test_known_unused_tensors_are_ignored(checkpoint):
    def add(tensors):
        tensors["esm.encoder.layer.0.attention.self.rotary_embeddings.inv_freq"] = torch.zeros(4)
        tensors["esm.encoder.layer.*.attention.self.rotary_embeddings.inv_freq"] = torch.zeros(4)
        tensors["esm.embeddings.position_ids"] = torch.arange(10)
        tensors["esm.contact_head.regression.weight"] = torch.zeros(1, 8)
        tensors["esm.contact_head.regression.bias"] = torch.zeros(1)

    rewrite(checkpoint, add)
    assert "esm.embeddings.position_embeddings.weight" in load_file(str(checkpoint / "model.safetensors"))
    load_nt(checkpoint)


def test_learned_positions_are_required_for_v1(tmp_path):
    directory = save_random_nt(tmp_path, version="v1", hidden=32, layers=1, heads=4)
    rewrite(directory, lambda t: t.pop("esm.embeddings.position_embeddings.weight"))
    with pytest.raises(CheckpointError, match="position_embeddings"):
        load_nt(directory)


def test_bin_and_sharded_layouts(checkpoint, tmp_path):
    tensors = load_file(str(checkpoint / "model.safetensors"))
    reference = load_nt(checkpoint)
    config = (checkpoint / "config.json").read_text()

    as_bin = tmp_path / "bin"
    as_bin.mkdir()
    (as_bin / "config.json").write_text(config)
    torch.save(tensors, as_bin / "pytorch_model.bin")
    assert same_weights(load_nt(as_bin), reference)

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text(config)
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for filename, keys in halves.items():
        save_file({k: tensors[k] for k in keys}, str(sharded / filename))
    index = {"weight_map": {k: f for f, keys in halves.items() for k in keys}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    assert same_weights(load_nt(sharded), reference)


def test_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_nt(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no weights"):
        read_tensors(tmp_path)


def test_ffn_shape_decides_glu(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    config["intermediate_size"] = 100
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="intermediate_size 100"):
        load_nt(checkpoint)


def test_hf_id_offline_error(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelError, match=r"InstaDeepAI/not-a-cached-model.*copy the files into a directory"):
        resolve_checkpoint("InstaDeepAI/not-a-cached-model")


def test_not_a_path_nor_an_id(tmp_path):
    with pytest.raises(ModelError, match="neither a directory nor"):
        resolve_checkpoint(str(tmp_path / "missing" / "deep" / "dir"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        resolve_checkpoint(tmp_path / "file")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_describe_model(tmp_path, version):
    directory = save_random_nt(tmp_path, version=version, hidden=32, layers=2, heads=4)
    info = describe_model(directory)
    model = load_nt(directory)
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert info.config == model.config
    assert info.geometry.window == (5994 if version == "v1" else 12282)
    text = str(info)
    assert f"{info.parameters:,}" in text
    assert ("SwiGLU FFN without bias" if version == "v2" else "GELU FFN with bias") in text
    assert ("4107 tokens" if version == "v2" else "4105 tokens") in text
    assert "window" in text and "bp default" in text


def test_hf_id_uses_snapshot_download(tmp_path, monkeypatch):
    """The download path without network: snapshot_download replaced by a local stand-in."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    with_safetensors = save_random_nt(tmp_path / "st", hidden=32, layers=1, heads=4)
    only_bin = tmp_path / "bin"
    only_bin.mkdir()
    (only_bin / "config.json").write_text((with_safetensors / "config.json").read_text())
    torch.save(load_file(str(with_safetensors / "model.safetensors")), only_bin / "pytorch_model.bin")
    calls = []

    def fake(repo_id, allow_patterns, local_files_only):
        calls.append((repo_id, tuple(allow_patterns)))
        if repo_id == "owner/st":
            return str(with_safetensors)
        return str(only_bin if "*.bin" in allow_patterns else tmp_path / "empty")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert resolve_checkpoint("owner/st") == with_safetensors
    assert calls == [("owner/st", ("*.json", "*.safetensors"))]
    assert resolve_checkpoint("owner/bin") == only_bin  # no safetensors: falls back to the .bin files
    assert calls[-1] == ("owner/bin", ("*.json", "*.bin"))
    assert same_weights(load_nt("owner/bin"), load_nt(with_safetensors))
