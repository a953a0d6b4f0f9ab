"""The attention family: attention probabilities against transformers' eager ESM attention, the mass each
token receives (CLS neither a query nor a key of a track), the catalog's settings-dependent tracks, and the
stitched bigWigs against the window that owns each base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch
from test_nt import hf_checkpoint, windows

from nttracks.config import parse_config
from nttracks.errors import ConfigError, ModelError
from nttracks.families import get_family
from nttracks.hubs import load_catalog, validate_hub
from nttracks.models.attention import AttentionTracks
from nttracks.models.base import Geometry
from nttracks.models.loading import load_nt_backbone, save_random_nt
from nttracks.models.nt import attention_maps
from nttracks.models.tokenizer import V1, V2, tokenize, tokenize_acgt
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome


@pytest.mark.parametrize("rotary", [False, True], ids=["v1-absolute", "rotary"])
def test_attention_weights_equal_transformers_eager_attention(tmp_path: Path, rotary: bool) -> None:
    reference = hf_checkpoint(tmp_path, rotary=rotary)
    backbone = load_nt_backbone(tmp_path)
    tokens = tokenize(windows(False), V2 if rotary else V1)
    with torch.no_grad():
        expected = reference.esm(input_ids=tokens.ids, output_attentions=True).attentions
        ours = attention_maps(backbone, tokens.ids)
    assert len(expected) == len(ours.probs) == 3
    for layer, probs in ours.probs.items():
        torch.testing.assert_close(probs, expected[layer], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_nt(tmp_path_factory.mktemp("attn"), version="v2", hidden=32, layers=3, heads=4, seed=7)


def test_mass_is_the_mean_over_dna_queries_and_cls_never_reaches_a_track(checkpoint: Path) -> None:
    backbone = load_nt_backbone(checkpoint)
    pairs = ((0, 1), (2, 3), (0, 0))
    model = AttentionTracks(backbone, Geometry(120, 6, 6, 6, resolution=6), pairs)
    assert model.channels == ("L0H1", "L2H3", "L0H0")
    codes = torch.from_numpy(np.random.default_rng(2).integers(0, 4, (3, 120), dtype=np.uint8))
    with torch.inference_mode():
        got = model(codes)
        probs = attention_maps(backbone, tokenize_acgt(codes, V2)).probs
    assert got.shape == (3, 20, 3)  # one value per DNA token: no slot for CLS
    for j, (layer, head) in enumerate(pairs):
        a = probs[layer][:, head].double().numpy()  # (batch, queries, keys), CLS at index 0
        np.testing.assert_allclose(got[..., j].numpy(), a[:, 1:, 1:].mean(axis=1), atol=1e-7, rtol=0)
        # the window's masses sum to one minus the mean weight the DNA queries put on CLS
        np.testing.assert_allclose(got[..., j].sum(-1).numpy(), 1 - a[:, 1:, 0].mean(axis=1), atol=1e-6, rtol=0)
        assert not np.allclose(a[:, 1:, 1:].mean(axis=1), a[:, :, 1:].mean(axis=1))  # CLS's row would count
    with pytest.raises(ModelError, match=r"attention head L3H0 does not exist: this model has layers 0\.\.2"):
        AttentionTracks(backbone, Geometry(120, 6, 6, 6, resolution=6), ((3, 0),))
    with pytest.raises(ModelError, match="N-free windows only"):
        model(torch.full((1, 120), 4, dtype=torch.uint8))


def test_heads_are_the_familys_own_setting_and_name_its_channels() -> None:
    settings = parse_config({"families": {"attention": {"checkpoint": "demo", "heads": ["L1H2", "L0H0"]}}}
                            ).families["attention"]
    family = get_family("attention")
    assert family.channels(settings) == ("L1H2", "L0H0")
    assert family.geometry(settings).resolution == 6
    for raw, message in [
        ({}, r"families\.attention\.heads: list the attention heads"),
        ({"heads": ["L1H2", "layer1"]}, r"families\.attention\.heads\[1\]: 'layer1' is not L<layer>H<head>"),
        ({"heads": ["L01H2"]}, r"no leading zeros"),
        ({"heads": ["L1H2", "L1H2"]}, r"names a head twice"),
        ({"heads": ["L0H0"], "masking": "none"}, r"families\.attention\.masking: unknown key"),  # sensitivity's key
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config({"families": {"attention": raw}}, source="c.yaml")
    # the FLOP estimate runs the blocks up to the deepest head only, and no LM head
    def flops(head: str) -> float:
        settings = parse_config({"families": {"attention": {"heads": [head]}}}).families["attention"]
        return family.flops(settings, np.array([5994]))

    assert flops("L28H1") == pytest.approx(29 * flops("L0H1"))  # NT-v2-500M has 29 layers


def test_the_catalog_styles_each_head_from_the_familys_template() -> None:
    catalog = load_catalog()
    style = catalog.track("attention", "L11H3")
    assert style.name == "attention_L11H3" and style.short_label == "Attn L11 H3"
    assert "layer 11 head 3" in style.long_label and style.quantum == pytest.approx(1e-6)
    assert catalog.family("attention").container == "composite"


def test_preflight_checks_every_head_against_the_checkpoint(checkpoint: Path) -> None:
    config = parse_config({"families": {"attention": {"checkpoint": str(checkpoint), "heads": ["L0H0", "L3H1"]}}})
    with pytest.raises(ModelError, match=r"head L3H1 is not in checkpoint .* layers 0\.\.2 and heads 0\.\.3"):
        plan_run(RunRequest(genome="demo", config=config, chroms=("chr3",)), dry_run=True)


def test_every_base_of_each_head_track_is_the_owning_windows_own_computation(checkpoint: Path, tmp_path: Path) -> None:
    heads = ["L2H1", "L0H3"]
    raw = {"checkpoint": str(checkpoint), "window": 240, "overlap": 120, "stitch": "nearest", "heads": heads}
    config = parse_config({"families": {"attention": raw}})
    request = RunRequest(genome="demo", config=config, out=tmp_path / "hub", chroms=("chr3",))
    result = run_genome(request)
    out = tmp_path / "hub"
    assert validate_hub(out) == []
    manifest = result.manifest["families"]["attention"]
    assert manifest["tracks"] == {h: f"demo/bw/attention_{h}.bw" for h in heads}
    trackdb = (out / "demo" / "trackDb.txt").read_text()
    assert "track attention\ncompositeTrack on\n" in trackdb
    assert trackdb.count("parent attention on") == 2 and "shortLabel Attn L2 H1" in trackdb
    assert trackdb.index("track attention_L2H1") < trackdb.index("track attention_L0H3")  # the order asked for
    plan = plan_run(request).families[0]
    tiles = plan.plan
    backbone = load_nt_backbone(checkpoint)
    genome = open_genome("demo")
    stored = []
    for h in heads:
        bw = pyBigWig.open(str(out / manifest["tracks"][h]))
        stored.append(np.array(bw.values("chr3", 0, 1800)))
        bw.close()
    checked = 0
    for row in plan.window_rows:
        start, end = int(tiles.start[row]), int(tiles.end[row])
        codes = torch.from_numpy(genome.codes("chr3", start, end)[None])
        with torch.inference_mode():
            probs = attention_maps(backbone, tokenize_acgt(codes, V2)).probs
        lo, hi = int(tiles.keep_start[row]), int(tiles.keep_end[row])
        for track, head in zip(stored, [(2, 1), (0, 3)], strict=True):
            mass = probs[head[0]][0, head[1], 1:, 1:].double().mean(dim=0).numpy()
            want = np.repeat(mass, 6)[lo - start : hi - start]
            np.testing.assert_allclose(track[lo:hi], want, atol=0.5e-6 + 1e-7, rtol=0)
        checked += hi - lo
    assert checked == plan.bases_scored == 1800
