"""nttracks ism: every base's three SNVs scored as `variants` scores them, as bigWigs (max and per base) in a hub
that validates; regions merged and clipped to contigs, bases too near a contig end absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from variantdata import GAP, genome_fasta

from nttracks.errors import UsageError, VariantsError
from nttracks.genome import open_fasta
from nttracks.hubs import validate_hub
from nttracks.ism import ism_channels, run_ism
from nttracks.variants import ChromCodes, VariantSettings, load_variant_model, locate, score_sites
from nttracks.vcf import Allele

CPU = torch.device("cpu")
SETTINGS = VariantSettings(checkpoint="demo", window=120, max_indel=20, batch_size=16)


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory):
    g = open_fasta(genome_fasta(tmp_path_factory.mktemp("genome")))
    yield g
    g.close()


@pytest.fixture(scope="module")
def ism_hub(genome, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("ism")
    bed = d / "regions.bed"
    bed.write_text(f"chr2\t990\t1010\nchr2\t1005\t1030\nchr1\t{GAP[0] - 40}\t{GAP[1] + 40}\nchrM\t0\t40\n")
    model, label, digest = load_variant_model(SETTINGS, CPU)
    result = run_ism(genome, bed, d / "hub", SETTINGS, model=model, model_label=label, digest=digest,
                     scores=("llr", "l2_mean"), device=CPU)
    return result, model


def test_ism_tracks_are_the_snv_scores(genome, ism_hub) -> None:
    import pyBigWig

    result, model = ism_hub
    out = result.out
    assert validate_hub(out) == []
    assert set(result.tracks) == set(ism_channels(("llr", "l2_mean")))
    assert result.bases == 40 + 80 + 40 - 0  # chr2 990-1030 merged, chr1 both sides of the gap, chrM 0-40
    bws = {ch: pyBigWig.open(str(out / rel)) for ch, rel in result.tracks.items()}
    codes = ChromCodes(genome)
    chr2 = codes("chr2")
    for p in (990, 1001, 1029):
        ref = "ACGT"[chr2[p]]
        sites = [locate(Allele(1, 1, "chr2", p + 1, ".", ref, alt, ".", "."), "chr2", codes, SETTINGS)[0]
                 for alt in "ACGT" if alt != ref]
        expected = dict(zip([a for a in "ACGT" if a != ref], score_sites(model, sites, codes, batch_size=3,
                                                                          device=CPU), strict=True))
        for score in ("llr", "l2_mean"):
            values = {alt: bws[f"{score}_{alt}"].values("chr2", p, p + 1)[0] for alt in "ACGT"}
            assert values[ref] == 0.0  # mutating to the reference base: no change
            for alt, scores in expected.items():
                assert values[alt] == pytest.approx(scores[score], abs=6e-5)  # quantized to 1e-4
            assert bws[f"{score}_max"].values("chr2", p, p + 1)[0] == pytest.approx(
                max(s[score] for s in expected.values()), abs=6e-5)
    # scored: chr2 990-1030; chr1 and chrM only where min_flank fits inside the contig
    flank = SETTINGS.flank
    chr1 = [iv[:2] for iv in bws["llr_max"].intervals("chr1")]
    assert chr1[0][0] >= GAP[0] - 40 and chr1[-1][1] <= GAP[1] + 40
    covered = {b for s, e in chr1 for b in range(s, e)}
    assert not covered & set(range(GAP[0] - flank + 1, GAP[1] + flank))  # too near the gap (or in it)
    chr_m = bws["llr_max"].intervals("chrM")
    assert (chr_m[0][0], chr_m[-1][1], len(chr_m)) == (flank, 40, 40 - flank)  # the first flank bp are absent
    assert not np.isnan(bws["l2_mean_max"].values("chr2", 990, 1030)).any()
    for bw in bws.values():
        bw.close()
    track_db = (out / "demo" / "trackDb.txt") if (out / "demo").is_dir() else next(out.glob("*/trackDb.txt"))
    text = track_db.read_text()
    assert "track ism_llr_max" in text and "bigDataUrl bw/ism_llr_A.bw" in text


def test_ism_refuses_too_much_and_unknown_scores(genome, tmp_path: Path) -> None:
    bed = tmp_path / "big.bed"
    bed.write_text("chr2\t0\t2400\n")
    with pytest.raises(VariantsError, match="limited to 1,000"):
        run_ism(genome, bed, tmp_path / "hub", SETTINGS, model=object(), max_bases=1000, device=CPU)
    with pytest.raises(UsageError, match="choose from"):
        run_ism(genome, bed, tmp_path / "hub", SETTINGS, model=object(), scores=("cosine_mean",), device=CPU)
    assert not (tmp_path / "hub").exists()
