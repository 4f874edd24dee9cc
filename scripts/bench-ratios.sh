#!/usr/bin/env bash
# The speed ratios nsbench holds itself to, each from its side-by-side script run now, in one table with
# its target: MF-BPR against plain PyTorch on ML-100K (and on a Gowalla-shaped set with --gowalla, about
# 4 minutes more), GAE against GAE's own PyTorch training, SimCLR and MoCo against plain PyTorch (MLP
# and CNN encoders), and a Python sampler against its built-in twin. Exit 1 when a ratio misses its target.
#   scripts/bench-ratios.sh [--gowalla]
# Needs ../shared/datasets (ML-100K, Cora, digits); Python as the side-by-side scripts find it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NSBENCH_RATIOS="$(mktemp)"; trap 'rm -f "$NSBENCH_RATIOS"' EXIT
"$ROOT/scripts/compare-pytorch.sh"
if [ "${1:-}" = "--gowalla" ]; then
  GOWALLA="$(mktemp -d)"
  . "$ROOT/scripts/python-env.sh"; python_env "import torch, numpy, pandas, pyarrow" "torch==2.13.0 numpy pandas pyarrow"
  "$PY" "$ROOT/scripts/gowalla_shaped.py" "$GOWALLA/gowalla"
  "$ROOT/scripts/compare-pytorch.sh" "$GOWALLA/gowalla" 10
  rm -rf "$GOWALLA"
fi
"$ROOT/scripts/compare-gae.sh"
"$ROOT/scripts/compare-vision.sh"
"$ROOT/scripts/compare-vision.sh" "" 30 cnn
"$ROOT/scripts/bench-python-sampler.sh" 2
python3 "$ROOT/scripts/ratios.py" "$NSBENCH_RATIOS"
