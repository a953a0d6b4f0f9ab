"""Zero-shot variant scores: VCF alleles -> reference and alternative windows -> embedding distances and the
masked-LM log-likelihood ratio, batched through ``nttracks.predict``.

Each allele (one ALT of one record; ``nttracks.vcf``) is placed by ``nttracks.sites``: trimmed to the bases
it changes and laid in a reference window of ``window`` bp on its N-free contig's 6-mer grid, centred on the
change, with an alternative window of the same length (indels re-centred and trimmed).

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

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bases import Geometry
from .errors import ConfigError, VariantsError
from .sites import _ACGT, KMER, MASK_CODE, REASONS, ChromCodes, Site, locate, place, trim
from .vcf import Allele, ChromMapper, Field, TsvWriter, VcfReader, VcfWriter

__all__ = ["REASONS", "SCORES", "SCORE_NAMES", "ChromCodes", "Site", "VariantSettings", "load_variant_model",
           "load_variant_settings", "locate", "place", "run_variants", "score_sites", "score_vcf", "trim"]

_COMPLEMENT = np.array([3, 2, 1, 0, 4, MASK_CODE], dtype=np.uint8)

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
