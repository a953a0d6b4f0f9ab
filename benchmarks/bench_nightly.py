"""Nightly reruns: how long a rerun takes when nothing changed, and when one chromosome changed.

    python benchmarks/bench_nightly.py                 # demo genome, the demo config's families (its models)
    python benchmarks/bench_nightly.py --toy           # the toy family only (seconds, not minutes)

Each number is the wall time of ``nttracks genome demo --out HUB`` as a subprocess (the way cron runs
it), so start-up (Python, torch import, opening and fingerprinting the genome) is in every one:

- first:      a new hub, every shard scored;
- unchanged:  the same command again: nothing to do (no inference, no file written);
- start-up:   ``nttracks genome demo --dry-run`` (imports, genome, plan; no fingerprints, no run);
- one chrom:  a copy of the demo FASTA with one base of chr3 changed, built first, then with a
              second base changed: only chr3's shards are scored again.

The goal of issue 15: unchanged < 5% of first + start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nttracks.cli", *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def flip(fasta: Path, chrom: str, offset: int) -> None:
    """Change one base ``offset`` bases into ``chrom``'s sequence (same length, so the index holds)."""
    lines = fasta.read_text().split("\n")
    start = lines.index(f">{chrom}") + 1
    seen = 0
    for i in range(start, len(lines)):
        if seen + len(lines[i]) > offset:
            j = offset - seen
            base = lines[i][j]
            lines[i] = lines[i][:j] + ("G" if base in "ATat" else "A") + lines[i][j + 1 :]
            break
        seen += len(lines[i])
    fasta.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toy", action="store_true", help="the toy family only")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NTTRACKS_CACHE": str(tmp / "cache")}
    try:
        config: list[str] = []
        if opts.toy:
            (tmp / "toy.yaml").write_text("families:\n  toy: {window: 1200, overlap: 600, batch_size: 16}\n")
            config = ["--config", str(tmp / "toy.yaml")]
        timed(["genome", "demo", "--dry-run", *config], env)  # generates the demo genome and models: not timed
        hub = tmp / "hub"
        first = timed(["genome", "demo", "--out", str(hub), "--quiet", *config], env)
        unchanged = timed(["genome", "demo", "--out", str(hub), "--quiet", *config], env)
        startup = min(timed(["genome", "demo", "--dry-run", *config], env) for _ in range(2))
        demo_fa = next((tmp / "cache").rglob("demo.fa"))
        fasta = tmp / "mine.fa"
        shutil.copy(demo_fa, fasta)
        flip(fasta, "chr3", 100)
        other = tmp / "hub2"
        cfg = config or ["--config", str(ROOT / "configs" / "demo.yaml")]
        before = timed(["genome", "--fasta", str(fasta), "--out", str(other), "--quiet", *cfg], env)
        flip(fasta, "chr3", 900)
        one = timed(["genome", "--fasta", str(fasta), "--out", str(other), "--quiet", *cfg], env)
        record = json.loads((tmp / ".hub2.nttracks-work" / "last-run.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"families: {'toy' if opts.toy else 'demo config'}; {os.cpu_count()} CPUs")
    print(f"first run          {first:8.2f} s")
    print(f"unchanged rerun    {unchanged:8.2f} s")
    print(f"start-up (dry run) {startup:8.2f} s")
    print(f"5% of first + start-up = {0.05 * first + startup:.2f} s: unchanged rerun "
          f"{'within' if unchanged <= 0.05 * first + startup else 'OVER'}")
    print(f"FASTA copy, first  {before:8.2f} s; one base of chr3 changed: {one:8.2f} s "
          f"({record['computed']} shards computed, {record['reused']} reused)")


if __name__ == "__main__":
    main()
