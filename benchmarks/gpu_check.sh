#!/usr/bin/env bash
# The device check: one call on a lent GPU machine, at most 8 minutes, writing its log and figures to $OUT.
#
#   bash scripts/device_wheels.sh            # here, once: the wheels the GPU image lacks, into .whl/
#   device run: bash benchmarks/gpu_check.sh   (carry: [".whl"], timeout_s: 540)
#
# 1. the `gpu` tests (CuPy stitching equals NumPy; bf16 within its stated bound of fp32; the demo on the GPU
#    equals the CPU run within that bound), 2. bench_genome.py at the real NT-v2-500M / SegmentNT shapes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NTTRACKS_CACHE="${TMPDIR:-/tmp}/nttracks-cache" HF_HUB_OFFLINE=1
PY=${PYTHON:-python3}
{
  echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c "import torch, cupy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cupy', cupy.__version__)"
  # The image has torch, CuPy, numpy, typer, PyYAML, tqdm, safetensors, hypothesis, pytest; the genome I/O
  # libraries come as carried wheels (no network there).
  if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --find-links .whl --no-deps .whl/*.whl 2>&1 | tail -2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -2
} 2>&1 | tee "$OUT/gpu_check.log"

status=0
timeout 200 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu.py tests/test_memory.py tests/test_predict.py tests/test_segment_nt.py 2>&1 | tee "$OUT/gpu_tests.log" || status=1
timeout 260 "$PY" benchmarks/bench_genome.py --shape real --device cuda --mbp 12 --naive-mbp 0.6 \
  --json "$OUT/bench_genome.json" 2>&1 | tee "$OUT/bench_genome.log" || status=1
echo "== done, status $status" | tee -a "$OUT/gpu_check.log"
exit $status
