#!/usr/bin/env python
"""Train the demo models shipped in nttracks/data/demo_models/ (seeded, CPU, deterministic).

On the demo genome with chr2 held out (trained on chr1 and chr3, and on EXTRA_GENOMES more draws of the
demo generator with other seeds):

1. nt/          a tiny NT-v2-architecture masked LM (15% of 6-mer tokens corrupted BERT-style);
2. segment_nt/  a SegmentNT-architecture model: that backbone plus a U-Net head, fine-tuned (every weight)
                on the planted annotation as SegmentNT's 14 classes (per-nucleotide binary cross-entropy);
3. enhancer/    an enhancer head (``nttracks.finetune.finetune``, adapter full) on 249-bp windows whose
                activities ``nttracks.demo_models.enhancer_activities`` assigns (written to
                enhancer_activity.tsv, DeepSTARR's column names; validation and test windows from chr2).

Rerunning it reproduces the weights byte for byte (same torch build, same thread count). It prints the
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
from nttracks.bases import encode  # noqa: E402
from nttracks.demo_models import ACTIVITY_TABLE, HELD_OUT, enhancer_activities  # noqa: E402
from nttracks.finetune import ActivityData, FinetuneSettings, finetune  # noqa: E402
from nttracks.metrics import score  # noqa: E402
from nttracks.models.loading import lm_hf_name, nt_config_to_hf, save_checkpoint, tiny_nt_config  # noqa: E402
from nttracks.models.nt import NTForMaskedLM, init_weights  # noqa: E402
from nttracks.models.segment_nt import (  # noqa: E402
    FEATURES,
    TRAINING_RESCALING,
    TRAINING_TOKENS,
    SegmentNT,
    segment_nt_hf_name,
)
from nttracks.models.tokenizer import V2, tokenize_acgt  # noqa: E402

SEED = 20240521
THREADS = 1
HIDDEN, LAYERS, HEADS = 64, 2, 4
WINDOW = 1200  # bp: 200 tokens, a multiple of 24 (SegmentNT's U-Net pools twice)
MLM_STEPS, MLM_BATCH, MLM_LR = 1000, 16, 2e-3
SEG_STEPS, SEG_BATCH, SEG_LR = 2000, 16, 1e-3
ENH_EPOCHS = 3
ENH_WINDOW = 249
# More draws of the demo generator (other seeds: other sequences, the same kinds of planted elements) join
# the demo genome's training chromosomes: 250 kb alone is memorized long before the 6-mer embeddings
# generalize. chr2 of the demo genome itself stays unseen.
EXTRA_GENOMES = 16


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
        self.centres = centres or []
        self.rng, self.window = rng, window

    def draw(self, n: int, centred: float = 0.0):
        starts = []
        for _ in range(n):
            if self.centres and self.rng.random() < centred:
                c, pos = self.centres[self.rng.integers(len(self.centres))]
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


# --- 1. the masked LM -----------------------------------------------------------------------------


def train_mlm(sampler: Windows, steps: int, gen: torch.Generator) -> NTForMaskedLM:
    config = tiny_nt_config("v2", hidden=HIDDEN, layers=LAYERS, heads=HEADS)
    model = NTForMaskedLM(config)
    init_weights(model, gen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=MLM_LR, weight_decay=0.01)
    sched = schedule(optimizer, steps, max(1, steps // 20))
    model.train()
    for step in range(steps):
        codes, _ = sampler.draw(MLM_BATCH)
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
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"mlm step {step + 1}/{steps} loss {loss.item():.3f}")
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


def train_segment_nt(lm: NTForMaskedLM, sampler: Windows, steps: int, gen: torch.Generator) -> SegmentNT:
    config = lm.config.with_(rope_scaling=TRAINING_RESCALING, rope_long_context=TRAINING_TOKENS)
    model = SegmentNT(config, FEATURES)
    init_weights(model, gen)
    model.esm.load_state_dict(lm.backbone.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=SEG_LR, weight_decay=0.01)
    sched = schedule(optimizer, steps, max(1, steps // 20))
    model.train()
    for step in range(steps):
        codes, truth = sampler.draw(SEG_BATCH, centred=0.6)
        logits = model.segment_logits(tokenize_acgt(codes, V2))
        diff = logits[..., 1] - logits[..., 0]  # (batch, length, features)
        target = truth.transpose(1, 2).float()
        # per-class mean, then the mean over classes: rare classes (6-bp splice sites) weigh as much as genes
        loss = F.binary_cross_entropy_with_logits(diff, target, reduction="none").mean(dim=(0, 1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"segment_nt step {step + 1}/{steps} loss {loss.item():.4f}")
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
def held_out_elements(model: SegmentNT, seq: bytes, truth: np.ndarray) -> dict[str, dict]:
    """Per-class metrics on the held-out chromosome: adjacent windows over its N-free contigs."""
    codes = encode(seq)
    probs = np.zeros((len(FEATURES), len(codes)), dtype=np.float32)
    scored = np.zeros(len(codes), dtype=bool)
    for a, b in contigs(seq, WINDOW):
        starts = list(range(a, b - WINDOW + 1, WINDOW))
        if starts[-1] + WINDOW < b:
            starts.append(b - WINDOW)
        for i in range(0, len(starts), 32):
            chunk = starts[i : i + 32]
            batch = torch.from_numpy(np.stack([codes[s : s + WINDOW] for s in chunk]))
            out = model(batch).numpy()
            for s, p in zip(chunk, out, strict=True):
                probs[:, s : s + WINDOW] = p.T
                scored[s : s + WINDOW] = True
    result = {}
    for i, feature in enumerate(FEATURES):
        s = score(probs[i, scored], truth[i, scored].astype(bool))
        result[feature] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(s).items()}
    return result


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
    seqs, elements = demo.generate()
    for i in range(1, EXTRA_GENOMES + 1):
        more, annotation = demo.generate(seed=SEED + i)
        seqs |= {f"s{i}_{c}": seq for c, seq in more.items()}
        elements += [demo.Element(f"s{i}_{e.chrom}", e.start, e.end, e.name, e.strand, e.id) for e in annotation]
    train_chroms = [c for c in seqs if c != HELD_OUT]
    truth = {c: labels(len(seqs[c]), [e for e in elements if e.chrom == c]) for c in seqs}
    out = args.out
    for name in ("nt", "segment_nt", "enhancer"):
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t0 = time.perf_counter()
    lm = train_mlm(Windows(seqs, None, train_chroms, rng), max(1, round(MLM_STEPS * args.scale)), gen)
    save_mlm(lm, out / "nt")
    timings["nt"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    genes = [(e.chrom, (e.start + e.end) // 2) for e in elements
             if e.chrom in train_chroms and e.name in ("exon", "intron", "promoter_Tissue_invariant",
                                                         "promoter_Tissue_specific", "polyA_signal")]
    seg_sampler = Windows(seqs, truth, train_chroms, rng, centres=genes)
    seg = train_segment_nt(lm, seg_sampler, max(1, round(SEG_STEPS * args.scale)), gen)
    save_segment_nt(seg, out / "segment_nt")
    timings["segment_nt"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    enhancer = train_enhancer(seqs, elements, out / "nt", out, max(1, round(ENH_EPOCHS * args.scale)), rng)
    timings["enhancer"] = time.perf_counter() - t0

    metrics = held_out_elements(seg, seqs[HELD_OUT], truth[HELD_OUT])
    report = {"held_out": HELD_OUT, "elements": metrics, "enhancer": enhancer,
              "seconds": {k: round(v, 1) for k, v in timings.items()}, "threads": THREADS}
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    for p in out.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    log(f"held-out {HELD_OUT}: feature auroc auprc mcc@0.5 mcc@best")
    for feature, m in metrics.items():
        log(f"  {feature:28s} {m['auroc']:.3f} {m['auprc']:.3f} {m['mcc_05']:.3f} {m['mcc_best']:.3f}")
    log(f"enhancer test pearson {enhancer['test_pearson']}; seconds {report['seconds']}")


if __name__ == "__main__":
    main()
