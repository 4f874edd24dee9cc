#!/usr/bin/env bash
# Trains TransE on a knowledge graph with nsbench and with PyKEEN (from PyPI) under the same settings —
# dim 50, L1, unit-norm entities, margin ranking loss (margin 1), one uniform negative per positive
# (head or tail), Adam (lr 1e-3), batch 256, 100 epochs, 1 thread — and prints filtered realistic-rank
# MRR / Hits@k and training triples/s side by side.
#   scripts/compare-pykeen.sh [KG_DIR] [EPOCHS] [SEEDS]
# KG_DIR holds train.txt, valid.txt, test.txt (`head<TAB>relation<TAB>tail`); default: the shared Nations.
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KG="$(cd "${1:-$ROOT/../shared/datasets/nations}" && pwd)"
EPOCHS="${2:-100}"
SEEDS="${3:-0 1 2}"
. "$ROOT/scripts/python-env.sh"
python_env "import pykeen, pandas, pyarrow" "pykeen pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
seeds="$(echo $SEEDS | sed 's/ /, /g')"
cat > "$TMP/compare.toml" <<TOML
[suite]
name = "compare-pykeen"
seeds = [$seeds]
ratios = [1]
[train]
epochs = $EPOCHS
batch_size = 256
lr = 0.001
l2 = 0
eval_every = $EPOCHS
[[domain]]
kind = "kg"
name = "$(basename "$KG")"
data = { format = "triples", train = "$KG/train.txt", valid = "$KG/valid.txt", test = "$KG/test.txt" }
model = { kind = "transe", dim = 50, norm = 1 }
loss = { kind = "margin", margin = 1.0 }
[[sampler]]
kind = "uniform"
TOML
"$ROOT/scripts/nsbench" run "$TMP/compare.toml" --out "$TMP/nsbench" --jobs 1 --threads 1 --no-plots >/dev/null
for seed in $SEEDS; do
  "$PY" "$ROOT/scripts/pykeen_transe.py" --dir "$KG" --epochs "$EPOCHS" --seed "$seed" > "$TMP/pykeen-$seed.json" \
    2> "$TMP/pykeen-$seed.log"
done
"$PY" - "$TMP" $SEEDS <<'PY'
import json, sys, statistics as st, pandas as pd
tmp, seeds = sys.argv[1], sys.argv[2:]
df = pd.read_parquet(f"{tmp}/nsbench/results.parquet")
def ours(m):
    return [float(v) for v in df.loc[df.metric == m].sort_values("seed").value]
theirs = [json.load(open(f"{tmp}/pykeen-{s}.json")) for s in seeds]
rows = [(f"nsbench {df.nsbench_version.iloc[0]} (libtorch {df.libtorch_version.iloc[0]})",
         {m: ours(m) for m in ("mrr", "hits@1", "hits@3", "hits@10")} | {"tps": ours("positives_per_second")}),
        ("pykeen (PyPI)", {m: [t[m] for t in theirs] for m in ("mrr", "hits@1", "hits@3", "hits@10")}
         | {"tps": [t["triples_per_second"] for t in theirs]})]
fmt = lambda xs: f"{st.mean(xs):.4f}" + (f" ± {st.stdev(xs):.4f}" if len(xs) > 1 else "")
print(f"{len(seeds)} seed(s); mean ± std")
print(f"{'implementation':<40} {'MRR':>16} {'Hits@1':>16} {'Hits@3':>16} {'Hits@10':>16} {'triples/s':>10} {'speed-up':>8}")
base = st.mean(rows[1][1]["tps"])
for name, r in rows:
    print(f"{name:<40} {fmt(r['mrr']):>16} {fmt(r['hits@1']):>16} {fmt(r['hits@3']):>16} {fmt(r['hits@10']):>16} "
          f"{st.mean(r['tps']):>10.4g} {st.mean(r['tps']) / base:>7.1f}x")
PY
