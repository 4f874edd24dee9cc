#!/usr/bin/env bash
# Trains LightGCN on the same split with the same settings with nsbench and with a plain PyTorch loop
# (scripts/pytorch_lightgcn.py), and prints quality, training throughput and evaluation time side by side.
#   scripts/compare-lightgcn.sh [SPLIT_DIR] [EPOCHS] [THREADS]
# SPLIT_DIR holds LightGCN's train.txt, valid.txt and test.txt (`user item item ...`); default: the
# shared MovieLens-1M split of LightGCN++ (MovieLens may not be redistributed: point it at your copy).
# Settings are suites/lightgcn-ml1m.toml's: dim 64, 2 layers, batch 2048, Adam 1e-3, L2 1e-4; EPOCHS
# epochs (default 5) and one evaluation of the validation and test splits at the end.
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPLIT="$(cd "${1:-$ROOT/../shared/datasets/ml-1m-implicit}" && pwd)"
EPOCHS="${2:-5}"
THREADS="${3:-1}"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy, pandas, pyarrow" "torch==2.13.0 numpy pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
# The suite's LightGCN domain alone, EPOCHS epochs, evaluated once at the end.
"$PY" - "$ROOT/suites/lightgcn-ml1m.toml" "$SPLIT" "$EPOCHS" > "$TMP/compare.toml" <<'PY'
import re, sys
suite, split, epochs = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(suite).read()
s = s[:s.index('[[domain]]', s.index('name = "ml1m-lightgcn"'))] + s[s.index('[[sampler]]'):]
# The suite's published expectations name its other domain too: they are not compared here.
s = re.sub(r"^\[\[expect\]\]\n(?:[^\[\n].*\n?)*", "", s, flags=re.M)
for f in ("train", "valid", "test"):
    s = re.sub(rf'{f} = "[^"]*"', f'{f} = "{split}/{f}.txt"', s)
s = re.sub(r"^epochs = .*$", f"epochs = {epochs}", s, flags=re.M)
s = re.sub(r"^eval_every = .*$", f"eval_every = {epochs}", s, flags=re.M)
s = re.sub(r"^early_stopping = .*\n", "", s, flags=re.M)
print(s)
PY
"$ROOT/scripts/nsbench" run "$TMP/compare.toml" --out "$TMP/nsbench" --jobs 1 --threads "$THREADS" --no-plots >/dev/null
"$PY" "$ROOT/scripts/pytorch_lightgcn.py" --dir "$SPLIT" --epochs "$EPOCHS" --threads "$THREADS" > "$TMP/pytorch.json"
"$PY" - "$TMP" "$THREADS" <<'PY'
import json, sys, pandas as pd
tmp, threads = sys.argv[1], sys.argv[2]
df = pd.read_parquet(f"{tmp}/nsbench/results.parquet")
get = lambda m: float(df.loc[df.metric == m, "value"].iloc[0])
ours = {"impl": f"nsbench {df.nsbench_version[0]} (libtorch {df.libtorch_version[0]}, {threads} thread(s))",
        "positives_per_second": get("positives_per_second"), "eval_seconds": get("eval_seconds"),
        **{m: get(m) for m in ("recall@20", "ndcg@20", "recall@40", "ndcg@40")}}
ref = json.load(open(f"{tmp}/pytorch.json"))
print(f"{'implementation':<46} {'R@20':>7} {'N@20':>7} {'R@40':>7} {'N@40':>7} {'pairs/s':>9} {'eval s':>7}")
for r in (ours, ref):
    print(f"{r['impl']:<46} {r['recall@20']:>7.4f} {r['ndcg@20']:>7.4f} {r['recall@40']:>7.4f} {r['ndcg@40']:>7.4f} "
          f"{r['positives_per_second']:>9.0f} {r['eval_seconds']:>7.2f}")
print(f"nsbench / plain PyTorch: training throughput {ours['positives_per_second'] / ref['positives_per_second']:.2f}x "
      f"(target >= 1.5x), evaluation {ref['eval_seconds'] / ours['eval_seconds']:.2f}x faster (target >= 2x)")
PY
