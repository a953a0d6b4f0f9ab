"""Fine-tuning the enhancer head on a synthetic task with a known answer, on the CPU.

    python benchmarks/bench_finetune.py                        # the issue's check: r >= 0.8 for both activities
    python benchmarks/bench_finetune.py --sequences 600 --epochs 4 --min-r 0.5   # the test's short version

The task (``nttracks.finetune.synthetic_activity_data``): random 249-bp sequences with 0..3 planted 12-bp sites
of each of two motif sets; developmental activity = the number of sites of the first set, housekeeping = of
the second, each plus Gaussian noise (sd ``--noise``). With noise 0.3 the best possible Pearson r is about
0.97. A tiny random NT-v2 backbone (seeded) is fine-tuned with the 2 x 50-bin head (adapter ``full``: a random
backbone has no features for IA3 to rescale) and the held-out test r of each activity is printed with the
training time. Exits 1 when an r is below ``--min-r``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from nttracks.finetune import FinetuneSettings, finetune, split_data, synthetic_activity_data
from nttracks.models.loading import save_random_nt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=5000)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--adapter", default="full", choices=("full", "ia3", "head"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-r", type=float, default=0.8)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    data = synthetic_activity_data(args.sequences, seed=args.seed, noise=args.noise)
    train, val, test = split_data(data, val_fraction=0.1, test_fraction=0.2, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = save_random_nt(Path(tmp) / "base", hidden=args.hidden, layers=args.layers, heads=4, seed=args.seed)
        settings = FinetuneSettings(base=str(base), adapter=args.adapter, epochs=args.epochs,
                                    batch_size=args.batch_size, lr=args.lr, patience=args.epochs, seed=args.seed)
        start = time.perf_counter()
        result = finetune(train, val, test, Path(tmp) / "head", settings)
        seconds = time.perf_counter() - start
    print(f"synthetic task: {len(train)} train / {len(val)} validation / {len(test)} test sequences, noise sd "
          f"{args.noise}; backbone {args.layers} x {args.hidden} (random, seed {args.seed}), adapter {args.adapter}, "
          f"{result.epochs} epochs, {args.threads} thread(s)")
    print(f"training time: {seconds:.1f} s")
    for name, r in zip(("developmental", "housekeeping"), result.test_r, strict=True):
        print(f"test Pearson r {name}: {r:.3f}")
    ok = min(result.test_r) >= args.min_r
    print("PASS" if ok else f"FAIL: an r is below {args.min_r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
