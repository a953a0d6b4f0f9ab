"""The demo genome: a small synthetic genome with planted, annotated elements (offline, deterministic).

Three chromosomes, about 0.45 Mbp in all, built from a seeded RNG:

- background with human-like composition (GC ~40%) and CpG depletion (most CpGs mutated away,
  as methylated CpGs are in real genomes);
- protein-coding genes on both strands: promoter (TATA box; CpG island for the tissue-invariant
  kind; AT-rich with a CCAAT box and an initiator at the TSS for the tissue-specific kind), 5'UTR,
  a CDS from ATG to a stop codon with no in-frame stop, exons joined by introns that start with GT
  (donor GTRAGT) and end with AG (polypyrimidine tract + CAG/TAG), a 3'UTR with AU-rich elements
  (ATTTA) and an AATAAA polyA signal near its end;
- lncRNA genes (spliced, polyadenylated, no CDS);
- exons GC-richer than the background (UTRs and lncRNA exons ~52%), introns AT-richer (37%), as in
  human genomes: exons differ from introns in composition, not only at their splice sites;
- CTCF sites (core motif CCGCGNGGNGGCAG, either orientation);
- enhancers: clusters of transcription-factor motifs (housekeeping factors for tissue-invariant
  enhancers, lineage factors for tissue-specific ones);
- repeats: mutated copies of a SINE-like, a LINE-like and a simple (CA)n repeat, soft-masked (lowercase);
- assembly gaps (N runs), one at the start of chr2 and one at the end of chr1, and an N-free
  contig of 2 kb between two gaps on chr1; chr3 is 1.8 kb, shorter than a 3 kb model window.

The annotation (the ground truth demo models are trained and evaluated on) is BED6+1, sorted:
chrom, start, end, class, score 0, strand (``.`` when unstranded), element id. Classes use
SegmentNT's names (protein_coding_gene, lncRNA, exon, intron, splice_donor, splice_acceptor, 5UTR,
3UTR, polyA_signal, CTCF-bound, promoter_Tissue_invariant, promoter_Tissue_specific,
enhancer_Tissue_invariant, enhancer_Tissue_specific) plus ``repeat`` and ``gap``. Splice donors are
the intron's first 6 bases, acceptors its last 6, polyA signals the AATAAA hexamer, all on the
element's strand.

Files live in ``<cache>/genomes/demo/v<DEMO_VERSION>/`` (``demo.fa``, ``demo.bed``); bump
DEMO_VERSION whenever the output changes, so caches regenerate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_writer
from .resources import cache_dir

__all__ = [
    "DEMO_CHROM_SIZES",
    "DEMO_CLASSES",
    "DEMO_SEED",
    "DEMO_VERSION",
    "Element",
    "demo_annotation_path",
    "demo_dir",
    "demo_fasta_path",
    "ensure_demo",
    "generate",
    "read_annotation",
    "write_demo",
]

DEMO_VERSION = 2  # 2: GC-rich UTRs and lncRNA exons, AREs in 3'UTRs, CCAAT box + Inr in AT-rich promoters
DEMO_SEED = 20240521
DEMO_CHROM_SIZES: dict[str, int] = {"chr1": 250_000, "chr2": 200_000, "chr3": 1_800}
SHORT_CONTIG = 2_000  # an N-free stretch between two gaps on chr1, shorter than a 3 kb window
LINE_WIDTH = 60

DEMO_CLASSES: tuple[str, ...] = (
    "protein_coding_gene",
    "lncRNA",
    "exon",
    "intron",
    "splice_donor",
    "splice_acceptor",
    "5UTR",
    "3UTR",
    "CTCF-bound",
    "polyA_signal",
    "enhancer_Tissue_specific",
    "enhancer_Tissue_invariant",
    "promoter_Tissue_specific",
    "promoter_Tissue_invariant",
    "repeat",
    "gap",
)

CTCF_CORE = "CCGCGNGGNGGCAG"
POLYA_SIGNAL = "AATAAA"
TATA_BOX = "TATAAA"
CCAAT_BOX = "GGCCAATCT"  # NF-Y's site, ~80 bp upstream of the TSS
INITIATOR = "TCAKTY"  # Inr at the TSS (its A is +1)
ARE = "ATTTA"  # AU-rich element of 3'UTRs
EXON_GC = 0.52
# Consensus sites (IUPAC; N/R/Y/W drawn at random) of housekeeping and lineage transcription factors.
INVARIANT_MOTIFS = ("GGGGCGGGG", "GCGCATGCGC", "CCGGAAGT", "AAGATGGCGGC", "TGACGTCA")  # SP1 NRF1 ETS YY1 CREB
SPECIFIC_MOTIFS = ("AGATAAG", "GTTAATNATTAAC", "TGTTTAC", "TGAGTCA", "TTGCGCAA", "CAAAGTCCA")  # GATA HNF1..
STOP_CODONS = ("TAA", "TAG", "TGA")

_IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "N": "ACGT", "R": "AG", "Y": "CT", "W": "AT", "K": "GT"}
_COMPLEMENT = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")


@dataclass(frozen=True)
class Element:
    """One annotated interval: half-open [start, end) on chrom, SegmentNT-style class name."""

    chrom: str
    start: int
    end: int
    name: str
    strand: str = "."
    id: str = ""

    def bed(self) -> str:
        return f"{self.chrom}\t{self.start}\t{self.end}\t{self.name}\t0\t{self.strand}\t{self.id}"


def revcomp(seq: bytes) -> bytes:
    """Reverse complement of an ASCII DNA sequence (case kept)."""
    return seq.translate(_COMPLEMENT)[::-1]


class _Builder:
    """Draws sequences from one seeded RNG; every element is built on its own + strand first."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.repeats = {
            "DemoSINE": self.background(260, gc=0.52) + b"A" * 24,
            "DemoLINE": self.background(900, gc=0.38),
            "(CA)n": b"CA" * 60,
        }

    def background(self, n: int, gc: float = 0.42, cpg_keep: float = 0.25) -> bytes:
        """Random DNA with GC fraction ``gc``; each CpG survives with probability ``cpg_keep``."""
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        seq = np.frombuffer(b"ACGT", dtype=np.uint8)[self.rng.choice(4, size=n, p=p)].copy()
        if cpg_keep < 1 and n > 1:
            cpg = np.flatnonzero((seq[:-1] == ord("C")) & (seq[1:] == ord("G")))
            lost = cpg[self.rng.random(cpg.size) >= cpg_keep]
            to_t = self.rng.random(lost.size) < 0.5  # deamination on either strand: CG -> TG or CA
            seq[lost[to_t]] = ord("T")
            seq[lost[~to_t] + 1] = ord("A")
        return seq.tobytes()

    def motif(self, pattern: str) -> bytes:
        return "".join(_IUPAC[c][self.rng.integers(len(_IUPAC[c]))] for c in pattern).encode()

    def codons(self, n: int) -> bytes:
        sense = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in STOP_CODONS]
        return "".join(sense[i] for i in self.rng.integers(len(sense), size=n)).encode()

    def length(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    # -------------------------------------------------------------- elements, in local + coordinates
    # Each returns (sequence, [(start, end, class, id)]) in the element's own + orientation;
    # _chromosome places it on either strand.

    def gene(self, gid: str, coding: bool) -> tuple[bytes, list[tuple[int, int, str, str]]]:
        rng = self.rng
        invariant = bool(rng.random() < 0.5)
        parts: list[bytes] = []
        ann: list[tuple[int, int, str, str]] = []
        # Promoter: 250 bp upstream of the TSS, TATA box at -31..-25.
        up = 250
        if invariant:
            promoter = bytearray(self.background(up, gc=0.68, cpg_keep=1.0))
        else:
            promoter = bytearray(self.background(up, gc=0.30))
            promoter[up - 85 : up - 85 + len(CCAAT_BOX)] = CCAAT_BOX.encode()
            promoter[up - 2 : up] = self.motif(INITIATOR[:2])  # the initiator's YY; its A is the TSS
        promoter[up - 31 : up - 25] = TATA_BOX.encode()
        lead = self.background(self.length(50, 200))
        parts += [lead, bytes(promoter)]
        tss = len(lead) + up
        kind = "promoter_Tissue_invariant" if invariant else "promoter_Tissue_specific"
        ann.append((tss - up, tss + 50, kind, f"{gid}.promoter"))
        # Mature transcript: 5'UTR + CDS + 3'UTR (coding), or one non-coding body (lncRNA).
        utr3_len = self.length(150, 400)
        if coding:
            utr5 = self.background(self.length(60, 200), gc=EXON_GC).replace(b"ATG", b"ACG")
            cds = b"ATG" + self.codons(self.length(100, 350)) + STOP_CODONS[rng.integers(3)].encode()
            body = utr5 + cds
        else:
            utr5, body = b"", self.background(self.length(400, 1500), gc=EXON_GC)
        if not invariant:  # the rest of the initiator, from the TSS
            body = self.motif(INITIATOR[2:]) + body[4:]
        utr3 = bytearray(self.background(utr3_len, gc=EXON_GC))
        for _ in range(self.length(2, 4)):  # AU-rich elements, clear of the polyA signal
            at = self.length(0, utr3_len - 40)
            utr3[at : at + len(ARE)] = ARE.encode()
        pas = utr3_len - self.length(15, 30)  # polyA signal 15-30 bp upstream of the cleavage site
        utr3[pas : pas + 6] = POLYA_SIGNAL.encode()
        mrna = body + bytes(utr3)
        # Cut the transcript into 2-6 exons (each >= 60 bp).
        n_exons = self.length(2, 6)
        while n_exons > 1 and len(mrna) < 60 * n_exons:
            n_exons -= 1
        cuts = np.sort(rng.choice(np.arange(60, len(mrna) - 59), size=n_exons - 1, replace=False))
        bounds = [0, *[int(c) for c in cuts], len(mrna)]
        if any(b - a < 60 for a, b in itertools.pairwise(bounds)):
            bounds = [round(i * len(mrna) / n_exons) for i in range(n_exons + 1)]
        pos = tss
        tx_to_genome: list[tuple[int, int, int]] = []  # (transcript start, transcript end, genome start)
        for i in range(n_exons):
            a, b = bounds[i], bounds[i + 1]
            parts.append(mrna[a:b])
            ann.append((pos, pos + b - a, "exon", f"{gid}.exon{i + 1}"))
            tx_to_genome.append((a, b, pos))
            pos += b - a
            if i < n_exons - 1:
                intron = self.intron()
                parts.append(intron)
                end = pos + len(intron)
                ann += [
                    (pos, end, "intron", f"{gid}.intron{i + 1}"),
                    (pos, pos + 6, "splice_donor", f"{gid}.intron{i + 1}"),
                    (end - 6, end, "splice_acceptor", f"{gid}.intron{i + 1}"),
                ]
                pos = end
        tes = pos
        ann.append((tss, tes, "protein_coding_gene" if coding else "lncRNA", gid))

        def on_genome(a: int, b: int, name: str) -> None:  # a transcript interval, split over exons
            for ta, tb, g in tx_to_genome:
                lo, hi = max(a, ta), min(b, tb)
                if lo < hi:
                    ann.append((g + lo - ta, g + hi - ta, name, gid))

        if coding:
            on_genome(0, len(utr5), "5UTR")
            on_genome(len(body), len(mrna), "3UTR")
        on_genome(len(body) + pas, len(body) + pas + 6, "polyA_signal")
        parts.append(self.background(self.length(50, 200)))
        return b"".join(parts), ann

    def intron(self) -> bytes:
        n = self.length(200, 1500)
        donor = b"GT" + self.motif("RAGT")
        tract = bytes(self.rng.choice(list(b"CT"), size=self.length(10, 16)).astype(np.uint8))
        acceptor = tract + self.motif("N") + self.motif("YAG")
        middle = self.background(n - len(donor) - len(acceptor), gc=0.37)
        return donor + middle + acceptor

    def ctcf(self, cid: str) -> tuple[bytes, list[tuple[int, int, str, str]]]:
        flank = 23
        seq = self.background(flank) + self.motif(CTCF_CORE) + self.background(flank)
        return seq, [(0, len(seq), "CTCF-bound", cid)]

    def enhancer(self, eid: str, invariant: bool) -> tuple[bytes, list[tuple[int, int, str, str]]]:
        motifs = INVARIANT_MOTIFS if invariant else SPECIFIC_MOTIFS
        seq = bytearray(self.background(self.length(300, 700), gc=0.45 if invariant else 0.40))
        slots = np.sort(self.rng.choice(len(seq) // 20, size=self.length(5, 9), replace=False)) * 20
        for s in slots:
            site = self.motif(motifs[self.rng.integers(len(motifs))])
            if self.rng.random() < 0.5:
                site = revcomp(site)
            seq[s : s + len(site)] = site[: len(seq) - s]
        kind = "enhancer_Tissue_invariant" if invariant else "enhancer_Tissue_specific"
        return bytes(seq), [(0, len(seq), kind, eid)]

    def repeat(self) -> tuple[bytes, str]:
        family = ("DemoSINE", "DemoLINE", "(CA)n")[self.rng.integers(3)]
        template = self.repeats[family]
        if family == "DemoLINE":  # 5'-truncated copies, as LINEs are
            template = template[self.rng.integers(0, len(template) - 200) :]
        if family == "(CA)n":
            template = template[: 2 * self.length(15, 60)]
        copy = np.frombuffer(template, dtype=np.uint8).copy()
        hits = self.rng.random(copy.size) < self.rng.uniform(0.03, 0.15)
        copy[hits] = np.frombuffer(b"ACGT", dtype=np.uint8)[self.rng.integers(4, size=int(hits.sum()))]
        return copy.tobytes().lower(), family


def _chromosome(b: _Builder, chrom: str, size: int, counter: dict[str, int]) -> tuple[bytes, list[Element]]:
    """Lay elements out along one chromosome of exactly ``size`` bp."""
    rng = b.rng
    out = bytearray()
    elements: list[Element] = []

    def ident(kind: str) -> str:
        counter[kind] = counter.get(kind, 0) + 1
        return f"{kind}{counter[kind]}"

    def place(seq: bytes, ann: list[tuple[int, int, str, str]], strand: str) -> None:
        base = len(out)
        if strand == "-":
            seq = revcomp(seq)
            ann = [(len(seq) - e, len(seq) - s, name, i) for s, e, name, i in ann]
        out.extend(seq)
        for s, e, name, i in ann:
            elements.append(Element(chrom, base + s, base + e, name, strand, i))

    def gap(n: int) -> None:
        elements.append(Element(chrom, len(out), len(out) + n, "gap", ".", ident("gap")))
        out.extend(b"N" * n)

    def spacer(lo: int = 500, hi: int = 4000) -> None:
        out.extend(b.background(b.length(lo, hi)))

    def strand() -> str:
        return "+" if rng.random() < 0.5 else "-"

    if chrom == "chr3":  # the short chromosome: background, one CTCF site, one repeat
        spacer(300, 300)
        place(*b.ctcf(ident("ctcf")), strand())
        spacer(200, 200)
        rep, family = b.repeat()
        place(rep, [(0, len(rep), "repeat", family)], strand())
        out.extend(b.background(size - len(out)))
        return bytes(out), elements

    if chrom == "chr2":
        gap(1_000)  # a gap at the very start of a chromosome
    tail = 500 if chrom == "chr1" else 0  # and one at the very end of chr1
    short_contig_at = size // 3 if chrom == "chr1" else None
    kinds = [*["gene"] * 3, "lncRNA", *["ctcf"] * 2, "enh_inv", "enh_spec", *["repeat"] * 6, "gap"]
    spacer()
    while True:
        if short_contig_at is not None and len(out) >= short_contig_at:
            gap(b.length(300, 800))
            start = len(out)
            place(*b.ctcf(ident("ctcf")), strand())
            out.extend(b.background(SHORT_CONTIG - (len(out) - start)))
            gap(b.length(300, 800))
            short_contig_at = None
        if len(out) > size - tail - 16_000:  # keep room for the largest element and its spacer
            break
        kind = kinds[rng.integers(len(kinds))]
        if kind in ("gene", "lncRNA"):
            place(*b.gene(ident("gene" if kind == "gene" else "lnc"), coding=kind == "gene"), strand())
        elif kind == "ctcf":
            place(*b.ctcf(ident("ctcf")), strand())
        elif kind.startswith("enh"):
            place(*b.enhancer(ident("enh"), invariant=kind == "enh_inv"), ".")
        elif kind == "repeat":
            rep, family = b.repeat()
            place(rep, [(0, len(rep), "repeat", family)], strand())
        else:
            gap(b.length(100, 5_000))
        spacer()
    out.extend(b.background(size - tail - len(out)))
    if tail:
        gap(tail)
    return bytes(out), elements


def generate(seed: int = DEMO_SEED) -> tuple[dict[str, bytes], list[Element]]:
    """The demo genome: {chrom: ASCII sequence} in genome order and its sorted annotation."""
    b = _Builder(np.random.default_rng(seed))
    seqs: dict[str, bytes] = {}
    elements: list[Element] = []
    counter: dict[str, int] = {}
    for chrom, size in DEMO_CHROM_SIZES.items():
        seqs[chrom], ann = _chromosome(b, chrom, size, counter)
        elements += ann
    order = {c: i for i, c in enumerate(DEMO_CHROM_SIZES)}
    elements.sort(key=lambda e: (order[e.chrom], e.start, e.end, e.name))
    return seqs, elements


def fasta_bytes(seqs: dict[str, bytes], width: int = LINE_WIDTH) -> bytes:
    """FASTA text with ``width`` bases a line."""
    chunks = []
    for chrom, seq in seqs.items():
        chunks.append(b">" + chrom.encode() + b"\n")
        chunks.extend(seq[i : i + width] + b"\n" for i in range(0, len(seq), width))
    return b"".join(chunks)


def bed_bytes(elements: list[Element]) -> bytes:
    return "".join(e.bed() + "\n" for e in elements).encode()


def read_annotation(path: Path | None = None) -> list[Element]:
    """The demo annotation as Elements (default: the cached demo BED, generated on first use)."""
    path = demo_annotation_path() if path is None else Path(path)
    elements = []
    for line in path.read_text().splitlines():
        chrom, start, end, name, _, strand, ident = line.split("\t")
        elements.append(Element(chrom, int(start), int(end), name, strand, ident))
    return elements


def write_demo(directory: Path, seed: int = DEMO_SEED) -> tuple[Path, Path]:
    """Generate the demo genome into ``directory``: (demo.fa, demo.bed). The FASTA is written last."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seqs, elements = generate(seed)
    fasta, bed = directory / "demo.fa", directory / "demo.bed"
    with atomic_writer(bed) as out:
        out.write(bed_bytes(elements))
    with atomic_writer(fasta) as out:
        out.write(fasta_bytes(seqs))
    return fasta, bed


def demo_dir(cache: Path | None = None) -> Path:
    """``<cache>/genomes/demo/v<DEMO_VERSION>``."""
    if cache is None:
        cache = cache_dir()
    return Path(cache) / "genomes" / "demo" / f"v{DEMO_VERSION}"


def ensure_demo(cache: Path | None = None) -> tuple[Path, Path]:
    """The demo FASTA and BED in the cache, generated there first when missing (no network)."""
    directory = demo_dir(cache)
    fasta, bed = directory / "demo.fa", directory / "demo.bed"
    if not (fasta.is_file() and bed.is_file()):
        fasta, bed = write_demo(directory)
    return fasta, bed


def demo_fasta_path(cache: Path | None = None) -> Path:
    """Path of the demo FASTA (generated on first use)."""
    return ensure_demo(cache)[0]


def demo_annotation_path(cache: Path | None = None) -> Path:
    """Path of the demo annotation BED, the ground truth of the demo models (generated on first use)."""
    return ensure_demo(cache)[1]
