"""Variants/s of the batched variant scorer against a per-variant loop, same model, same VCF, in one run,
outputs compared.

    python benchmarks/bench_variants.py                              # demo genome and model, CPU, ~1 min
    python benchmarks/bench_variants.py --device cuda --variants 4000 --window 5994 --batch 64
    python benchmarks/bench_variants.py --checkpoint InstaDeepAI/nucleotide-transformer-v2-500m-multi-species \\
        --device cuda --window 5994 --batch 32 --hidden 0

The VCF is made here: SNVs (3 of every 4 records) and short indels at random positions of the demo genome's
chr1 and chr2, their REF read from the genome. The batched run is ``variants.score_vcf`` (windows shared by
alleles run once, ``--batch`` windows per forward pass through ``predict``); the loop scores each allele alone
(``score_sites`` on one site, batch size 1), as a script calling the model per variant would. Both runs use
the same loaded model; every score of the two is compared (exactly equal on the CPU, whose attention runs by
its plain formula; to float rounding on a GPU) and the ratio of their rates printed.
"""

from __future__ import annotations

import argparse
import csv
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nttracks.predict import resolve_device
from nttracks.registry import open_genome
from nttracks.variants import (
    SCORE_NAMES,
    ChromCodes,
    VariantSettings,
    load_variant_model,
    locate,
    score_sites,
    score_vcf,
)
from nttracks.vcf import ChromMapper, VcfReader


def make_vcf(path: Path, genome, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    contigs = [c for c in genome.contigs(["chr1", "chr2"]) if c.length > 3000]
    rows = []
    for i in range(n):
        c = contigs[int(rng.integers(0, len(contigs)))]
        p = int(rng.integers(c.start + 1000, c.end - 1000))
        codes = genome.codes(c.chrom, p, p + 4)
        ref = "ACGT"[codes[0]]
        if i % 4:
            alt = "ACGT"[(codes[0] + int(rng.integers(1, 4))) % 4]
        elif i % 8:
            alt = ref + "".join(rng.choice(list("ACGT"), 3))
        else:
            ref, alt = "".join("ACGT"[x] for x in codes), ref
        rows.append((c.chrom, p, f"{c.chrom}\t{p + 1}\tb{i}\t{ref}\t{alt}\t.\tPASS\t."))
    rows.sort(key=lambda r: (r[0], r[1]))
    path.write_text("\n".join(lines + [r[2] for r in rows]) + "\n")


def per_variant(vcf: Path, genome, model, settings: VariantSettings, device) -> list[dict[str, float]]:
    """The loop: each allele located and scored on its own (batch size 1, nothing shared)."""
    reader = VcfReader(vcf)
    mapper = ChromMapper(genome.chroms)
    codes = ChromCodes(genome)
    out = []
    for a in reader.alleles():
        site, _, _ = locate(a, mapper(a.chrom), codes, settings)
        if site is not None:
            out += score_sites(model, [site], codes, batch_size=1, device=device,
                               reverse_complement=settings.reverse_complement, llr=settings.llr)
    reader.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=400)
    parser.add_argument("--window", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reverse-complement", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    settings = VariantSettings(checkpoint=args.checkpoint, window=args.window, batch_size=args.batch,
                               reverse_complement=args.reverse_complement)
    model, label, _ = load_variant_model(settings, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with open_genome("demo") as genome, tempfile.TemporaryDirectory() as tmp:
        vcf = Path(tmp) / "bench.vcf"
        make_vcf(vcf, genome, args.variants)
        score_vcf(vcf, genome, Path(tmp) / "warm", settings, model=model, device=device)  # warm-up
        sync()
        t0 = time.perf_counter()
        result = score_vcf(vcf, genome, Path(tmp) / "batched", settings, model=model, device=device)
        sync()
        batched_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        loop = per_variant(vcf, genome, model, settings, device)
        sync()
        loop_s = time.perf_counter() - t0
        with open(result.tsv) as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["status"] == "scored"]
    assert len(rows) == len(loop), (len(rows), len(loop))
    worst = 0.0
    exact = True
    for row, single in zip(rows, loop, strict=True):
        for name in SCORE_NAMES:
            a, b = row[name], single[name]
            if a == "NA":
                assert math.isnan(b), (name, a, b)
                continue
            exact &= a == f"{b:.6g}"
            worst = max(worst, abs(float(a) - b) / max(abs(b), 1e-6))
    n = result.summary["alleles"]
    print(f"model: {label}; device {device}; {n} alleles ({len(rows)} scored), window {args.window} bp, "
          f"batch {args.batch}{', both strands' if args.reverse_complement else ''}")
    print(f"batched     {n / batched_s:10.1f} variants/s  ({batched_s:.2f} s)")
    print(f"per-variant {n / loop_s:10.1f} variants/s  ({loop_s:.2f} s)")
    print(f"speed-up    {loop_s / batched_s:10.1f}x")
    print(f"outputs: {'identical' if exact else 'DIFFERENT'} as written (6 significant digits); the written "
          f"values are within {worst:.1e} (relative) of the loop's unrounded ones")


if __name__ == "__main__":
    main()
