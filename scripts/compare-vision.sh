#!/usr/bin/env bash
# SimCLR and MoCo on the shared digits with nsbench (in-batch under softmax: SimCLR's 2N − 2 views; the
# queue of 1024 keys with a momentum encoder at 0.99: MoCo; the grid also trains the two other pairings,
# unread) and with the same method in plain PyTorch (scripts/pytorch_simclr.py: the same encoder, MLP or
# CNN, and head, augmentations, NT-Xent at 0.5, Adam 1e-3, batch 128); prints kNN accuracy, training
# images/s and seconds per epoch side by side, one thread.
#   scripts/compare-vision.sh [DIGITS_CSV] [EPOCHS] [ENCODER]   (default: ../shared/datasets/digits, 30, mlp)
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CSV="$(realpath "${1:-$ROOT/../shared/datasets/digits/digits.csv.gz}")"
EPOCHS="${2:-30}"
ENCODER="${3:-mlp}"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy, pandas, pyarrow" "torch==2.13.0 numpy pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
DATA="{ format = \"images\", path = \"$CSV\", height = 8, width = 8, scale = 16 }"
cat > "$TMP/vision.toml" <<TOML
[suite]
name = "vision-side-by-side"
seeds = [0]
ratios = [16]

[train]
epochs = $EPOCHS
batch_size = 128
lr = 0.001
eval_every = $EPOCHS

[[domain]]
kind = "vision"
name = "simclr"
data = $DATA
model = { kind = "image-encoder", encoder = "$ENCODER" }

[[domain]]
kind = "vision"
name = "moco"
data = $DATA
model = { kind = "image-encoder", encoder = "$ENCODER", momentum = 0.99 }

[[sampler]]
kind = "in-batch"

[[sampler]]
kind = "queue"
size = 1024
TOML
"$ROOT/scripts/nsbench" run "$TMP/vision.toml" --out "$TMP/nsbench" --jobs 1 --threads 1 --no-plots >/dev/null
for mode in simclr moco; do
  "$PY" "$ROOT/scripts/pytorch_simclr.py" --csv "$CSV" --mode "$mode" --encoder "$ENCODER" --epochs "$EPOCHS" --threads 1 > "$TMP/$mode.json"
done
PYTHONPATH="$ROOT/scripts" "$PY" - "$TMP" "$ENCODER" <<'PY'
import json, sys, pandas as pd
tmp, encoder = sys.argv[1], sys.argv[2]
from ratios import record

df = pd.read_parquet(f"{tmp}/nsbench/results.parquet")
get = lambda d, s, m: float(df.loc[(df.dataset == d) & (df.sampler == s) & (df.metric == m), "value"].iloc[0])
print(f"{'method':<7} {'implementation':<40} {'kNN':>6} {'images/s':>9} {'s/epoch':>8} {'nsbench is':>10}")
for mode, sampler in (("simclr", "in-batch"), ("moco", "queue")):
    ratio = json.load(open(f"{tmp}/{mode}.json"))["epoch_seconds"] / get(mode, sampler, "epoch_seconds")
    record(f"{mode}{'' if encoder == 'mlp' else ' (' + encoder + ')'} epoch vs plain PyTorch, digits", ratio, 1.5)
    ours = {"impl": f"nsbench {sampler}", "knn": get(mode, sampler, "knn-accuracy"),
            "images_per_second": get(mode, sampler, "positives_per_second"),
            "epoch_seconds": get(mode, sampler, "epoch_seconds")}
    ref = json.load(open(f"{tmp}/{mode}.json"))
    for r in (ours, ref):
        print(f"{mode:<7} {r['impl']:<40} {r['knn']:>6.3f} {r['images_per_second']:>9.0f} {r['epoch_seconds']:>8.4f} "
              f"{r['epoch_seconds'] / ours['epoch_seconds']:>9.2f}x")
PY
