"""End-to-end throughput: ``run_genome`` (toy family) vs a naive per-window pipeline written here.

    python benchmarks/bench_pipeline.py                      # demo genome (450 kbp), window 1200, batch 16
    python benchmarks/bench_pipeline.py --mbp 20 --batch 64  # a synthetic 20 Mbp FASTA instead of demo
    python benchmarks/bench_pipeline.py --window 6000 --skip-naive

nttracks, timed three ways on the same plan (the toy base-identity model: 5 channels, CPU):
- full:     ``run_genome`` (predict -> stitch -> quantize -> BigWigWriters -> hub, 2bit, validation);
- no-write: the same with ``runs.BigWigWriters`` replaced by a sink that only counts bases (and the
            hub validator, which opens the bigWigs, skipped): predict + stitch + hub files;
- predict:  ``predict_windows`` alone over the plan, outputs copied to numpy.
so roughly stitch ~ no-write - predict - hub overhead, write ~ full - no-write. Each is the best of
``--repeats`` runs (the demo genome is generated into the cache first, timed apart). Writer processes run
concurrently with predict/stitch, so the split is approximate.

naive: one python loop over the plan's windows, the model called on one window at a time (batch 1),
taper-weighted accumulation into whole-chromosome arrays, then divide, quantize (the catalog's
quantum per channel) and write each channel's bigWig with pyBigWig, one file after the other, scored contigs only.

Check: every bigWig of the two runs is read back whole with pyBigWig and compared (max abs diff, NaN
where unscored must agree).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

# Keep module-level imports light: BigWigWriters spawns processes that re-import this script.


class NullWriters:
    """Stands in for BigWigWriters: counts bases, writes empty files (nothing is encoded)."""

    def __init__(self, paths, chrom_sizes, **_kwargs) -> None:
        self.paths = [Path(p) for p in paths]
        self.bases = 0

    def add(self, chrom, start, values) -> None:
        self.bases += values.shape[0]

    def add_shard(self, path) -> None:
        from nttracks.shards import read_shard_header

        self.bases += read_shard_header(path).bases

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        for p in self.paths:
            p.touch()


def synthetic_fasta(path: Path, mbp: float, seed: int = 0) -> None:
    """A FASTA of random ACGT (some lowercase), 4 chromosomes with a few N blocks."""
    rng = np.random.default_rng(seed)
    total = int(mbp * 1e6)
    lut = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    with path.open("wb") as fh:
        for i, n in enumerate(np.full(4, total // 4)):
            seq = lut[rng.integers(0, 8, n)]
            for s in rng.integers(0, n - 5000, 3):
                seq[s : s + int(rng.integers(100, 5000))] = ord("N")
            fh.write(f">chr{i + 1}\n".encode())
            body = seq[: n // 60 * 60].reshape(-1, 60)
            fh.write(b"\n".join(row.tobytes() for row in body) + b"\n")
            if n % 60:
                fh.write(seq[n // 60 * 60 :].tobytes() + b"\n")


def naive_pipeline(plan, genome, model, out_dir: Path, quanta: list[float]) -> float:
    """Per-window loop, batch 1, whole-chromosome accumulation, sequential pyBigWig writes."""
    import pyBigWig
    import torch

    from nttracks.stitch import window_weights

    t0 = time.perf_counter()
    channels = len(model.channels)
    sizes = list(genome.chrom_sizes.items())
    acc: dict[str, np.ndarray] = {}
    wsum: dict[str, np.ndarray] = {}
    codes: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for i in range(plan.n_windows):
            chrom = plan.chroms[plan.chrom[i]]
            if chrom not in acc:
                n = genome.chrom_sizes[chrom]
                acc[chrom] = np.zeros((n, channels), dtype=np.float32)
                wsum[chrom] = np.zeros(n, dtype=np.float32)
                codes[chrom] = genome.codes(chrom)
            s, e = int(plan.start[i]), int(plan.end[i])
            pred = model(torch.from_numpy(codes[chrom][s:e].copy()).unsqueeze(0))[0].numpy()
            w = window_weights(np, e - s, "taper")
            acc[chrom][s:e] += w[:, None] * pred
            wsum[chrom][s:e] += w
    values = {}
    q = np.asarray(quanta, dtype=np.float32)
    for chrom in acc:
        with np.errstate(invalid="ignore", divide="ignore"):
            v = acc[chrom] / wsum[chrom][:, None]
        values[chrom] = np.rint(v / q) * q
    for j, name in enumerate(model.channels):
        bw = pyBigWig.open(str(out_dir / f"{name}.bw"), "w")
        bw.addHeader(sizes, maxZooms=10)
        for c in range(len(plan.contig_start)):
            chrom = plan.chroms[plan.contig_chrom[c]]
            s, e = int(plan.contig_start[c]), int(plan.scored_end[c])
            if e > s:
                bw.addEntries(chrom, s, values=np.ascontiguousarray(values[chrom][s:e, j]), span=1, step=1)
        bw.close()
    return time.perf_counter() - t0


def compare(nt_files: list[Path], naive_files: list[Path]) -> float:
    import pyBigWig

    worst = 0.0
    for a, b in zip(nt_files, naive_files, strict=True):
        fa, fb = pyBigWig.open(str(a)), pyBigWig.open(str(b))
        for chrom, n in fa.chroms().items():
            va, vb = fa.values(chrom, 0, n, numpy=True), fb.values(chrom, 0, n, numpy=True)
            if not np.array_equal(np.isnan(va), np.isnan(vb)):
                return float("inf")
            ok = ~np.isnan(va)
            if ok.any():
                worst = max(worst, float(np.abs(va[ok] - vb[ok]).max()))
        fa.close()
        fb.close()
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=None, help="synthetic FASTA of this size instead of demo")
    ap.add_argument("--window", type=int, default=1200, help="toy window (multiple of 24)")
    ap.add_argument("--batch", type=int, default=16, help="nttracks batch size")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (best is shown)")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()

    import torch

    import nttracks.runs as runs
    from nttracks.config import parse_config
    from nttracks.models.toy import BaseIdentityModel
    from nttracks.planning import RunRequest, plan_run
    from nttracks.predict import predict_windows
    from nttracks.registry import open_genome
    from nttracks.runs import run_genome

    torch.set_num_threads(torch.get_num_threads())
    scratch = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        genome_arg: str | Path = "demo"
        if args.mbp is not None:
            genome_arg = scratch / "synthetic.fa"
            synthetic_fasta(genome_arg, args.mbp)
        config = parse_config(
            {"families": {"toy": {"window": args.window, "overlap": args.window // 2, "batch_size": args.batch}}},
            source="<bench>",
        )
        if args.mbp is None:  # the demo genome's generation, timed on its own (tests must not time it)
            from nttracks import demo

            t0 = time.perf_counter()
            demo.generate()
            print(f"demo genome generated in memory in {time.perf_counter() - t0:.2f} s (target: < 1 s)")
        open_genome(genome_arg)  # demo: generated into the cache on first use, not timed
        request = RunRequest(genome=genome_arg, config=config, out=scratch / "hub", device="cpu")
        run = plan_run(request)
        fam = run.families[0]
        plan, genome = fam.plan, run.genome
        bases = plan.bases_scored
        print(
            f"genome {run.genome_name}: {sum(run.chrom_sizes.values()):,} bp, {bases:,} scored, {plan.n_windows:,} "
            f"windows of {args.window} (stride {plan.stride}), toy model 5 channels, torch threads "
            f"{torch.get_num_threads()}, batch {args.batch}"
        )

        def best(fn):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return min(times)

        model = BaseIdentityModel(fam.geometry)

        def predict_only() -> None:
            cpu = torch.device("cpu")
            for _row, out in predict_windows(model, plan, genome.codes, batch_size=args.batch, device=cpu):
                out.numpy()

        t_predict = best(predict_only)

        def cold(req: RunRequest) -> None:
            """A first run: the hub and its work directory (the shard cache) removed before, so every shard
            is scored again (a rerun of an unchanged hub does nothing at all)."""
            from nttracks.hubdir import sibling

            for path in (Path(req.out), sibling(Path(req.out), "work")):
                shutil.rmtree(path, ignore_errors=True)
            run_genome(req)

        real_writers, real_check = runs.BigWigWriters, runs.check_before_publish
        runs.BigWigWriters, runs.check_before_publish = NullWriters, lambda _d: None
        try:
            nowrite = RunRequest(genome=genome_arg, config=config, out=scratch / "hub-nowrite", device="cpu")
            t_nowrite = best(lambda: cold(nowrite))
        finally:
            runs.BigWigWriters, runs.check_before_publish = real_writers, real_check

        t_full = best(lambda: cold(request))
        nt_files = sorted((scratch / "hub").rglob("*.bw"))

        rows = [
            ("nttracks run_genome (full)", t_full),
            ("  no-write sink (predict+stitch+hub)", t_nowrite),
            ("  predict_windows only", t_predict),
        ]
        diff = None
        if not args.skip_naive:
            from nttracks.hubs import load_catalog

            catalog = load_catalog()
            quanta = [catalog.track("toy", ch).quantum for ch in model.channels]
            naive_dir = scratch / "naive"
            naive_dir.mkdir()
            t_naive = best(lambda: naive_pipeline(plan, genome, model, naive_dir, quanta))
            rows.append(("naive pipeline (batch 1, whole chrom)", t_naive))
            naive_files = [naive_dir / f"{ch}.bw" for ch in model.channels]
            by_name = {p.stem.removeprefix("toy_"): p for p in nt_files}
            diff = compare([by_name[ch] for ch in model.channels], naive_files)

        print(f"{'run':40s} {'seconds':>8s} {'kbp/s':>9s} {'vs naive':>9s}")
        ref = rows[-1][1] if not args.skip_naive else None
        for name, t in rows:
            ratio = f"{ref / t:8.2f}x" if ref else f"{'-':>9s}"
            print(f"{name:40s} {t:8.2f} {bases / t / 1e3:9.1f} {ratio}")
        stitch = max(t_nowrite - t_predict, 0.0)
        print(
            f"approx split of the full run: predict {t_predict:.2f} s, stitch+quantize+hub {stitch:.2f} s, "
            f"bigWig write (not hidden behind predict/stitch) {max(t_full - t_nowrite, 0.0):.2f} s"
        )
        if diff is not None:
            same_nan = diff != float("inf")
            print(f"bigWig outputs nttracks vs naive: max |diff| {diff:.2e} (NaN pattern equal: {same_nan})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
