#!/usr/bin/env bash
# Install leanfit and its test tools. torch is pinned to the CPU build first: an
# unpinned torch pulls gigabytes of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade pip >/dev/null
python -m pip install "torch==2.13.0"
python -m pip install -e ".[dev]"
