"""Test data of the variant tests: a small seeded genome (UCSC names, an N gap) and a VCF (Ensembl names) with
every awkward case, each record's expected outcome known when it is made."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

SIZES = {"chr1": 3000, "chr2": 2400, "chrM": 600}
GAP = (1500, 1620)  # N on chr1
LINE = 60


def genome_fasta(directory: Path, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    path = directory / "mini.fa"
    with open(path, "w") as f:
        for chrom, size in SIZES.items():
            seq = np.array(list("ACGT"))[rng.integers(0, 4, size)]
            if chrom == "chr1":
                seq[GAP[0] : GAP[1]] = "N"
                seq[100:160] = np.char.lower(seq[100:160])  # soft-masked: still A, C, G, T
            text = "".join(seq)
            f.write(f">{chrom}\n" + "\n".join(text[i : i + LINE] for i in range(0, len(text), LINE)) + "\n")
    return path


def nt_order_kmers() -> list[str]:
    """The NT vocabulary's 6-mers in token order (A, T, C, G), as the tokenizer's spec states it."""
    return ["".join(k) for k in itertools.product("ATCG", repeat=6)]


ENSEMBL = {"chr1": "1", "chr2": "2", "chrM": "MT"}


def awkward_vcf(path: Path, seqs: dict[str, str], n_records: int = 1000, seed: int = 3, *,
                flank: int, max_indel: int) -> list[list[str]]:
    """Write a VCF of ``n_records`` records (Ensembl names) and return, per record, the expected reason of
    each ALT ('' where it must be scored). Every case comes round many times."""
    rng = np.random.default_rng(seed)
    lines = ["##fileformat=VCFv4.2", '##FILTER=<ID=q10,Description="Quality below 10">',
             "##contig=<ID=1,length=3000>", "##contig=<ID=2,length=2400>", "##contig=<ID=MT,length=600>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    expected: list[list[str]] = []
    cases = ["snv", "multi", "ins", "del", "mnv", "long", "symbolic", "star", "missing", "mismatch", "unknown",
             "gap", "near_end", "near_gap", "alt_n", "breakend", "outside", "lower", "complex"]

    def safe_pos(chrom: str) -> int:
        size = len(seqs[chrom])
        while True:
            p = int(rng.integers(flank + max_indel + 12, size - flank - max_indel - 12))
            if chrom != "chr1" or not (GAP[0] - flank - max_indel - 12 <= p <= GAP[1] + flank + max_indel + 12):
                return p

    def other(base: str) -> str:
        return "ACGT"[("ACGT".index(base) + int(rng.integers(1, 4))) % 4]

    records = []
    for i in range(n_records):
        case = cases[i % len(cases)]
        chrom = ["chr1", "chr2", "chrM"][int(rng.integers(0, 3))]
        p = safe_pos(chrom)  # 0-based
        s = seqs[chrom]
        ref, alt, want = s[p], other(s[p]), [""]
        if case == "multi":
            alts = [b for b in "ACGT" if b != ref]
            alt, want = ",".join([*alts, "<DEL>"]), ["", "", "", "symbolic_alt"]
        elif case == "ins":
            alt = ref + "".join(rng.choice(list("ACGT"), int(rng.integers(1, max_indel))))
        elif case == "del":
            k = int(rng.integers(1, max_indel))
            ref, alt = s[p : p + k + 1], s[p]
        elif case == "mnv":
            ref = s[p : p + 3]
            alt = "".join(other(b) for b in ref)
        elif case == "complex":
            ref = s[p : p + 3]
            alt = other(ref[0]) + "GG"
        elif case == "long":
            ref, alt, want = s[p : p + max_indel + 5], s[p], ["too_long"]
        elif case == "symbolic":
            alt, want = "<DUP>", ["symbolic_alt"]
        elif case == "star":
            alt, want = f"{alt},*", ["", "star_allele"]
        elif case == "missing":
            alt, want = ".", ["missing_alt"]
        elif case == "mismatch":
            ref, want = other(ref), ["ref_mismatch"]
            alt = ref if alt == ref else alt
            alt = other(ref) if alt == ref else alt
        elif case == "unknown":
            chrom, want = "chr22", ["unknown_contig"]
        elif case == "gap":
            chrom, p = "chr1", int(rng.integers(GAP[0], GAP[1]))
            ref, alt, want = "N", "A", ["in_n_gap"]
        elif case == "near_end":
            size = len(seqs[chrom])
            p = int(rng.choice([int(rng.integers(0, flank - 6)), int(rng.integers(size - flank + 6, size))]))
            ref, alt, want = seqs[chrom][p], other(seqs[chrom][p]), ["near_contig_end"]
        elif case == "near_gap":
            chrom = "chr1"
            p = int(rng.choice([int(rng.integers(GAP[0] - flank + 6, GAP[0])),
                                int(rng.integers(GAP[1], GAP[1] + flank - 6))]))
            ref, alt, want = seqs[chrom][p], other(seqs[chrom][p]), ["near_contig_end"]
        elif case == "alt_n":
            alt, want = "N", ["alt_not_acgt"]
        elif case == "breakend":
            alt, want = f"{ref}[2:100[", ["breakend"]
        elif case == "outside":
            p = len(seqs[chrom]) - 1
            ref, want = seqs[chrom][p] + "A", ["outside_chromosome"]
            alt = seqs[chrom][p]
        elif case == "lower":
            ref, alt = ref.lower(), alt.lower()
        name = ENSEMBL.get(chrom, chrom.removeprefix("chr"))
        qual, filt = (".", "PASS") if i % 3 else ("5", "q10")
        records.append((name, p, f"{name}\t{p + 1}\tr{i}\t{ref}\t{alt}\t{qual}\t{filt}\t."))
        expected.append(want)
    lines += [r for _, _, r in records]
    path.write_text("\n".join(lines) + "\n")
    return expected
