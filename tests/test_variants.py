"""Variant scores: known by hand with the k-mer one-hot toy model, the LLR against a direct computation from the
masked logits, every allele of an awkward VCF accounted for (read back by pysam and bcftools), batch-size
invariance, and the placement of reference and alternative windows."""

from __future__ import annotations

import csv
import gzip
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from variantdata import ENSEMBL, GAP, awkward_vcf, genome_fasta, nt_order_kmers

from nttracks.errors import ConfigError, VariantsError
from nttracks.genome import open_fasta
from nttracks.models.embedding import KmerOneHotModel
from nttracks.models.tokenizer import tokenize
from nttracks.variants import (
    REASONS,
    SCORE_NAMES,
    ChromCodes,
    VariantSettings,
    load_variant_model,
    load_variant_settings,
    locate,
    score_sites,
    score_vcf,
    trim,
)
from nttracks.vcf import Allele, ChromMapper

CPU = torch.device("cpu")
WINDOW = 120
SETTINGS = VariantSettings(checkpoint="demo", window=WINDOW, max_indel=20, batch_size=8)


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory):
    g = open_fasta(genome_fasta(tmp_path_factory.mktemp("genome")))
    yield g
    g.close()


@pytest.fixture(scope="module")
def seqs(genome) -> dict[str, str]:
    return {c: "".join("ACGTN"[x] for x in genome.codes(c)) for c in genome.chroms}


@pytest.fixture(scope="module")
def lm_model():
    return load_variant_model(SETTINGS, CPU)[0]


def snv(chrom: str, pos0: int, ref: str, alt: str) -> Allele:
    return Allele(1, 1, chrom, pos0 + 1, ".", ref, alt, ".", ".")


def site_of(genome, a: Allele, settings: VariantSettings = SETTINGS):
    site, reason, detail = locate(a, a.chrom, ChromCodes(genome), settings)
    assert site is not None, (reason, detail)
    return site


# ----------------------------------------------------------------------------- known by hand


def kmers(seq: str) -> list[str]:
    return [seq[i : i + 6] for i in range(0, len(seq), 6)]


@pytest.mark.parametrize("rc", [False, True])
def test_toy_embedding_scores_of_an_snv_are_known_by_hand(genome, seqs, rc: bool) -> None:
    s = seqs["chr2"]
    pos = 1001
    alt = "ACGT"[("ACGT".index(s[pos]) + 2) % 4]
    site = site_of(genome, snv("chr2", pos, s[pos], alt))
    assert site.ws % 6 == 0 and site.ws <= pos < site.ws + WINDOW
    assert abs((pos - site.ws) - WINDOW // 2) <= 3  # centred, on the grid
    (scores,) = score_sites(KmerOneHotModel(), [site], ChromCodes(genome), batch_size=4, device=CPU,
                            reverse_complement=rc)
    # the variant's token: two one-hots of different 6-mers
    assert scores["l1_token"] == 2.0 and scores["dot_token"] == 0.0 and scores["cosine_token"] == 0.0
    assert scores["l2_token"] == pytest.approx(math.sqrt(2), abs=1e-12)
    assert scores["ref_norm_token"] == scores["alt_norm_token"] == 1.0
    # mean-pooled: 6-mer counts of the two windows, by hand (the reverse strand has the complementary
    # 6-mers, the same multiset of distances)
    ref_seq = s[site.ws : site.ws + WINDOW]
    alt_seq = ref_seq[: pos - site.ws] + alt + ref_seq[pos - site.ws + 1 :]
    cr, ca = Counter(kmers(ref_seq)), Counter(kmers(alt_seq))
    t = WINDOW // 6
    keys = set(cr) | set(ca)
    assert scores["l1_mean"] == pytest.approx(sum(abs(cr[k] - ca[k]) for k in keys) / t, rel=1e-6)
    assert scores["l1_mean"] == pytest.approx(2 / t, rel=1e-6)
    assert scores["l2_mean"] == pytest.approx(math.sqrt(sum((cr[k] - ca[k]) ** 2 for k in keys)) / t, rel=1e-6)
    dot = sum(cr[k] * ca[k] for k in keys) / t**2
    assert scores["dot_mean"] == pytest.approx(dot, rel=1e-6)
    norm_r = math.sqrt(sum(v * v for v in cr.values())) / t
    norm_a = math.sqrt(sum(v * v for v in ca.values())) / t
    assert scores["ref_norm_mean"] == pytest.approx(norm_r, rel=1e-6)
    assert scores["cosine_mean"] == pytest.approx(dot / (norm_r * norm_a), rel=1e-6)
    assert all(math.isnan(scores[k]) for k in ("logp_ref", "logp_alt", "llr"))  # the toy has no LM


def test_alternative_windows_of_indels_are_recentred_and_trimmed(genome, seqs) -> None:
    s = seqs["chr2"]
    pos = 1200
    for ref, alt in [(s[pos], s[pos] + "GATTACA"), (s[pos : pos + 9], s[pos]), (s[pos : pos + 3], "TT")]:
        site = site_of(genome, snv("chr2", pos, ref, alt))
        p, r, a = trim(pos, ref, alt)
        assert (site.vs, site.ref, site.alt) == (p, r, a)
        d = len(a) - len(r)
        left = s[site.ws + d // 2 : p]
        want = (left + a + s[p + len(r) :])[:WINDOW]
        got = "".join("ACGT"[c] for c in site.alt_window(ChromCodes(genome)("chr2")))
        assert got == want and len(got) == WINDOW
        assert site.alt_token == len(left) // 6
        # centred: the change sits mid-window in both windows, within a 6-mer of the grid and d / 2
        assert abs((p - site.ws) - WINDOW // 2) <= 3 + len(r)
        assert abs(len(left) - WINDOW // 2) <= 3 + abs(d) // 2 + len(r)


def test_trim() -> None:
    assert trim(9, "A", "AT") == (10, "", "T")
    assert trim(9, "AT", "A") == (10, "T", "")
    assert trim(9, "ACG", "ATG") == (10, "C", "T")
    assert trim(9, "CAAA", "CAA") == (10, "A", "")  # suffix first: the deleted A is the first after C


def test_llr_equals_a_direct_computation_from_the_masked_logits(genome, seqs, lm_model) -> None:
    s = seqs["chr1"]
    kmer_table = np.array([list(k) for k in nt_order_kmers()])  # (4096, 6) letters, in token order
    codes = ChromCodes(genome)
    sites = []
    for pos in (700, 701, 705, 2400):
        for alt in "ACGT":
            if alt != s[pos]:
                sites.append(site_of(genome, snv("chr1", pos, s[pos], alt)))
    fwd = score_sites(lm_model, sites, codes, batch_size=5, device=CPU)
    both = score_sites(lm_model, sites, codes, batch_size=5, device=CPU, reverse_complement=True)
    lm, vocab = lm_model.lm, lm_model.lm.config.vocab
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}

    def direct(window: str, offset_in_window: int) -> dict[str, float]:
        ids = tokenize(torch.tensor([["ACGT".index(b) for b in window]], dtype=torch.uint8), vocab).ids.clone()
        token = offset_in_window // 6
        ids[0, 1 + token] = vocab.mask
        with torch.no_grad():
            logits = lm(ids)[0, 1 + token, vocab.kmer_offset : vocab.kmer_offset + 4096].double()
        p = torch.softmax(logits, 0).numpy()
        o = offset_in_window % 6
        return {b: math.log(p[kmer_table[:, o] == b].sum()) for b in "ACGT"}

    for site, f, b in zip(sites, fwd, both, strict=True):
        window = s[site.ws : site.ws + WINDOW]
        logp = direct(window, site.vs - site.ws)
        assert f["logp_ref"] == pytest.approx(logp[site.ref], abs=2e-5)
        assert f["logp_alt"] == pytest.approx(logp[site.alt], abs=2e-5)
        assert f["llr"] == pytest.approx(logp[site.alt] - logp[site.ref], abs=2e-5)
        rc = "".join(comp[x] for x in reversed(window))
        logp_rc = direct(rc, WINDOW - 1 - (site.vs - site.ws))
        llr_rc = logp_rc[comp[site.alt]] - logp_rc[comp[site.ref]]
        assert b["llr"] == pytest.approx((f["llr"] + llr_rc) / 2, abs=2e-5)
        assert b["l1_mean"] != f["l1_mean"]  # the reverse strand was scored


# ----------------------------------------------------------------------------- the awkward VCF


@pytest.fixture(scope="module")
def awkward(genome, seqs, lm_model, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("awkward")
    vcf = d / "awkward.vcf"
    expected = awkward_vcf(vcf, seqs, 1000, flank=SETTINGS.flank, max_indel=SETTINGS.max_indel)
    result = score_vcf(vcf, genome, d / "out", SETTINGS, model=lm_model, device=CPU, chunk=300)
    return vcf, expected, result


def rows_of(tsv: Path) -> list[dict[str, str]]:
    with open(tsv, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_every_record_and_alt_is_accounted_for(awkward) -> None:
    _, expected, result = awkward
    rows = rows_of(result.tsv)
    want = [(r + 1, a + 1, reason) for r, reasons in enumerate(expected) for a, reason in enumerate(reasons)]
    got = [(int(row["record"]), int(row["allele"]), "" if row["reason"] == "." else row["reason"]) for row in rows]
    assert got == want  # one row per (record, ALT), in input order, each with the reason planned for it
    assert {reason for *_, reason in got} >= set(REASONS) - {"no_change"}  # every case came round
    for row in rows:
        values = [row[k] for k in SCORE_NAMES]
        if row["status"] == "scored":
            assert row["reason"] == "."
            _, r, a = trim(0, row["ref"].upper(), row["alt"].upper())
            snv = len(r) == len(a) == 1  # an SNV once trimmed (CGG > TGG is C > T): only SNVs get an LLR
            assert all(v != "NA" for v in values[:12]) and (all(v != "NA" for v in values[12:]) == snv)
        else:
            assert row["status"] == "skipped" and row["reason"] in REASONS and row["detail"] != "."
            assert all(v == "NA" for v in values)  # a REF mismatch (or any skip) never yields a score
    mismatches = [row for row in rows if row["reason"] == "ref_mismatch"]
    assert mismatches and all(row["status"] == "skipped" for row in mismatches)
    assert result.summary["alleles"] == len(rows) and sum(result.summary["counts"].values()) == len(rows)
    assert result.summary["chromosomes_renamed"] == {v: k for k, v in ENSEMBL.items()}


def test_output_vcf_reads_back_with_pysam_with_every_info_declared(awkward) -> None:
    import pysam

    _, _, result = awkward
    rows = rows_of(result.tsv)
    assert Path(f"{result.vcf}").read_bytes()[:2] == b"\x1f\x8b" and Path(f"{result.vcf}.tbi").is_file()
    with gzip.open(result.vcf, "rt") as f:
        text = f.read()
    declared = set(re.findall(r"^##INFO=<ID=([^,]+),", text, flags=re.M))
    used = {kv.split("=")[0] for line in text.splitlines() if not line.startswith("#")
            for kv in line.split("\t")[7].split(";")}
    assert used <= declared and len(used) > 10
    vf = pysam.VariantFile(str(result.vcf))
    assert set(vf.header.info) == declared
    records = list(vf)
    assert len(records) == len(rows)
    by_key = {(int(r["record"]), int(r["allele"])): r for r in rows}
    for rec in records:
        row = by_key[(rec.info["NT_RECORD"], rec.info["NT_ALLELE"])]
        assert (rec.chrom, rec.pos, rec.ref.upper()) == (row["chrom"], int(row["pos"]), row["ref"].upper())
        assert rec.info["NT_STATUS"] == row["status"]
        if row["status"] == "scored" and row["llr"] != "NA":
            assert rec.info["NT_LLR"] == pytest.approx(float(row["llr"]), rel=1e-5, abs=1e-6)
        if row["status"] == "skipped":
            assert rec.info["NT_REASON"] == row["reason"] and "NT_L2_MEAN" not in rec.info
    chrom = next(r.chrom for r in records)
    assert list(vf.fetch(chrom, 0, 10_000))  # the tabix index answers region queries
    vf.close()


def test_output_vcf_reads_back_with_bcftools(awkward) -> None:
    if shutil.which("bcftools") is None:
        reason = "bcftools is not installed (bash scripts/test installs it: apt-get install bcftools)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI must run this test, never skip it
        pytest.skip(reason)
    _, _, result = awkward
    rows = rows_of(result.tsv)
    done = subprocess.run(["bcftools", "query", "-f", "%NT_RECORD\t%NT_ALLELE\t%NT_STATUS\t%NT_REASON\t%NT_L2_MEAN\n",
                           str(result.vcf)], capture_output=True, text=True, check=True)
    assert done.stderr == ""  # no undeclared field, no malformed line
    got = sorted(tuple(line.split("\t")) for line in done.stdout.splitlines())
    want = sorted((r["record"], r["allele"], r["status"], r["reason"] if r["status"] == "skipped" else ".",
                   r["l2_mean"] if r["l2_mean"] != "NA" else ".") for r in rows)
    assert len(got) == len(want)
    assert [g[:4] for g in got] == [w[:4] for w in want]
    for g, w in zip(got, want, strict=True):
        assert (g[4] == w[4] == ".") or float(g[4]) == pytest.approx(float(w[4]), rel=1e-5)
    region = subprocess.run(["bcftools", "view", "-H", "-r", "1:1-3000", str(result.vcf)], capture_output=True,
                            text=True, check=True)
    assert len(region.stdout.splitlines()) == sum(r["chrom"] == "1" for r in rows)


def test_results_are_identical_whatever_the_batch_size(awkward, genome, lm_model, tmp_path: Path) -> None:
    vcf, expected, result = awkward
    lines = vcf.read_text().splitlines(keepends=True)
    header = [x for x in lines if x.startswith("#")]
    short = tmp_path / "short.vcf"
    short.write_text("".join(header + lines[len(header) : len(header) + 95]))  # 5 of every case
    first = rows_of(result.tsv)[: sum(len(alts) for alts in expected[:95])]
    for batch_size, chunk in ((1, 4096), (13, 29)):
        settings = VariantSettings(checkpoint="demo", window=WINDOW, max_indel=20, batch_size=batch_size)
        out = score_vcf(short, genome, tmp_path / f"b{batch_size}", settings, model=lm_model, device=CPU,
                        chunk=chunk)
        assert rows_of(out.tsv) == first  # every score, to the last digit written


# ----------------------------------------------------------------------------- naming and settings


def test_chromosome_names_are_mapped_when_unambiguous() -> None:
    genome = ["chr1", "chr2", "chrM", "chrX"]
    m = ChromMapper(genome)
    assert (m("1"), m("MT"), m("chrX"), m("22")) == ("chr1", "chrM", "chrX", None)
    assert m.renamed == {"1": "chr1", "MT": "chrM"}
    assert ChromMapper(["1", "MT"])("chrM") == "MT" and ChromMapper(["1", "MT"])("chr1") == "1"
    with pytest.raises(VariantsError, match="as '1' and as 'chr1'"):
        m2 = ChromMapper(genome)
        m2("1")
        m2("chr1")
    with pytest.raises(VariantsError, match="ambiguous"):
        ChromMapper(genome, ["chrM", "MT"])


def test_a_vcf_naming_one_chromosome_twice_is_refused(genome, tmp_path: Path) -> None:
    vcf = tmp_path / "twice.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "1\t10\t.\tA\tC\t.\t.\t.\nchr1\t20\t.\tA\tC\t.\t.\t.\n")
    with pytest.raises(VariantsError, match="ambiguous"):
        score_vcf(vcf, genome, tmp_path / "out", SETTINGS, model=KmerOneHotModel(), device=CPU)
    assert not (tmp_path / "out" / "variants.tsv").exists()  # nothing half-written


def test_settings_from_yaml_are_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "v.yaml"
    cfg.write_text("variants:\n  checkpoint: demo\n  window: 600\n  reverse_complement: true\n")
    s = load_variant_settings(cfg, batch_size=3)
    assert (s.window, s.reverse_complement, s.batch_size, s.flank) == (600, True, 3, 150)
    cfg.write_text("variants:\n  windw: 600\n")
    with pytest.raises(ConfigError, match=r"variants\.windw: unknown key"):
        load_variant_settings(cfg)
    with pytest.raises(ConfigError, match="multiple of 6"):
        load_variant_settings(None, window=100)
    with pytest.raises(ConfigError, match="min_flank"):
        load_variant_settings(None, window=120, max_indel=50)


def test_near_a_gap_and_in_a_gap(genome, seqs) -> None:
    codes = ChromCodes(genome)
    s = seqs["chr1"]
    inside = locate(snv("chr1", GAP[0] + 3, "N", "A"), "chr1", codes, SETTINGS)
    assert inside[0] is None and inside[1] == "in_n_gap"
    near = locate(snv("chr1", GAP[0] - 10, s[GAP[0] - 10], "A" if s[GAP[0] - 10] != "A" else "C"), "chr1", codes,
                  SETTINGS)
    assert near[0] is None and near[1] == "near_contig_end" and "chr1:1-1500" in near[2]
    # moved inward, not refused, while min_flank still fits: the window ends at the gap
    p = GAP[0] - SETTINGS.flank - 8
    site = site_of(genome, snv("chr1", p, s[p], "A" if s[p] != "A" else "C"))
    assert site.ws + WINDOW <= GAP[0] and site.ws + WINDOW - (p + 1) >= SETTINGS.flank
    assert np.all(codes("chr1")[site.ws : site.ws + WINDOW] < 4)


def test_a_vcf_without_records_gives_empty_outputs(genome, tmp_path: Path) -> None:
    import pysam

    vcf = tmp_path / "empty.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    result = score_vcf(vcf, genome, tmp_path / "out", SETTINGS, model=KmerOneHotModel(), device=CPU)
    assert result.summary["alleles"] == 0 and len(rows_of(result.tsv)) == 0
    with pysam.VariantFile(str(result.vcf)) as vf:
        assert list(vf) == [] and "NT_LLR" in vf.header.info


def test_a_file_that_is_not_a_vcf_is_refused(genome, tmp_path: Path) -> None:
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a VCF\n")
    with pytest.raises(VariantsError, match="cannot be read as VCF"):
        score_vcf(bad, genome, tmp_path / "out", SETTINGS, model=KmerOneHotModel(), device=CPU)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_match_cpu(genome, seqs, lm_model) -> None:
    s = seqs["chr2"]
    sites = [site_of(genome, snv("chr2", p, s[p], "ACGT"[("ACGT".index(s[p]) + 1) % 4])) for p in range(900, 1300, 9)]
    sites.append(site_of(genome, snv("chr2", 1500, s[1500], s[1500] + "TTA")))
    codes = ChromCodes(genome)
    cpu = score_sites(lm_model, sites, codes, batch_size=16, device=CPU, reverse_complement=True)
    cuda = torch.device("cuda")
    gpu = score_sites(lm_model.to(cuda), sites, codes, batch_size=16, device=cuda, reverse_complement=True)
    lm_model.to(CPU)
    for a, b in zip(cpu, gpu, strict=True):
        for name in SCORE_NAMES:
            assert (math.isnan(a[name]) and math.isnan(b[name])) or b[name] == pytest.approx(a[name], rel=1e-3,
                                                                                              abs=1e-4), name
