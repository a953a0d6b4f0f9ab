"""Zero-shot variant scores: VCF alleles -> reference and alternative windows -> embedding distances and the
masked-LM log-likelihood ratio, batched through ``nttracks.predict``.

Each allele (one ALT of one record; ``nttracks.vcf``) is trimmed to the bases it changes (common suffix, then
common prefix) and placed in a window of ``window`` bp of its N-free contig, on the contig's 6-mer grid as
the tiling places windows, centred on the change (moved inward near a contig end, as long as ``min_flank`` bp
stay on each side). The alternative window has the same length: the alternative allele with the reference
around it, re-centred (an indel of d bp moves its left edge by d // 2) and trimmed to ``window`` bp.

Scores, per allele (``SCORES``; natural logs):

- embeddings of the configured ``layer`` (default: the last), mean-pooled over the window's tokens
  (``*_mean``) and at the token holding the change (``*_token``: the first changed base; for a deletion the
  first base after it): ``l1``, ``l2`` (distances alt - ref), ``cosine`` (similarity), ``dot`` (product),
  and the reference's and alternative's norms (``ref_norm_*``, ``alt_norm_*``);
- SNVs only: with the reference window's token of the variant masked, ``logp_ref`` and ``logp_alt`` (log
  probability of each base at the variant's position, from the 6-mer distribution marginalized per offset)
  and ``llr`` = logp_alt - logp_ref.

With ``reverse_complement``, every window is also scored on the reverse strand (complemented bases, token
and offset mirrored) and each score is the mean of the two strands. Alleles that cannot be scored get a
reason (``REASONS``) and no score: no allele is dropped. Windows shared by alleles (a multi-allelic record's
reference and masked windows; in-silico mutagenesis' neighbouring positions) are run once.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bases import Geometry, encode
from .errors import ConfigError, VariantsError
from .vcf import Allele, ChromMapper, Field, TsvWriter, VcfReader, VcfWriter

KMER = 6
MASK_CODE = 5  # = models.embedding.MASK_CODE (kept here so locating variants imports no torch)
_COMPLEMENT = np.array([3, 2, 1, 0, 4, MASK_CODE], dtype=np.uint8)
_ACGT = "ACGT"

SCORES: tuple[Field, ...] = (
    Field("l1_mean", "L1 distance between the mean-pooled ref and alt embeddings"),
    Field("l2_mean", "L2 distance between the mean-pooled ref and alt embeddings"),
    Field("cosine_mean", "cosine similarity of the mean-pooled ref and alt embeddings"),
    Field("dot_mean", "dot product of the mean-pooled ref and alt embeddings"),
    Field("ref_norm_mean", "L2 norm of the mean-pooled ref embedding"),
    Field("alt_norm_mean", "L2 norm of the mean-pooled alt embedding"),
    Field("l1_token", "L1 distance between the ref and alt embeddings of the variant token"),
    Field("l2_token", "L2 distance between the ref and alt embeddings of the variant token"),
    Field("cosine_token", "cosine similarity of the ref and alt embeddings of the variant token"),
    Field("dot_token", "dot product of the ref and alt embeddings of the variant token"),
    Field("ref_norm_token", "L2 norm of the ref embedding of the variant token"),
    Field("alt_norm_token", "L2 norm of the alt embedding of the variant token"),
    Field("logp_ref", "SNV: ln p(ref base) at the variant, its token masked"),
    Field("logp_alt", "SNV: ln p(alt base) at the variant, its token masked"),
    Field("llr", "SNV: masked-LM log-likelihood ratio ln p(alt) - ln p(ref)"),
)
SCORE_NAMES = tuple(f.name for f in SCORES)

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
class VariantSettings:
    """checkpoint: NT masked LM (directory or HF id; ``demo`` the seeded demo model).
    window: bp of context, whole 6-mers (default 5,994 = 999 tokens, the paper's 6 kb).
    layer: embedding layer, 0 .. the model's layers (None: the last, after the final LayerNorm).
    max_indel: longest allele (after trimming) scored, bp; longer ones are reported ``too_long``.
    min_flank: bp of the window each side of the variant at least (None: a quarter window); a variant
        nearer a contig end is reported ``near_contig_end``.
    reverse_complement: also score the reverse strand and average the two.
    llr: compute the masked-LM log-likelihood ratio of SNVs (one more window per SNV).
    batch_size: windows per forward pass. precision: auto (bf16 on a GPU), fp32 or bf16.
    """

    checkpoint: str = "InstaDeepAI/nucleotide-transformer-v2-500m-multi-species"
    window: int = 5994
    layer: int | None = None
    max_indel: int = 50
    min_flank: int | None = None
    reverse_complement: bool = False
    llr: bool = True
    batch_size: int = 8
    precision: str = "auto"

    @property
    def flank(self) -> int:
        return self.window // 4 if self.min_flank is None else self.min_flank

    def check(self, source: str = "variant settings") -> None:
        where = f"{source}: variants"
        if self.window < KMER or self.window % KMER:
            raise ConfigError(f"{where}.window: {self.window} bp must be a positive multiple of 6 (whole 6-mers)")
        if self.batch_size < 1:
            raise ConfigError(f"{where}.batch_size: must be at least 1, got {self.batch_size}")
        if self.max_indel < 1:
            raise ConfigError(f"{where}.max_indel: must be at least 1 bp, got {self.max_indel}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"{where}.precision: {self.precision!r} is not one of auto, fp32, bf16")
        if self.flank < self.max_indel or 2 * self.flank + self.max_indel + 2 * KMER > self.window:
            raise ConfigError(
                f"{where}.min_flank: {self.flank} bp must be at least max_indel ({self.max_indel}) and leave room "
                f"for the variant in a {self.window} bp window (2 x min_flank + max_indel + 12 <= window)"
            )
        if self.layer is not None and self.layer < 0:
            raise ConfigError(f"{where}.layer: {self.layer} must be >= 0 (or null: the last layer)")
        if not self.checkpoint.strip():
            raise ConfigError(f"{where}.checkpoint: empty; give a checkpoint directory, HF id or demo")


def load_variant_settings(path: Path | None = None, **overrides: Any) -> VariantSettings:
    """Settings from a YAML file's ``variants:`` mapping (every key checked), then ``overrides`` (not None)."""
    from .config import _build, _mapping  # the config module's checked builders

    settings = VariantSettings()
    source = "defaults"
    if path is not None:
        import yaml

        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        top = _mapping(data, "", source, ("variants",))
        settings = _build(VariantSettings, top.get("variants") or {}, "variants", source)
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    settings.check(source)
    return settings


# ----------------------------------------------------------------------------- locating variants


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
    site = _place(chrom, vs, ve, tref, talt, where, settings)
    if site is None:
        return None, "near_contig_end", (
            f"needs {settings.flank} bp of N-free sequence each side of {chrom}:{vs + 1} in a {settings.window} bp "
            f"window; its contig is {chrom}:{where[0] + 1}-{where[1]}")
    return site, "", ""


def _place(chrom: str, vs: int, ve: int, ref: str, alt: str, contig: tuple[int, int],
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


# ----------------------------------------------------------------------------- scoring


def load_variant_model(settings: VariantSettings, device: Any) -> tuple[Any, str, str]:
    """(model, label, checkpoint digest) of the settings' NT masked LM, for ``score_sites``."""
    from .families import ntlm, torch_dtype
    from .models.embedding import NTVariantModel
    from .models.loading import checkpoint_digest, load_nt
    from .models.mlm import check_window_fits

    lm_settings = ntlm.MaskedLMSettings(checkpoint=settings.checkpoint)
    directory = ntlm.checkpoint_dir(lm_settings)
    lm = load_nt(directory, device=device, dtype=torch_dtype(settings.precision, device))
    geometry = Geometry(window=settings.window, multiple=KMER, min_length=KMER, grid=KMER)
    check_window_fits(geometry, lm.config)
    model = NTVariantModel(lm, geometry, settings.layer).to(device)
    label = ntlm.model_label(lm_settings, "masked LM") + f", layer {model.layer} embeddings"
    return model, label, checkpoint_digest(Path(directory))


def _flip(codes: np.ndarray) -> np.ndarray:
    return _COMPLEMENT[codes[::-1]]


def score_sites(model: Any, sites: Sequence[Site], read: Callable[[str], np.ndarray], *, batch_size: int,
                device: Any, reverse_complement: bool = False, llr: bool = True) -> list[dict[str, float]]:
    """Scores (``SCORE_NAMES``; the LLR ones NaN for non-SNVs or without an LM) of ``sites``, in order.

    read(chrom) gives a whole chromosome's codes. Windows shared by sites are run once; everything runs
    through ``predict.predict`` in batches of ``batch_size``, the reductions on ``device``.
    """
    import torch

    from .predict import predict

    n = len(sites)
    if n == 0:
        return []
    strands = (False, True) if reverse_complement else (False,)
    use_lm = llr and bool(getattr(model, "has_lm", False))
    hidden, tokens = model.hidden, sites[0].window // KMER
    # window key -> [(site, role, strand)] that need it; keys in first-use order
    needs: dict[tuple, list[tuple[int, str, int]]] = {}
    for i, site in enumerate(sites):
        for s, flip in enumerate(strands):
            needs.setdefault(("ref", site.chrom, site.ws, flip), []).append((i, "ref", s))
            needs.setdefault(("alt", i, flip), []).append((i, "alt", s))
            if use_lm and site.is_snv:
                needs.setdefault(("mask", site.chrom, site.ws, site.ref_token, flip), []).append((i, "mask", s))

    def windows() -> Iterator[tuple[tuple, np.ndarray]]:
        for key, users in needs.items():
            site = sites[users[0][0]]
            chrom_codes = read(site.chrom)
            role, flip = key[0], key[-1]
            codes = {"ref": site.ref_window, "alt": site.alt_window, "mask": site.masked_window}[role](chrom_codes)
            yield key, (_flip(codes) if flip else codes)

    shape = (n, len(strands), hidden)
    emb = {k: torch.zeros(shape, device=device) for k in ("ref_mean", "alt_mean", "ref_token", "alt_token")}
    logs = torch.full((n, len(strands), 4), math.nan, device=device)
    for key, out in predict(model, windows(), batch_size=batch_size, device=device):
        mean = out[:, :hidden].mean(0) if key[0] != "mask" else None
        for i, role, s in needs[key]:
            site, flip = sites[i], bool(s)
            if role == "mask":
                t, offset = site.ref_token, (site.vs - site.ws) % KMER
                if flip:
                    t, offset = tokens - 1 - t, KMER - 1 - offset
                logs[i, s] = out[t, hidden:].view(KMER, 4)[offset]
                continue
            t = site.ref_token if role == "ref" else site.alt_token
            emb[f"{role}_mean"][i, s] = mean
            emb[f"{role}_token"][i, s] = out[tokens - 1 - t if flip else t, :hidden]
    scores: dict[str, torch.Tensor] = {}
    for pool in ("mean", "token"):
        r, a = emb[f"ref_{pool}"].double(), emb[f"alt_{pool}"].double()
        dot, nr, na = (r * a).sum(-1), r.norm(dim=-1), a.norm(dim=-1)
        scores[f"l1_{pool}"] = (a - r).abs().sum(-1)
        scores[f"l2_{pool}"] = (a - r).norm(dim=-1)
        scores[f"cosine_{pool}"] = dot / (nr * na).clamp_min(1e-300)
        scores[f"dot_{pool}"] = dot
        scores[f"ref_norm_{pool}"], scores[f"alt_norm_{pool}"] = nr, na
    ref_col = torch.tensor([_ACGT.index(s.ref) if s.is_snv else 0 for s in sites], device=device)
    alt_col = torch.tensor([_ACGT.index(s.alt) if s.is_snv else 0 for s in sites], device=device)
    cols = torch.stack([ref_col, alt_col], 1)[:, None, :].expand(n, len(strands), 2)
    if len(strands) == 2:  # the reverse strand's bases are the complements
        cols = torch.stack([cols[:, 0], 3 - cols[:, 1]], 1)
    picked = logs.double().gather(-1, cols)
    scores["logp_ref"], scores["logp_alt"] = picked[..., 0], picked[..., 1]
    scores["llr"] = picked[..., 1] - picked[..., 0]
    table = torch.stack([scores[name].mean(1) for name in SCORE_NAMES], 1).cpu().numpy()
    return [dict(zip(SCORE_NAMES, map(float, row), strict=True)) for row in table]


# ----------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class VariantsResult:
    tsv: Path
    vcf: Path
    summary: dict[str, Any]


def score_vcf(
    vcf: str | os.PathLike[str],
    genome: Any,
    out: Path,
    settings: VariantSettings,
    *,
    model: Any,
    model_label: str = "",
    device: Any = "cpu",
    chunk: int = 1024,
    progress: Callable[[int], Any] | None = None,
) -> VariantsResult:
    """Score every allele of ``vcf`` on ``genome`` with ``model``; write ``out``/variants.tsv, variants.vcf.gz
    (+ .tbi) and variants.json (counts by status and reason, settings, chromosome renaming).

    Alleles are read and placed ``chunk`` at a time (the chunking never changes a score); progress(n) is
    called with the number of alleles finished.
    """
    out.mkdir(parents=True, exist_ok=True)
    reader = VcfReader(vcf)
    mapper = ChromMapper(genome.chroms, list(reader.contigs))
    codes = ChromCodes(genome)
    tsv = TsvWriter(out / "variants.tsv", SCORES)
    vcf_out = VcfWriter(out / "variants.vcf.gz", SCORES, reader, genome.chrom_sizes, mapper,
                        [f"##nttracks_model={model_label or type(model).__name__}",
                         f"##nttracks_genome={genome.name}"])
    counts: dict[str, int] = {}
    try:
        for batch in _chunks(reader.alleles(), chunk):
            located = [locate(a, mapper(a.chrom), codes, settings) for a in batch]
            sites = [site for site, _, _ in located if site is not None]
            scored = iter(score_sites(model, sites, codes, batch_size=settings.batch_size, device=device,
                                      reverse_complement=settings.reverse_complement, llr=settings.llr))
            for a, (site, reason, detail) in zip(batch, located, strict=True):
                scores = next(scored) if site is not None else {}
                status = "scored" if site is not None else "skipped"
                counts[reason or "scored"] = counts.get(reason or "scored", 0) + 1
                tsv.write(a, status, reason, detail, scores)
                vcf_out.write(a, status, reason, scores)
            if progress is not None:
                progress(len(batch))
    except BaseException:
        tsv.abort()
        vcf_out.abort()
        raise
    finally:
        reader.close()
    tsv.close()
    vcf_out.close()
    summary = {
        "vcf": str(Path(vcf).resolve()),
        "genome": genome.name,
        "model": model_label,
        "alleles": sum(counts.values()),
        "counts": dict(sorted(counts.items(), key=lambda kv: (kv[0] != "scored", kv[0]))),
        "chromosomes_renamed": mapper.renamed,
        "settings": dataclasses.asdict(settings),
        "scores": {f.name: f.description for f in SCORES},
        "reasons": REASONS,
    }
    path = out / "variants.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return VariantsResult(out / "variants.tsv", out / "variants.vcf.gz", summary)


def _chunks(items: Iterable[Allele], size: int) -> Iterator[list[Allele]]:
    batch: list[Allele] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_vcf_path(path: Path) -> None:
    if not Path(path).is_file():
        raise VariantsError(f"VCF {path} not found; give a VCF file (plain or bgzip)")


DEMO_SETTINGS = {"checkpoint": "demo", "window": 1200}  # the demo genome's small contigs and tiny random model


def settings_for(genome: str | os.PathLike[str], config: Path | None = None, **overrides: Any) -> VariantSettings:
    """The variant settings of a run: ``config``'s ``variants:`` (default: the demo's for genome ``demo``, else
    the defaults), then the command line's ``overrides`` (None: not given)."""
    if config is None and str(genome) == "demo":
        overrides = {**DEMO_SETTINGS, **{k: v for k, v in overrides.items() if v is not None}}
    return load_variant_settings(config, **overrides)


def run_variants(
    vcf: str | os.PathLike[str],
    genome: str | os.PathLike[str] | Any,
    out: Path,
    settings: VariantSettings,
    *,
    device: str = "auto",
    model: Any = None,
    progress: Callable[[int], Any] | None = None,
) -> VariantsResult:
    """``nttracks variants``: open the genome (a registered name, a FASTA path or an open Genome) and the
    settings' model on ``device``, and score ``vcf`` into ``out`` (``score_vcf``)."""
    from .predict import resolve_device
    from .registry import open_genome

    check_vcf_path(Path(vcf))
    if out.exists() and not out.is_dir():
        raise VariantsError(f"--out {out} is a file; give a directory (created when missing)")
    dev = resolve_device(device)
    opened = genome if hasattr(genome, "chrom_sizes") else open_genome(genome)
    label = ""
    if model is None:
        model, label, _ = load_variant_model(settings, dev)
    return score_vcf(vcf, opened, out, settings, model=model, model_label=label, device=dev, progress=progress)
