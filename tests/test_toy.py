"""Toy models: outputs known by hand, and the stitched track equal to the function on the contig."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nttracks.bases import encode
from nttracks.errors import ModelError
from nttracks.models.base import Geometry
from nttracks.models.toy import TOY_GEOMETRY, BaseIdentityModel, WindowPositionModel
from nttracks.predict import predict_windows
from nttracks.stitch import ContigStitcher, window_weights
from nttracks.tiling import plan_tiles


def _codes(seq: str) -> torch.Tensor:
    return torch.from_numpy(encode(seq)).unsqueeze(0)


def test_base_identity_by_hand() -> None:
    seq = "GGCCAA" + "ATATAT" + "GCGCGC" + "ACGTNN"
    out = BaseIdentityModel()(_codes(seq * 2))[0]  # the toy geometry's minimum is 48 bp
    assert out.shape == (48, 5) and out.dtype == torch.float32
    gc6 = out[:, 4].numpy()
    assert np.array_equal(gc6[:24], np.float32([4 / 6] * 6 + [0] * 6 + [1] * 6 + [2 / 6] * 6))
    assert np.array_equal(gc6[24:], gc6[:24])
    onehot = out[:24, :4]
    assert onehot[:6].argmax(1).tolist() == [2, 2, 1, 1, 0, 0]
    assert onehot.sum(1).tolist() == [1] * 22 + [0, 0]  # N: zeros in A..T
    assert onehot[18:22].tolist() == torch.eye(4).tolist()


def test_base_identity_batch() -> None:
    rng = np.random.default_rng(1)
    codes = torch.from_numpy(rng.integers(0, 5, size=(3, 48)).astype(np.uint8))
    out = BaseIdentityModel(Geometry(48, 24, 24, 6))(codes)
    assert out.shape == (3, 48, 5)
    for b in range(3):
        assert torch.equal(out[b : b + 1], BaseIdentityModel(Geometry(48, 24, 24, 6))(codes[b : b + 1]))


@pytest.mark.parametrize("length", [30, 1190, 12])
def test_rejects_bad_length(length: int) -> None:
    codes = torch.zeros((1, length), dtype=torch.uint8)
    for model in (BaseIdentityModel(), WindowPositionModel()):
        with pytest.raises(ModelError, match=f"window of {length} bp"):
            model(codes)


def test_window_position() -> None:
    out = WindowPositionModel()(torch.zeros((2, 48), dtype=torch.uint8))
    assert out.shape == (2, 48, 1)
    assert np.array_equal(out[1, :, 0].numpy(), np.float32([i / 48 for i in range(48)]))
    assert torch.equal(out[0], out[1])


def test_geometry() -> None:
    assert TOY_GEOMETRY == Geometry(window=1200, multiple=24, min_length=48, grid=6)
    assert BaseIdentityModel.channels == ("A", "C", "G", "T", "gc6")
    assert WindowPositionModel.channels == ("pos",)


@pytest.mark.parametrize("mode", ["taper", "nearest", "mean"])
@pytest.mark.parametrize("stride", [6, 42, 120])
def test_stitched_toy_track_is_known(mode: str, stride: int) -> None:
    """Tile, predict and stitch a contig: every base equals the model applied to the contig directly."""
    geometry = Geometry(window=120, multiple=24, min_length=48, grid=6)
    rng = np.random.default_rng(stride)
    chrom = rng.integers(0, 4, size=1000).astype(np.uint8)
    start, end = 7, 7 + 900  # a contig off the chromosome's own 6-mer grid
    plan = plan_tiles([("chr1", start, end)], geometry, stride=stride)
    stitcher = ContigStitcher(np, start, int(plan.scored_end[0]), 5, geometry.window)
    parts = []
    model = BaseIdentityModel(geometry)
    read = {"chr1": chrom}.__getitem__
    for row, out in predict_windows(model, plan, read, batch_size=4, device=torch.device("cpu")):
        s, e = int(plan.start[row]), int(plan.end[row])
        keep = (int(plan.keep_start[row]) - s, int(plan.keep_end[row]) - s)
        parts.append(stitcher.add(s, out.numpy(), window_weights(np, e - s, mode, keep))[1])
    parts.append(stitcher.finish()[1])
    stitched = np.concatenate(parts)
    scored = int(plan.scored_end[0]) - start
    whole = torch.from_numpy(chrom[start : start + scored])[None]
    expected = BaseIdentityModel(Geometry(scored, 6, 6, 6))(whole)
    assert np.array_equal(stitched, expected[0].numpy())
    assert stitcher.seam_qc().tolist() == [0] * 5
