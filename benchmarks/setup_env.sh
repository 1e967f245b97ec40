#!/usr/bin/env bash
# The benchmark environment: this checkout plus the peer libraries it is compared with, in .bench-venv
# (never in the project's own environment: the peers are not dependencies of jepa-lightning).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .bench-venv
.bench-venv/bin/python -m pip install --quiet --upgrade pip
.bench-venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
.bench-venv/bin/python -m pip install --quiet -e . "lightly==1.6.0" "stable-pretraining==0.1.8"
echo "benchmark environment ready: .bench-venv/bin/python benchmarks/<script>.py"
