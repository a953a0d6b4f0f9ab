"""The demo models the project trains itself on the demo genome, shipped in the package.

``scripts/train_demo_models.py`` trains them (seeded, on the CPU) with chr2 held out and writes them to
``nttracks/data/demo_models/``. Besides the demo genome's chr1 and chr3 they train on 16 more draws of the
demo generator (``demo.generate(seed=DEMO_SEED + i)``, chromosomes named ``s<i>_<chrom>`` in the activity
table): other sequence, the same kinds of planted elements.

- ``nt/``: a tiny NT-v2-architecture masked LM (``checkpoint: demo-nt`` in the masked-LM families);
- ``segment_nt/``: a SegmentNT-architecture element model, the backbone above fine-tuned with a U-Net
  head on the planted annotation (``checkpoint: demo-segment-nt`` in the elements family);
- ``enhancer/``: an enhancer-activity model (``nttracks-enhancer`` format, full fine-tune of the backbone
  above; ``checkpoint: demo-enhancer``) on the activity table ``enhancer_activity.tsv`` (DeepSTARR-style
  columns, see ``enhancer_activities``).

Each is an HF-layout directory (config.json + model.safetensors) read by the same strict loaders as real
checkpoints.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np

from .demo import ARE, CCAAT_BOX, CTCF_CORE, INVARIANT_MOTIFS, SPECIFIC_MOTIFS, TATA_BOX, Element, revcomp
from .errors import ModelError

HELD_OUT = "chr2"
MODELS = ("nt", "segment_nt", "enhancer")
SHIPPED = {"demo-nt": "nt", "demo-segment-nt": "segment_nt", "demo-enhancer": "enhancer"}  # checkpoint names
ACTIVITY_TABLE = "enhancer_activity.tsv"
MOTIF_WEIGHT = 0.75  # log2 enrichment one motif site adds to its activity
ACTIVITY_NOISE = 0.1  # sd of the seeded noise on each activity

_IUPAC_RE = {"A": "A", "C": "C", "G": "G", "T": "T", "N": "[ACGT]", "R": "[AG]", "Y": "[CT]", "W": "[AT]",
             "K": "[GT]", "M": "[AC]"}


def models_dir() -> Path:
    """``nttracks/data/demo_models`` in the installed package."""
    return Path(str(resources.files("nttracks.data"))) / "demo_models"


def shipped(name: str) -> Path:
    """The directory of one shipped demo model (nt, segment_nt or enhancer); ModelError when absent."""
    if name not in MODELS:
        raise ModelError(f"demo model {name!r}: use one of {', '.join(MODELS)}")
    directory = models_dir() / name
    if not (directory / "model.safetensors").is_file():
        raise ModelError(
            f"the shipped demo model {directory} is missing; rebuild it with scripts/train_demo_models.py"
        )
    return directory


def _pattern(motif: str) -> re.Pattern[bytes]:
    forward = "".join(_IUPAC_RE[c] for c in motif)
    reverse = "".join(_IUPAC_RE[c] for c in revcomp(motif.encode()).decode().translate(str.maketrans("RYKM", "YRMK")))
    return re.compile(f"(?=({forward}|{reverse}))".encode())


_INVARIANT = [_pattern(m) for m in INVARIANT_MOTIFS]
_SPECIFIC = [_pattern(m) for m in SPECIFIC_MOTIFS]


def motif_counts(seq: bytes) -> tuple[int, int]:
    """(lineage, housekeeping) motif sites in ``seq`` (either strand, case folded)."""
    seq = seq.upper()
    return (sum(len(p.findall(seq)) for p in _SPECIFIC), sum(len(p.findall(seq)) for p in _INVARIANT))


def enhancer_activities(seq: bytes, rng: np.random.Generator) -> tuple[float, float]:
    """The demo's (developmental, housekeeping) log2 enrichment of a sequence: ``MOTIF_WEIGHT`` per
    lineage (developmental) or housekeeping motif site it holds, plus seeded noise. Planted enhancers are
    clusters of such sites, so they are active; background rarely holds one."""
    dev, hk = motif_counts(seq)
    noise = rng.normal(0.0, ACTIVITY_NOISE, size=2)
    return float(MOTIF_WEIGHT * dev + noise[0]), float(MOTIF_WEIGHT * hk + noise[1])


# Where each kind of planted motif lies: (annotated class it is planted in, motifs scanned for there).
# Splice sites and polyA signals are annotated base by base, so their whole interval counts.
MOTIFS_IN = {
    "enhancer_Tissue_invariant": INVARIANT_MOTIFS,
    "enhancer_Tissue_specific": SPECIFIC_MOTIFS,
    "CTCF-bound": (CTCF_CORE,),
    "promoter_Tissue_invariant": (TATA_BOX,),
    "promoter_Tissue_specific": (TATA_BOX, CCAAT_BOX),
    "3UTR": (ARE,),
}
WHOLE_SITES = ("splice_donor", "splice_acceptor", "polyA_signal")
_MOTIF_PATTERNS = {name: [_pattern(m) for m in motifs] for name, motifs in MOTIFS_IN.items()}


def planted_motif_sites(seq: bytes, elements: list[Element], kinds: tuple[str, ...] | None = None) -> np.ndarray:
    """(len(seq),) bool: the bases of the planted motifs of one chromosome (``elements`` are its annotation):
    transcription-factor sites in enhancers, CTCF cores, TATA and CCAAT boxes in promoters, AU-rich elements
    in 3'UTRs (either strand, found by pattern inside their element), and the annotated splice sites and
    polyA signals. ``kinds``: only the elements of these classes."""
    mask = np.zeros(len(seq), dtype=bool)
    upper = seq.upper()
    for e in elements:
        if kinds is not None and e.name not in kinds:
            continue
        if e.name in WHOLE_SITES:
            mask[e.start : e.end] = True
        for pattern in _MOTIF_PATTERNS.get(e.name, ()):
            for hit in pattern.finditer(upper, e.start, e.end):
                if hit.start() + len(hit.group(1)) <= e.end:
                    mask[hit.start() : hit.start() + len(hit.group(1))] = True
    return mask


def background_bases(length: int, elements: list[Element]) -> np.ndarray:
    """(length,) bool: the bases of one chromosome outside every annotated element (repeats and gaps too)."""
    mask = np.ones(length, dtype=bool)
    for e in elements:
        mask[e.start : e.end] = False
    return mask
