#!/usr/bin/env bash
# GPU check (see benchmarks/gpu_check.py): I-JEPA and SimCLR steps in bf16, eager and compiled, with samples/s,
# peak memory, MFU and a bf16-vs-fp32 loss check; under 5 minutes on one GPU. Exit status 2 when no GPU is present.
#   bash benchmarks/gpu_check.sh [--sizes tiny small] [--batch-size 128] [--peak-tflops 989]
set -euo pipefail
cd "$(dirname "$0")"
exec python gpu_check.py "$@"
