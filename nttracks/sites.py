"""Placing an allele in its windows: trimmed to the bases it changes, on its N-free contig's 6-mer grid, or
the reason it cannot be scored (``REASONS``). Plain NumPy, no torch: ``nttracks.variants`` scores the sites.

An allele (one ALT of one record) is trimmed (common suffix, then common prefix) and its reference window of
``window`` bp laid on its contig's 6-mer grid, as the tiling lays windows, centred on the change where the
contig allows it and moved inward near a contig end as long as ``min_flank`` bp stay on each side. The
alternative window has the same length: the alternative allele with the reference around it, re-centred (an
allele d bp longer than its reference starts d // 2 bp later) and trimmed to ``window`` bp.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .bases import encode
from .vcf import Allele

if TYPE_CHECKING:
    from .variants import VariantSettings

KMER = 6
MASK_CODE = 5  # = models.embedding.MASK_CODE (kept here so locating variants imports no torch)
_ACGT = "ACGT"

REASONS = {
    "missing_alt": "the record has no ALT ('.')",
    "star_allele": "'*' stands for an allele removed by an overlapping deletion; it has no sequence",
    "symbolic_alt": "a symbolic allele (<...>) has no sequence to score",
    "breakend": "a breakend (ALT with [ or ]) has no sequence to score",
    "alt_not_acgt": "the ALT has bases other than A, C, G, T",
    "no_change": "ALT equals REF",
    "unknown_contig": "the chromosome is not in the genome (under either naming, chr1/1, chrM/MT)",
    "outside_chromosome": "REF runs past the chromosome's end",
    "in_n_gap": "the variant touches N (unknown) bases of the genome",
    "ref_mismatch": "REF differs from the genome (another assembly, or a wrong coordinate)",
    "too_long": "the allele is longer than max_indel",
    "near_contig_end": "too near a contig end (an N gap or a chromosome end) for a window with min_flank each side",
}


@dataclass(frozen=True)
class Site:
    """An allele placed in its windows (0-based genome coordinates of the genome's chromosome ``chrom``).

    [vs, ve): the reference bases the trimmed allele replaces (vs == ve for an insertion before vs);
    ws: the reference window's start; shift: the alternative window starts at ws + shift (d // 2 for an
    allele d bp longer than its reference, 0 for SNVs and MNVs); ref, alt: the trimmed alleles.
    """

    chrom: str
    ws: int
    vs: int
    ve: int
    ref: str
    alt: str
    window: int

    @property
    def is_snv(self) -> bool:
        return len(self.ref) == 1 and len(self.alt) == 1

    @property
    def shift(self) -> int:
        return (len(self.alt) - len(self.ref)) // 2

    @property
    def ref_token(self) -> int:
        return (self.vs - self.ws) // KMER

    @property
    def alt_token(self) -> int:
        return (self.vs - self.ws - self.shift) // KMER

    def ref_window(self, chrom_codes: np.ndarray) -> np.ndarray:
        return chrom_codes[self.ws : self.ws + self.window]

    def alt_window(self, chrom_codes: np.ndarray) -> np.ndarray:
        start = self.ws + self.shift
        left = chrom_codes[start : self.vs]
        right = self.window - len(left) - len(self.alt)
        return np.concatenate([left, encode(self.alt), chrom_codes[self.ve : self.ve + right]])

    def masked_window(self, chrom_codes: np.ndarray) -> np.ndarray:
        codes = self.ref_window(chrom_codes).copy()
        t = self.ref_token
        codes[t * KMER : (t + 1) * KMER] = MASK_CODE
        return codes

    def span(self) -> tuple[int, int]:
        """The genome bases both windows read: [start, end)."""
        start = self.ws + min(self.shift, 0)
        alt_end = self.ve + self.window - (self.vs - self.ws - self.shift) - len(self.alt)
        return start, max(self.ws + self.window, alt_end)


def trim(pos0: int, ref: str, alt: str) -> tuple[int, str, str]:
    """(0-based start, REF, ALT) -> the same change without the bases both alleles share: common suffix
    first, then common prefix (so REF=A ALT=AT is an insertion of T after the A)."""
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    k = 0
    while k < min(len(ref), len(alt)) and ref[k] == alt[k]:
        k += 1
    return pos0 + k, ref[k:], alt[k:]


class ChromCodes:
    """Whole chromosomes' codes and N-free contigs, read once each (the last few kept)."""

    def __init__(self, genome: Any, keep: int = 2) -> None:
        self.genome = genome
        self.keep = keep
        self._codes: dict[str, np.ndarray] = {}
        self._contigs: dict[str, tuple[list[int], list[int]]] = {}

    def __call__(self, chrom: str) -> np.ndarray:
        codes = self._codes.pop(chrom, None)
        if codes is None:
            codes = self.genome.codes(chrom)
        self._codes[chrom] = codes  # most recent last
        while len(self._codes) > self.keep:
            del self._codes[next(iter(self._codes))]
        return codes

    def contig_of(self, chrom: str, pos: int) -> tuple[int, int] | None:
        """The N-free contig [start, end) of ``chrom`` holding ``pos``, or None (pos is N)."""
        if chrom not in self._contigs:
            contigs = self.genome.contigs([chrom])
            self._contigs[chrom] = ([c.start for c in contigs], [c.end for c in contigs])
        starts, ends = self._contigs[chrom]
        i = bisect.bisect_right(starts, pos) - 1
        return (starts[i], ends[i]) if i >= 0 and pos < ends[i] else None


Located = tuple[Site | None, str, str]  # (site, reason, detail): a site and "" "", or None and why


def locate(a: Allele, chrom: str | None, codes: ChromCodes, settings: VariantSettings) -> Located:
    """Place allele ``a`` (on the genome's chromosome ``chrom``, None: unknown) in its windows, or say why not."""
    alt = a.alt.upper()
    if not alt or alt == ".":
        return None, "missing_alt", REASONS["missing_alt"]
    if alt == "*":
        return None, "star_allele", REASONS["star_allele"]
    if alt.startswith("<"):
        return None, "symbolic_alt", f"symbolic allele {a.alt} has no sequence to score"
    if "[" in alt or "]" in alt:
        return None, "breakend", f"breakend {a.alt} has no sequence to score"
    if chrom is None:
        return None, "unknown_contig", f"chromosome {a.chrom} is not in the genome (as {a.chrom}, nor renamed)"
    ref = a.ref.upper()
    pos0 = a.pos - 1
    size = codes.genome.chrom_sizes[chrom]
    if pos0 < 0 or pos0 + len(ref) > size:
        return None, "outside_chromosome", f"REF {a.ref} at {chrom}:{a.pos} runs past {chrom}'s end ({size} bp)"
    seq = codes(chrom)[pos0 : pos0 + len(ref)]
    if bool((seq == 4).any()):
        return None, "in_n_gap", f"the genome has N at {chrom}:{a.pos}-{a.pos + len(ref) - 1}"
    if not np.array_equal(encode(ref), seq):
        have = "".join(_ACGT[c] for c in seq)
        return None, "ref_mismatch", f"REF {a.ref} but the genome has {have} at {chrom}:{a.pos}"
    if set(alt) - set(_ACGT):
        return None, "alt_not_acgt", f"ALT {a.alt} has bases other than A, C, G, T"
    vs, tref, talt = trim(pos0, ref, alt)
    if not tref and not talt:
        return None, "no_change", REASONS["no_change"]
    longest = max(len(tref), len(talt))
    if longest > settings.max_indel and not (len(tref) == len(talt) == 1):
        return None, "too_long", f"the allele changes {longest} bp; max_indel is {settings.max_indel}"
    ve = vs + len(tref)
    contig = codes.contig_of(chrom, vs if tref else max(vs - 1, 0))
    where = contig or (vs, vs)
    if contig is None or (tref and ve > contig[1]):
        return None, "in_n_gap", f"the change at {chrom}:{vs + 1} touches N bases"
    site = place(chrom, vs, ve, tref, talt, where, settings)
    if site is None:
        return None, "near_contig_end", (
            f"needs {settings.flank} bp of N-free sequence each side of {chrom}:{vs + 1} in a {settings.window} bp "
            f"window; its contig is {chrom}:{where[0] + 1}-{where[1]}")
    return site, "", ""


def place(chrom: str, vs: int, ve: int, ref: str, alt: str, contig: tuple[int, int],
           settings: VariantSettings) -> Site | None:
    """The site with its reference window on the contig's 6-mer grid, centred on the change where the contig
    allows it, else moved inward; None when no window keeps ``flank`` bp each side within the contig."""
    window, flank = settings.window, settings.flank
    cs, ce = contig
    probe = Site(chrom, 0, vs, ve, ref, alt, window)
    lo, hi = probe.span()  # relative to ws = 0
    first, last = cs - lo, ce - hi  # ws must lie in [first, last]
    first = cs + -(-(first - cs) // KMER) * KMER  # onto the grid, inward
    last = cs + ((last - cs) // KMER) * KMER
    centre = (vs + ve) // 2 - window // 2
    ws = cs + round((centre - cs) / KMER) * KMER
    ws = min(max(ws, first), last)
    if first > last or vs - ws < flank or ws + window - ve < flank:
        return None
    return Site(chrom, ws, vs, ve, ref, alt, window)
