"""Peak host memory of a genome-scale run: 50 Mbp, 14 per-base tracks, the whole pipeline.

    python benchmarks/bench_memory.py                 # 50 Mbp in two chromosomes, CPU
    python benchmarks/bench_memory.py --mbp 10        # quicker

A plug-in family (registered here, as any plug-in is) with a cheap 14-channel model whose values vary
at every base (the worst case for the bigWig writers: fixedStep sections, no long runs) runs through
``run_genome`` with the real tiling, shards, stitching, shard files, writer processes, hub and
publish. A sampler thread sums the resident memory (VmRSS) of this process and every child (the
bigWig writers) every 50 ms; the peak of that sum is the figure, beside ru_maxrss of each.
Must hold (issue 9): under 8 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

CHANNELS = tuple(f"c{i:02d}" for i in range(14))


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(c) for c in fh.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in children(k)]


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            total = rss_kib(me) + sum(rss_kib(c) for c in children(me))
            self.peak_kib = max(self.peak_kib, total)
            time.sleep(0.05)


def synthetic_fasta(path: Path, mbp: float, seed: int = 0) -> None:
    """Two chromosomes, random sequence with a few N gaps, written in 1-Mbp pieces (bounded memory)."""
    rng = np.random.default_rng(seed)
    acgt = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as fh:
        for name, share in (("chrA", 0.6), ("chrB", 0.4)):
            fh.write(f">{name}\n".encode())
            n = int(mbp * 1e6 * share)
            for lo in range(0, n, 1_000_020):  # a multiple of 60: whole lines
                seq = acgt[rng.integers(0, 4, size=min(1_000_020, n - lo))]
                if rng.random() < 0.2:
                    seq[100 : 100 + int(rng.integers(100, 5000))] = ord("N")
                lines = [seq[i : i + 60].tobytes() for i in range(0, len(seq), 60)]
                fh.write(b"\n".join(lines) + b"\n")


def register_family() -> None:
    from nttracks.bases import Geometry
    from nttracks.families import Family, LoadedModel, WindowSettings, register

    class Fourteen(torch.nn.Module):
        channels = CHANNELS

        def __init__(self, geometry: Geometry) -> None:
            super().__init__()
            self.geometry = geometry

        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            x = codes.float()[..., None] / 3  # 0..1 by base
            k = torch.arange(1, 15, dtype=torch.float32) / 14
            return (x * k + (1 - k) * 0.25).clamp(0, 1)

    @dataclass(frozen=True)
    class FourteenSettings(WindowSettings):
        pass

    class FourteenFamily(Family):
        name = "fourteen"
        settings = FourteenSettings
        catalog_entry: ClassVar[Any] = {
            "short_label": "Fourteen",
            "long_label": "Benchmark family: 14 per-base tracks",
            "container": "composite",
            "group": "nt_predictions",
            "tracks": [
                {"channel": c, "suffix": c, "short_label": c, "long_label": f"Benchmark track {c}",
                 "color": "0,0,0", "view_limits": [0, 1], "autoscale": False, "quantum": 255,
                 "height": [32, 16, 8], "visibility": "full", "priority": i + 1}
                for i, c in enumerate(CHANNELS)
            ],
        }
        html_template = "<h2>Description</h2>\n<p>$track_long_label on $genome.</p>\n"

        def geometry(self, settings: FourteenSettings) -> Geometry:
            return Geometry(window=6000, multiple=6, min_length=60, grid=6)

        def channels(self, settings: FourteenSettings) -> tuple[str, ...]:
            return CHANNELS

        def load(self, settings: FourteenSettings, geometry: Geometry, device: Any) -> LoadedModel:
            return LoadedModel(Fourteen(geometry).to(device), "none", "14-channel benchmark model")

    register(FourteenFamily())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbp", type=float, default=50.0)
    args = ap.parse_args()
    from nttracks.config import parse_config
    from nttracks.planning import RunRequest
    from nttracks.runs import run_genome

    register_family()
    scratch = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    try:
        fasta = scratch / "big.fa"
        synthetic_fasta(fasta, args.mbp)
        config = parse_config({"families": {"fourteen": {"window": 6000, "overlap": 600, "batch_size": 16}}})
        sampler = Sampler()
        sampler.start()
        t0 = time.perf_counter()
        result = run_genome(RunRequest(genome=fasta, config=config, out=scratch / "hub", device="cpu"))
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        bases = result.manifest["families"]["fourteen"]["bases_scored"]
        hub_bytes = sum(p.stat().st_size for p in (scratch / "hub").rglob("*") if p.is_file())
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"{bases:,} bases scored, {len(CHANNELS)} tracks, {seconds:.1f} s ({bases / seconds:,.0f} bases/s); "
              f"hub {hub_bytes / 2**20:,.0f} MiB")
        print(f"peak resident memory, this process and its writers together: {sampler.peak_kib / 2**20:.2f} GiB "
              f"(ru_maxrss: this process {me / 2**20:.2f} GiB, largest writer {kids / 2**20:.2f} GiB); limit 8 GiB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
