"""Track families as plug-ins: a family defined here runs end to end; coarse and context-dependent toy
models stitched and checked at every base against a hand computation (tests/handstitch.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import handstitch
import numpy as np
import pyBigWig
import pytest
import torch

from nttracks.config import parse_config
from nttracks.errors import ConfigError, ModelError
from nttracks.families import Family, LoadedModel, WindowSettings, get_family, register, registered, unregister
from nttracks.genome import Genome
from nttracks.hubs import validate_hub
from nttracks.models.base import Geometry, T
from nttracks.planning import RunRequest
from nttracks.registry import open_genome
from nttracks.runs import run_genome


@pytest.fixture(scope="module")
def demo() -> Genome:
    return open_genome("demo")


def read_track(out: Path, family: str, channel: str, chrom: str, length: int) -> np.ndarray:
    rel = json.loads((out / "manifest.json").read_text())["families"][family]["tracks"][channel]
    bw = pyBigWig.open(str(out / rel))
    try:
        return np.array(bw.values(chrom, 0, length), dtype=np.float64)
    finally:
        bw.close()


# ----------------------------------------------------------------------------- a family defined in a test


@dataclass(frozen=True)
class ThymineSettings(WindowSettings):
    scale: float = 1.0


class ThymineModel(torch.nn.Module):
    """scale x (base is T), per base; windows on a 3-bp grid."""

    channels = ("t",)

    def __init__(self, geometry: Geometry, scale: float) -> None:
        super().__init__()
        self.geometry, self.scale = geometry, scale

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        self.geometry.check_length(codes.shape[1])
        return (self.scale * (codes == T).float()).unsqueeze(-1)


class ThymineFamily(Family):
    name = "thymine"
    settings = ThymineSettings
    catalog_entry: ClassVar[Any] = {
        "short_label": "Thymine",
        "long_label": "Test family: scaled thymine indicator",
        "container": "composite",
        "group": "nt_predictions",
        "tracks": [
            {"channel": "t", "suffix": "t", "short_label": "T scaled", "long_label": "Scaled thymine indicator",
             "color": "200,0,0", "view_limits": [0, 1], "autoscale": False, "quantum": 4, "height": [32, 16, 8],
             "visibility": "full", "priority": 1},
        ],
    }
    html_template = "<h2>Description</h2>\n<p>$track_long_label on $genome ($model).</p>\n"

    def geometry(self, settings: ThymineSettings) -> Geometry:
        return Geometry(window=300, multiple=3, min_length=30, grid=3)

    def channels(self, settings: ThymineSettings) -> tuple[str, ...]:
        return ("t",)

    def check(self, settings: ThymineSettings, where: str, source: str) -> None:
        if not 0 < settings.scale <= 1:
            raise ConfigError(f"{source}: {where}.scale: must be in (0, 1], got {settings.scale}")

    def load(self, settings: ThymineSettings, geometry: Geometry, device: Any) -> LoadedModel:
        return LoadedModel(ThymineModel(geometry, settings.scale).to(device), "none", "thymine test model")


@pytest.fixture
def thymine() -> Any:
    family = register(ThymineFamily())
    yield family
    unregister(family.name)


def test_a_family_defined_in_a_test_runs_end_to_end(thymine: Family, demo: Genome, tmp_path: Path) -> None:
    assert "thymine" in registered() and get_family("thymine") is thymine
    config = parse_config({"families": {"thymine": {"scale": 0.75, "window": 300, "overlap": 150}}})
    out = tmp_path / "hub"
    result = run_genome(RunRequest(genome="demo", config=config, out=out, chroms=("chr3",)))
    assert validate_hub(out) == []
    assert result.manifest["families"]["thymine"]["settings"]["scale"] == 0.75
    codes = demo.codes("chr3")
    values = read_track(out, "thymine", "t", "chr3", len(codes))
    for contig in demo.contigs(["chr3"]):
        n = 300 + (contig.length - 300) // 3 * 3 if contig.length >= 300 else contig.length // 3 * 3
        cc = codes[contig.start : contig.start + n]
        np.testing.assert_array_equal(values[contig.start : contig.start + n], 0.75 * (cc == T))
        assert np.isnan(values[contig.start + n : contig.end]).all()  # fewer than 3 bases at the end
    page = (out / "demo" / "thymine_t.html").read_text()
    assert "Scaled thymine indicator on demo (thymine test model)" in page
    assert "scale: 0.75" in page and "checkpoint" not in page


def test_a_family_defined_in_a_test_checks_its_own_keys(thymine: Family) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: families\.thymine\.scale: must be in \(0, 1\]"):
        parse_config({"families": {"thymine": {"scale": 2}}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"families\.thymine\.model: unknown key"):
        parse_config({"families": {"thymine": {"model": "x"}}}, source="c.yaml")


def test_registry_rejects_a_second_family_of_the_same_name() -> None:
    class Other(Family):
        name = "toy"

    with pytest.raises(ModelError, match="already registered"):
        register(Other())
    with pytest.raises(ConfigError, match="unknown track family 'nope'; known families: toy, elements"):
        get_family("nope")


# ----------------------------------------------------------------------------- known answers, every base


def toy_run(tmp_path: Path, model: str, stitch: str, chroms: tuple[str, ...], **extra: Any) -> Path:
    config = parse_config({"families": {"toy": {"model": model, "window": 1200, "overlap": 600, "stitch": stitch}}})
    out = tmp_path / f"hub-{model}-{stitch}"
    run_genome(RunRequest(genome="demo", config=config, out=out, chroms=chroms, **extra))
    return out


@pytest.mark.parametrize(
    ("model", "channel", "by_hand", "tol"),
    [
        ("window_gc", "window_gc", handstitch.window_gc, 1e-4),  # one value per window
        ("token_gc", "token_gc", handstitch.token_gc, 1e-6),  # one value per 6-mer token
        ("context_gc", "gc_context", handstitch.context_gc, 1e-4),  # depends on the window's context
    ],
)
@pytest.mark.parametrize("stitch", ["taper", "nearest", "mean"])
def test_toy_tracks_equal_a_hand_computation_at_every_base(
    demo: Genome, tmp_path: Path, model: str, channel: str, by_hand: Any, tol: float, stitch: str
) -> None:
    out = toy_run(tmp_path, model, stitch, ("chr2",), shard_bases=20_000)
    want = handstitch.stitch_chrom(demo, "chr2", by_hand, window=1200, stride=600, mode=stitch)
    got = read_track(out, "toy", channel, "chr2", demo.chrom_sizes["chr2"])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], atol=tol, rtol=0)
    if model == "window_gc" and stitch == "taper":
        # a coarse output really is spread over its window: more distinct values than windows would be a bug,
        # far fewer than bases shows it is not per base
        assert len(np.unique(got[~np.isnan(got)])) < np.isfinite(got).sum() / 10
