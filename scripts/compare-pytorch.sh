#!/usr/bin/env bash
# Trains the same MF-BPR model on the same train/test split with nsbench and with a plain PyTorch loop
# (scripts/pytorch_mf_bpr.py), and prints quality and training throughput side by side.
#   scripts/compare-pytorch.sh [SPLIT_DIR] [EPOCHS]
# SPLIT_DIR holds train.tsv and test.tsv (`user<TAB>item`); default: the shared MovieLens-100K 80/20 split.
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPLIT="$(cd "${1:-$ROOT/../shared/datasets/ml-100k/split-80-20-seed0}" && pwd)"
EPOCHS="${2:-50}"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy, pandas, pyarrow" "torch==2.13.0 numpy pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
sed -e "s#train = \"[^\"]*\"#train = \"$SPLIT/train.tsv\"#" -e "s#test = \"[^\"]*\"#test = \"$SPLIT/test.tsv\"#" \
    -e "s#^epochs = .*#epochs = $EPOCHS#" "$ROOT/suites/ml100k.toml" > "$TMP/compare.toml"
"$ROOT/scripts/nsbench" run "$TMP/compare.toml" --out "$TMP/nsbench" --jobs 1 --threads 1 --no-plots >/dev/null
for threads in 1 2; do
  "$PY" "$ROOT/scripts/pytorch_mf_bpr.py" --train "$SPLIT/train.tsv" --test "$SPLIT/test.tsv" \
    --threads "$threads" --epochs "$EPOCHS" > "$TMP/pytorch-$threads.json"
done
# The plain loop again under the malloc settings nsbench sets for itself (src/main.rs): glibc's dynamic
# mmap threshold maps and unmaps every step's tensors in the plain loop too (seen: 1.9x on Gowalla's shape).
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728 \
  "$PY" "$ROOT/scripts/pytorch_mf_bpr.py" --train "$SPLIT/train.tsv" --test "$SPLIT/test.tsv" \
    --threads 1 --epochs "$EPOCHS" > "$TMP/pytorch-malloc.json"
PYTHONPATH="$ROOT/scripts" "$PY" - "$TMP" "$(basename "$SPLIT")" <<'PY'
import json, sys, pandas as pd
tmp = sys.argv[1]
df = pd.read_parquet(f"{tmp}/nsbench/results.parquet")
get = lambda m: float(df.loc[df.metric == m, "value"].iloc[0])
rows = [{"impl": f"nsbench {df.nsbench_version[0]} (libtorch {df.libtorch_version[0]}, 1 thread)",
         "recall@20": get("recall@20"), "ndcg@20": get("ndcg@20"),
         "positives_per_second": get("positives_per_second")}]
rows += [json.load(open(f"{tmp}/pytorch-{t}.json")) for t in (1, 2, "malloc")]
rows[3]["impl"] += " + nsbench's malloc"
ours = rows[0]["positives_per_second"]
print(f"{'implementation':<54} {'recall@20':>9} {'ndcg@20':>8} {'pairs/s':>10} {'nsbench is':>10}")
for r in rows:
    print(f"{r['impl']:<54} {r['recall@20']:>9.4f} {r['ndcg@20']:>8.4f} {r['positives_per_second']:>10.3g} "
          f"{ours / r['positives_per_second']:>9.2f}x")
from ratios import record
record(f"MF-BPR pairs/s vs plain PyTorch (1 thread), {sys.argv[2]}", ours / rows[1]["positives_per_second"], 2.5)
record(f"MF-BPR pairs/s vs PyTorch with nsbench's malloc, {sys.argv[2]}", ours / rows[3]["positives_per_second"], None)
PY
