#!/usr/bin/env bash
# Wheels the GPU machine's image lacks (it has no network), for CPython 3.12 on x86-64 Linux, into .whl/
# (git-ignored). Carry them to the device run: carry [".whl"]. See benchmarks/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
python3 -m pip download -q --dest .whl --only-binary=:all: --no-deps \
  --python-version 3.12 --implementation cp --abi cp312 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  pyBigWig pyfaidx pybbi py2bit biopython platformdirs
ls -la .whl
