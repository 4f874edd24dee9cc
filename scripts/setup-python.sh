#!/usr/bin/env bash
# Optional set-up for samplers written in Python (`[[sampler]] kind = "python"`): a virtual environment
# with PyPI's torch 2.13.0 (the libtorch nsbench links: one process holds both, so they must be the same
# release; the wheel pulls its CUDA runtime libraries, about 4.7 GB, used on a GPU and harmless without
# one) in <repo>/.venv-python (or $NSBENCH_PYTHON_VENV), and nsbench built with --features python into
# <repo>/target-python (or $NSBENCH_PYTHON_TARGET).
# Idempotent. Then run `scripts/nsbench-python` as you would `scripts/nsbench`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NSBENCH_PYTHON_VENV:-$ROOT/.venv-python}"
TARGET="${NSBENCH_PYTHON_TARGET:-$ROOT/target-python}"
"$ROOT/scripts/setup-libtorch.sh"
if ! "$VENV/bin/python" -c 'import torch, numpy, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
  echo "Installing torch 2.13.0 into $VENV (about 4.7 GB, once)..."
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "torch==2.13.0" numpy
fi
PYO3_PYTHON="$VENV/bin/python" CARGO_TARGET_DIR="$TARGET" \
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --features python --bin nsbench
echo "nsbench with Python samplers: $ROOT/scripts/nsbench-python"
