"""Run the nttracks CLI and SIGKILL it at a named point (for the crash tests in test_nightly.py).

    python tests/killpoint.py POINT N -- genome demo --out HUB ...

POINT is where the process kills itself the N-th time it gets there:
  shard    renaming a finished shard output into the cache (so its ``.part`` file is left behind):
           mid-inference, the other shards not scored yet
  bigwig   handing a shard file (or a region) to the bigWig writers: mid-write (the writer processes
           die with it)
  publish  renaming a file of the new hub into --out: mid-publish, part of the hub replaced
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main() -> None:
    point, n = sys.argv[1], int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1 :]
    out = Path(args[args.index("--out") + 1]).resolve()
    seen = [0]

    def reached() -> None:
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if point in ("shard", "publish"):
        replace = os.replace

        def patched(src: str | Path, dst: str | Path, **kw: object) -> None:
            dst_path = Path(dst).resolve()
            if point == "shard" and dst_path.suffix == ".shard":
                reached()
            elif point == "publish" and dst_path.is_relative_to(out):
                reached()
            replace(src, dst, **kw)  # type: ignore[arg-type]

        os.replace = patched  # type: ignore[assignment]
    elif point == "bigwig":
        from nttracks.bigwig import BigWigWriters

        add, add_shard = BigWigWriters.add, BigWigWriters.add_shard

        def adding(self: BigWigWriters, *a: object) -> None:
            reached()
            add(self, *a)  # type: ignore[arg-type]

        def adding_shard(self: BigWigWriters, *a: object) -> None:
            reached()
            add_shard(self, *a)  # type: ignore[arg-type]

        BigWigWriters.add = adding  # type: ignore[method-assign]
        BigWigWriters.add_shard = adding_shard  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point!r}")
    from nttracks.cli import main as cli

    cli(args)


if __name__ == "__main__":
    main()
