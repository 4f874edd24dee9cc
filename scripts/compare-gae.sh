#!/usr/bin/env bash
# GAE on Cora with nsbench's `gae` sampler (suites/cora-gae.toml's featured domain: GCN 32-16, Adam 0.01,
# the whole-adjacency weighted BCE) and with GAE's own training in plain PyTorch (scripts/pytorch_gae.py),
# and nsbench's sampled twin (`uniform`, one non-edge per edge); prints AUC, AP and seconds per epoch
# side by side, one thread each.
#   scripts/compare-gae.sh [CORA_DIR] [EPOCHS]      (default: ../shared/datasets/cora, 200)
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORA="$(cd "${1:-$ROOT/../shared/datasets/cora}" && pwd)"
EPOCHS="${2:-200}"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy, pandas, pyarrow" "torch==2.13.0 numpy pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
"$PY" - "$ROOT/suites/cora-gae.toml" "$CORA" "$EPOCHS" > "$TMP/gae.toml" <<'PY'
import re, sys
suite, cora, epochs = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(suite).read()
s = s[:s.index('[[domain]]', s.index('name = "cora"'))] + s[s.index('[[sampler]]'):s.index('[[expect]]')]
s = re.sub(r'"[^"]*cora\.cites"', f'"{cora}/cora.cites"', s)
s = re.sub(r'"[^"]*cora\.content"', f'"{cora}/cora.content"', s)
s = re.sub(r"^seeds = .*$", "seeds = [0]", s, flags=re.M)
s = re.sub(r"^epochs = .*$", f"epochs = {epochs}", s, flags=re.M)
s = re.sub(r"^eval_every = .*$", f"eval_every = {epochs}", s, flags=re.M)
print(s)
PY
"$ROOT/scripts/nsbench" run "$TMP/gae.toml" --out "$TMP/nsbench" --jobs 1 --threads 1 --no-plots >/dev/null
"$PY" "$ROOT/scripts/pytorch_gae.py" --cites "$CORA/cora.cites" --content "$CORA/cora.content" \
  --epochs "$EPOCHS" --threads 1 > "$TMP/pytorch.json"
PYTHONPATH="$ROOT/scripts" "$PY" - "$TMP" <<'PY'
import json, sys, pandas as pd
tmp = sys.argv[1]
df = pd.read_parquet(f"{tmp}/nsbench/results.parquet")
get = lambda s, m: float(df.loc[(df.sampler == s) & (df.metric == m), "value"].iloc[0])
rows = [{"impl": f"nsbench gae (1 thread)", "auc": get("gae", "auc"), "ap": get("gae", "ap"),
         "epoch_seconds": get("gae", "epoch_seconds")},
        json.load(open(f"{tmp}/pytorch.json")),
        {"impl": "nsbench uniform 1:1 (1 thread)", "auc": get("uniform", "auc"), "ap": get("uniform", "ap"),
         "epoch_seconds": get("uniform", "epoch_seconds")}]
ours = rows[0]["epoch_seconds"]
print(f"{'implementation':<36} {'AUC':>6} {'AP':>6} {'s/epoch':>8} {'nsbench gae is':>15}")
for r in rows:
    print(f"{r['impl']:<36} {r['auc']:>6.3f} {r['ap']:>6.3f} {r['epoch_seconds']:>8.4f} "
          f"{r['epoch_seconds'] / ours:>14.2f}x")
from ratios import record
record("GAE epoch vs GAE's own PyTorch training, Cora", rows[1]["epoch_seconds"] / ours, 1.0)
record("gae cell epoch / its uniform twin's, Cora", ours / rows[2]["epoch_seconds"], None, "lower")
PY
