#!/usr/bin/env python
"""Train the demo models shipped in nttracks/data/demo_models/ (seeded, CPU, deterministic).

On the demo genome with chr2 held out (trained on chr1 and chr3, and on EXTRA_GENOMES more draws of the
demo generator with other seeds):

1. nt/          a tiny NT-v2-architecture masked LM (15% of 6-mer tokens corrupted BERT-style) on 300-bp
                windows, most centred on planted elements, a quarter of each batch tandem repeats (so that
                it learns to read its neighbours), its 6-mer embeddings started from their bases;
2. segment_nt/  a SegmentNT-architecture model: that backbone plus a U-Net head, fine-tuned (every weight)
                on the planted annotation as SegmentNT's 14 classes (per-nucleotide binary cross-entropy,
                positives weighted up in rare classes) on 1,200-bp windows;
3. enhancer/    an enhancer head (``nttracks.finetune.finetune``, adapter full) on 249-bp windows whose
                activities ``nttracks.demo_models.enhancer_activities`` assigns (written to
                enhancer_activity.tsv, DeepSTARR's column names; validation and test windows from chr2).

Rerunning it reproduces the weights byte for byte (same torch build, same thread count: THREADS = 2,
about 11 minutes on a 2-core machine). It prints the
held-out metrics and writes them to training_report.json beside the models.

    python scripts/train_demo_models.py                 # into nttracks/data/demo_models
    python scripts/train_demo_models.py --out /tmp/x --scale 0.05   # a short run (reproducibility checks)
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nttracks import demo  # noqa: E402
from nttracks.bases import Geometry, encode  # noqa: E402
from nttracks.demo_models import (  # noqa: E402
    ACTIVITY_TABLE,
    HELD_OUT,
    background_bases,
    enhancer_activities,
    planted_motif_sites,
)
from nttracks.finetune import ActivityData, FinetuneSettings, finetune  # noqa: E402
from nttracks.metrics import score  # noqa: E402
from nttracks.models.loading import lm_hf_name, nt_config_to_hf, save_checkpoint, tiny_nt_config  # noqa: E402
from nttracks.models.mlm import MaskedLMTracks  # noqa: E402
from nttracks.models.nt import NTForMaskedLM, init_weights  # noqa: E402
from nttracks.models.segment_nt import (  # noqa: E402
    FEATURES,
    TRAINING_RESCALING,
    TRAINING_TOKENS,
    SegmentNT,
    segment_nt_hf_name,
)
from nttracks.models.tokenizer import KMER, V2, kmer_base_matrix, tokenize_acgt  # noqa: E402
from nttracks.stitch import overlap_add, window_weights  # noqa: E402

SEED = 20240521
THREADS = 2  # the CI machine's cores; the weights are reproducible for a given thread count
HIDDEN, LAYERS, HEADS = 64, 2, 4
WINDOW = 1200  # bp: 200 tokens, a multiple of 24 (SegmentNT's U-Net pools twice)
MLM_STEPS, MLM_BATCH, MLM_LR = 3000, 64, 3e-3
# bp: the masked LM's training windows (50 tokens: the sites it learns are local), and how the demo config
# tiles the masked-LM families with it
MLM_WINDOW, MLM_OVERLAP = 300, 60
SEG_STEPS, SEG_BATCH, SEG_LR = 2500, 16, 1e-3
ENH_EPOCHS = 3
ENH_WINDOW = 249
EVAL_OVERLAP = 240  # the held-out chromosome is scored as the demo config tiles it: taper over 240 bp
# More draws of the demo generator (other seeds: other sequences, the same kinds of planted elements) join
# the demo genome's training chromosomes: 250 kb alone is memorized long before the 6-mer embeddings
# generalize. chr2 of the demo genome itself stays unseen.
EXTRA_GENOMES = 16
# Share of training windows centred on a planted element (the rest are drawn uniformly): elements are a
# small part of the genome, and CTCF sites, enhancers and splice sites would otherwise be rare examples.
CENTRED = 0.6
# Positives of each class weigh sqrt(negatives / positives) (at most MAX_POS_WEIGHT) in the element loss:
# 6-bp splice sites are 0.1% of the bases, and an unweighted loss learns to never predict them.
MAX_POS_WEIGHT = 30.0
# The masked LM's windows centre on the elements that carry planted motifs, more often: motif sites are
# a few hundred bases a chromosome, and the constraint track should see them as the model's own.
MLM_CENTRED = 0.9
# The demo's background is i.i.d. bases: nothing in it rewards looking at a token's neighbours, and on it
# alone the masked LM settles on base composition and never starts to attend (its predictions ignore the
# context). A share of every batch is tandem repeats, which can only be predicted from the context, as
# the tandem repeats of real genomes teach NT.
MLM_TANDEM = 0.25
MLM_CENTRE_CLASSES = ("splice_donor", "splice_acceptor", "polyA_signal", "3UTR", "CTCF-bound",
                      "enhancer_Tissue_invariant", "enhancer_Tissue_specific", "promoter_Tissue_invariant",
                      "promoter_Tissue_specific")
CENTRE_CLASSES = ("exon", "intron", "splice_donor", "splice_acceptor", "5UTR", "3UTR", "polyA_signal",
                  "CTCF-bound", "enhancer_Tissue_invariant", "enhancer_Tissue_specific",
                  "promoter_Tissue_invariant", "promoter_Tissue_specific")


def contigs(seq: bytes, min_len: int) -> list[tuple[int, int]]:
    """N-free stretches of at least ``min_len`` bp."""
    is_n = np.frombuffer(seq.upper(), dtype=np.uint8) == ord("N")
    edges = np.flatnonzero(np.diff(np.r_[1, is_n.astype(np.int8), 1]))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    return [(int(a), int(b)) for a, b in runs if b - a >= min_len]


def labels(size: int, elements: list[demo.Element]) -> np.ndarray:
    """(len(FEATURES), size) uint8 truth for one chromosome."""
    out = np.zeros((len(FEATURES), size), dtype=np.uint8)
    index = {f: i for i, f in enumerate(FEATURES)}
    for e in elements:
        if e.name in index:
            out[index[e.name], e.start : e.end] = 1
    return out


class Windows:
    """Seeded sampler of N-free windows (codes and labels) from the training chromosomes."""

    def __init__(self, seqs, truth, chroms, rng, window=WINDOW, centres=None):
        self.codes = {c: encode(seqs[c]) for c in chroms}
        self.truth = truth
        self.places = [(c, a, b) for c in chroms for a, b in contigs(seqs[c], window)]
        self.weights = np.array([b - a - window + 1 for _, a, b in self.places], dtype=np.float64)
        self.weights /= self.weights.sum()
        # a centred window picks an element class first (uniformly), then one of its elements
        self.centres = [(c, pos) for c, pos, _ in centres or []]
        counts: dict[str, int] = {}
        for *_, kind in centres or []:
            counts[kind] = counts.get(kind, 0) + 1
        self.centre_p = np.array([1.0 / counts[kind] for *_, kind in centres or []], dtype=np.float64)
        self.centre_p /= max(self.centre_p.sum(), 1e-300)
        self.rng, self.window = rng, window

    def draw(self, n: int, centred: float = 0.0):
        starts = []
        for _ in range(n):
            if self.centres and self.rng.random() < centred:
                c, pos = self.centres[self.rng.choice(len(self.centres), p=self.centre_p)]
                lo = pos - int(self.rng.integers(0, self.window))
                hits = [(a, b) for cc, a, b in self.places if cc == c and a <= lo and lo + self.window <= b]
                if hits:
                    starts.append((c, lo))
                    continue
            k = self.rng.choice(len(self.places), p=self.weights)
            c, a, b = self.places[k]
            starts.append((c, a + int(self.rng.integers(0, b - a - self.window + 1))))
        codes = np.stack([self.codes[c][s : s + self.window] for c, s in starts])
        truth = None
        if self.truth is not None:
            truth = np.stack([self.truth[c][:, s : s + self.window] for c, s in starts])
        return torch.from_numpy(codes), None if truth is None else torch.from_numpy(truth)


def schedule(optimizer, steps: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def update(model: torch.nn.Module, optimizer, sched, loss: torch.Tensor, what: str, report: bool) -> None:
    """One optimizer step on ``loss`` (gradients clipped to norm 1), then the schedule's; logs the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    sched.step()
    if report:
        log(f"{what} loss {loss.item():.4f}")


# --- 1. the masked LM -----------------------------------------------------------------------------


def base_structured_init(model: NTForMaskedLM, gen: torch.Generator) -> None:
    """Start each 6-mer's embedding and LM-head row as a random linear image of its six bases (one-hot,
    24 values) plus noise: the model sees from step one which bases a token holds, and its head starts as a
    product of per-offset base preferences. In random background nothing rewards learning the bases of a
    6-mer, so from random embeddings the few planted motifs alone would have to teach it."""
    table = kmer_base_matrix(V2).reshape(4096, KMER * 4)
    rows = slice(V2.kmer_offset, V2.kmer_offset + 4096)
    with torch.no_grad():
        for weight, scale in ((model.backbone.embed.weight, 1.0), (model.lm_head.decoder.weight, HIDDEN**-0.5)):
            projection = torch.randn((KMER * 4, HIDDEN), generator=gen) * (scale / math.sqrt(KMER))
            weight[rows] = table @ projection + 0.02 * torch.randn((4096, HIDDEN), generator=gen)


def tandem_repeats(n: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """(n, length) uint8 codes, each a mosaic of short tandem repeats: stretches of 12-48 bp, each a random
    1-6 bp unit repeated, 3% of bases mutated. Only a token's near neighbours tell what it is."""
    codes = torch.empty((n, length), dtype=torch.long)
    for row in range(n):
        at = 0
        while at < length:
            span = int(torch.randint(12, 49, (1,), generator=gen))
            unit = torch.randint(0, 4, (int(torch.randint(1, 7, (1,), generator=gen)),), generator=gen)
            codes[row, at : at + span] = unit.repeat(span // len(unit) + 1)[: min(span, length - at)]
            at += span
    mutated = torch.rand((n, length), generator=gen) < 0.03
    codes[mutated] = torch.randint(0, 4, (int(mutated.sum()),), generator=gen)
    return codes.to(torch.uint8)


def train_mlm(sampler: Windows, steps: int, gen: torch.Generator) -> NTForMaskedLM:
    config = tiny_nt_config("v2", hidden=HIDDEN, layers=LAYERS, heads=HEADS)
    model = NTForMaskedLM(config)
    init_weights(model, gen)
    base_structured_init(model, gen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=MLM_LR, weight_decay=0.01)
    sched = schedule(optimizer, steps, max(1, steps // 20))
    model.train()
    for step in range(steps):
        codes, _ = sampler.draw(MLM_BATCH, centred=MLM_CENTRED)
        repeats = round(MLM_TANDEM * MLM_BATCH)
        if repeats:
            codes[:repeats] = tandem_repeats(repeats, codes.shape[1], gen)
        ids = tokenize_acgt(codes, V2)
        target = ids.clone()
        chosen = torch.rand(ids.shape, generator=gen) < 0.15
        chosen[:, 0] = False
        action = torch.rand(ids.shape, generator=gen)
        corrupted = ids.clone()
        corrupted[chosen & (action < 0.8)] = V2.mask
        random_ids = torch.randint(V2.kmer_offset, V2.kmer_offset + 4096, ids.shape, generator=gen)
        swap = chosen & (action >= 0.8) & (action < 0.9)
        corrupted[swap] = random_ids[swap]
        logits = model.lm_head(model.backbone(corrupted)[chosen])  # the 4,107-way head on the chosen tokens only
        loss = F.cross_entropy(logits, target[chosen])
        update(model, optimizer, sched, loss, f"mlm step {step + 1}/{steps}", step % 100 == 0 or step == steps - 1)
    return model.eval()


def save_mlm(model: NTForMaskedLM, out: Path) -> Path:
    tensors = {lm_hf_name(k): v for k, v in model.state_dict().items()}
    tensors["esm.embeddings.position_embeddings.weight"] = torch.zeros(model.config.max_positions, HIDDEN)
    config = nt_config_to_hf(model.config) | {"nttracks_demo": _provenance("masked LM")}
    return save_checkpoint(out, config, tensors)


def _provenance(what: str) -> dict:
    return {"what": f"nttracks demo {what}, trained by scripts/train_demo_models.py on the demo genome",
            "seed": SEED, "held_out": HELD_OUT, "demo_version": demo.DEMO_VERSION}


# --- 2. the element model -------------------------------------------------------------------------


def positive_weights(truth: dict[str, np.ndarray], chroms: list[str]) -> torch.Tensor:
    """(features,) weight of a positive base in each class's loss: sqrt(negatives / positives), clipped."""
    positives = sum(truth[c].sum(axis=1, dtype=np.int64) for c in chroms)
    total = sum(truth[c].shape[1] for c in chroms)
    ratio = (total - positives) / np.maximum(positives, 1)
    return torch.from_numpy(np.clip(np.sqrt(ratio), 1.0, MAX_POS_WEIGHT).astype(np.float32))


def train_segment_nt(lm: NTForMaskedLM, sampler: Windows, steps: int, gen: torch.Generator,
                     pos_weight: torch.Tensor) -> SegmentNT:
    config = lm.config.with_(rope_scaling=TRAINING_RESCALING, rope_long_context=TRAINING_TOKENS)
    model = SegmentNT(config, FEATURES)
    init_weights(model, gen)
    model.esm.load_state_dict(lm.backbone.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=SEG_LR, weight_decay=0.01)
    sched = schedule(optimizer, steps, max(1, steps // 20))
    model.train()
    for step in range(steps):
        codes, truth = sampler.draw(SEG_BATCH, centred=CENTRED)
        logits = model.segment_logits(tokenize_acgt(codes, V2))
        diff = logits[..., 1] - logits[..., 0]  # (batch, length, features)
        target = truth.transpose(1, 2).float()
        # per-class mean, then the mean over classes: rare classes (6-bp splice sites) weigh as much as genes
        loss = F.binary_cross_entropy_with_logits(diff, target, reduction="none", pos_weight=pos_weight)
        loss = loss.mean(dim=(0, 1)).mean()
        update(model, optimizer, sched, loss, f"segment_nt step {step + 1}/{steps}",
               step % 100 == 0 or step == steps - 1)
    return model.eval()


def save_segment_nt(model: SegmentNT, out: Path) -> Path:
    tensors = {segment_nt_hf_name(k): v for k, v in model.state_dict().items()}
    tensors["esm.embeddings.position_embeddings.weight"] = torch.zeros(model.config.max_positions, HIDDEN)
    config = nt_config_to_hf(model.config) | {
        "architectures": ["SegmentNT"],
        "features": list(FEATURES),
        "num_layers_head": 2,
        "rescaling_factor": TRAINING_RESCALING,
        "nttracks_demo": _provenance("SegmentNT-architecture element model"),
    }
    return save_checkpoint(out, config, tensors)


@torch.no_grad()
def stitched(model, seq: bytes, window: int = WINDOW, overlap: int = EVAL_OVERLAP) -> tuple[np.ndarray, np.ndarray]:
    """(channels, length) outputs of ``model`` (codes -> (batch, window, channels)) over one chromosome's
    N-free contigs, windows every ``window - overlap`` bp on the 6-mer grid of each contig, stitched with
    nttracks' taper; and the (length,) mask of the bases scored."""
    codes = encode(seq)
    weights = window_weights(np, window, "taper")
    total = weight = None
    step = window - overlap
    for a, b in contigs(seq, window):
        starts = list(range(a, b - window + 1, step))
        if starts[-1] + window < b:
            starts.append(a + (b - a - window) // 6 * 6)
        for i in range(0, len(starts), 32):
            chunk = starts[i : i + 32]
            out = model(torch.from_numpy(np.stack([codes[s : s + window] for s in chunk]))).numpy()
            if total is None:
                total = np.zeros((len(codes), out.shape[-1]), dtype=np.float64)
                weight = np.zeros(len(codes), dtype=np.float64)
            for s, values in zip(chunk, out, strict=True):
                overlap_add(total[s : s + window], weight[s : s + window], values, weights)
    scored = weight > 0
    total[scored] /= weight[scored, None]
    return total.T.astype(np.float32), scored


def held_out_elements(model: SegmentNT, seq: bytes, truth: np.ndarray) -> dict[str, dict]:
    """Per-class metrics on the held-out chromosome, stitched as the demo config tiles it."""
    probs, scored = stitched(model, seq)
    result = {}
    for i, feature in enumerate(FEATURES):
        s = score(probs[i, scored], truth[i, scored].astype(bool))
        result[feature] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(s).items()}
    return result


def held_out_constraint(lm: NTForMaskedLM, seq: bytes, elements: list[demo.Element]) -> dict[str, float]:
    """Mean constraint (bits; every token predicted while masked, k = 4 as the demo config runs it) on the
    planted motif sites of the held-out chromosome, on its background, and their difference."""
    geometry = Geometry(window=MLM_WINDOW, multiple=6, min_length=6, grid=6, resolution=1)
    tracks = MaskedLMTracks(lm, geometry, channels=("constraint",), masking="every_k", k=4).eval()
    values, scored = stitched(tracks, seq, MLM_WINDOW, MLM_OVERLAP)
    motifs = planted_motif_sites(seq, elements) & scored
    background = background_bases(len(seq), elements) & scored
    on, off = float(values[0, motifs].mean()), float(values[0, background].mean())
    return {"motif_bases": int(motifs.sum()), "background_bases": int(background.sum()),
            "motif_bits": round(on, 4), "background_bits": round(off, 4), "margin_bits": round(on - off, 4)}


# --- 3. the enhancer model ------------------------------------------------------------------------


def activity_windows(seqs, elements, chroms, rng) -> list[tuple[str, int, str]]:
    """(chrom, start, split) of 249-bp windows: tiled across each planted enhancer (25-bp steps) and twice
    as many at random N-free places; chr2's go to validation and test alternately."""
    out = []
    for c in chroms:
        places = contigs(seqs[c], ENH_WINDOW)
        planted = [e for e in elements if e.chrom == c and e.name.startswith("enhancer_")]
        tiled = []
        for e in planted:
            for s in range(e.start - ENH_WINDOW // 2, e.end - ENH_WINDOW // 2, 25):
                if any(a <= s and s + ENH_WINDOW <= b for a, b in places):
                    tiled.append(s)
        lengths = np.array([b - a - ENH_WINDOW + 1 for a, b in places], dtype=np.float64)
        background = []
        for _ in range(2 * len(tiled)):
            k = rng.choice(len(places), p=lengths / lengths.sum())
            a, b = places[k]
            background.append(a + int(rng.integers(0, b - a - ENH_WINDOW + 1)))
        for i, s in enumerate(sorted(tiled + background)):
            split = "train" if c != HELD_OUT else ("validation" if i % 2 == 0 else "test")
            out.append((c, s, split))
    return out


def train_enhancer(seqs, elements, base: Path, out: Path, epochs: int, rng) -> dict:
    windows = activity_windows(seqs, elements, list(seqs), rng)
    rows, parts = [], {"train": ([], [], []), "validation": ([], [], []), "test": ([], [], [])}
    for i, (c, s, split) in enumerate(windows):
        window = seqs[c][s : s + ENH_WINDOW]
        dev, hk = enhancer_activities(window, rng)
        name = f"demo_enh_{i + 1}"
        rows.append(f"{name}\t{c}\t{s}\t{s + ENH_WINDOW}\t{split}\t{dev:.4f}\t{hk:.4f}")
        names, codes, values = parts[split]
        names.append(name)
        codes.append(encode(window))
        values.append((round(dev, 4), round(hk, 4)))
    table = out / ACTIVITY_TABLE
    table.write_text("ID\tchrom\tstart\tend\tsplit\tDev_log2_enrichment\tHk_log2_enrichment\n" + "\n".join(rows) + "\n")
    data = {k: ActivityData(tuple(n), tuple(c), np.asarray(v, dtype=np.float32), ACTIVITY_TABLE)
            for k, (n, c, v) in parts.items()}
    settings = FinetuneSettings(base=str(base), adapter="full", epochs=epochs, batch_size=32, lr=1e-3,
                                warmup=20, patience=3, seed=SEED)
    result = finetune(data["train"], data["validation"], data["test"], out / "enhancer", settings)
    # name the base by its shipped checkpoint name, not this run's directory
    config_path = out / "enhancer" / "config.json"
    config = json.loads(config_path.read_text())
    config["base_checkpoint"] = config["training"]["settings"]["base"] = "demo-nt"
    config["nttracks_demo"] = _provenance("enhancer-activity model")
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return {"windows": {k: len(v[0]) for k, v in parts.items()},
            "test_pearson": {"developmental": round(result.test_r[0], 4), "housekeeping": round(result.test_r[1], 4)}}


def training_data() -> tuple[dict[str, bytes], list[demo.Element], list[str], dict[str, np.ndarray]]:
    """(sequences, annotation, training chromosomes, per-chromosome truth) of the demo genome and the
    EXTRA_GENOMES other draws of its generator."""
    seqs, elements = demo.generate()
    for i in range(1, EXTRA_GENOMES + 1):
        more, annotation = demo.generate(seed=SEED + i)
        seqs |= {f"s{i}_{c}": seq for c, seq in more.items()}
        elements += [demo.Element(f"s{i}_{e.chrom}", e.start, e.end, e.name, e.strand, e.id) for e in annotation]
    train_chroms = [c for c in seqs if c != HELD_OUT]
    truth = {c: labels(len(seqs[c]), [e for e in elements if e.chrom == c]) for c in seqs}
    return seqs, elements, train_chroms, truth


def centres(elements: list[demo.Element], chroms: list[str], classes: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(chrom, midpoint, class) of the elements of ``classes`` on ``chroms``: where centred windows are drawn."""
    wanted = set(chroms)
    return [(e.chrom, (e.start + e.end) // 2, e.name) for e in elements if e.chrom in wanted and e.name in classes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "nttracks" / "data" / "demo_models")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the training steps (short checks)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    gen = torch.Generator().manual_seed(SEED)
    seqs, elements, train_chroms, truth = training_data()
    out = args.out
    for name in ("nt", "segment_nt", "enhancer"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t0 = time.perf_counter()
    mlm_sampler = Windows(seqs, None, train_chroms, rng, window=MLM_WINDOW,
                          centres=centres(elements, train_chroms, MLM_CENTRE_CLASSES))
    lm = train_mlm(mlm_sampler, max(1, round(MLM_STEPS * args.scale)), gen)
    save_mlm(lm, out / "nt")
    timings["nt"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    seg_sampler = Windows(seqs, truth, train_chroms, rng, centres=centres(elements, train_chroms, CENTRE_CLASSES))
    seg = train_segment_nt(lm, seg_sampler, max(1, round(SEG_STEPS * args.scale)), gen,
                           positive_weights(truth, train_chroms))
    save_segment_nt(seg, out / "segment_nt")
    timings["segment_nt"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    enhancer = train_enhancer(seqs, elements, out / "nt", out, max(1, round(ENH_EPOCHS * args.scale)), rng)
    timings["enhancer"] = time.perf_counter() - t0

    metrics = held_out_elements(seg, seqs[HELD_OUT], truth[HELD_OUT])
    constraint = held_out_constraint(lm, seqs[HELD_OUT], [e for e in elements if e.chrom == HELD_OUT])
    report = {"held_out": HELD_OUT, "elements": metrics, "constraint": constraint, "enhancer": enhancer,
              "seconds": {k: round(v, 1) for k, v in timings.items()}, "threads": THREADS}
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    for p in out.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    log(f"held-out {HELD_OUT}: feature auroc auprc mcc@0.5 mcc@best")
    for feature, m in metrics.items():
        log(f"  {feature:28s} {m['auroc']:.3f} {m['auprc']:.3f} {m['mcc_05']:.3f} {m['mcc_best']:.3f}")
    log(f"constraint on planted motifs {constraint['motif_bits']} bits vs background "
        f"{constraint['background_bits']}: margin {constraint['margin_bits']}")
    log(f"enhancer test pearson {enhancer['test_pearson']}; seconds {report['seconds']}")


if __name__ == "__main__":
    main()
