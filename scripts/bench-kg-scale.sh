#!/usr/bin/env bash
# Knowledge-graph training at the scale of FB15k-237 (14,541 entities, 237 relations, ~272k training
# and ~20k test triples), drawn by the embedded generator: TransE and RotatE, uniform and
# self-adversarial negatives, one cell at a time. Prints seconds per epoch, per evaluation (filtered,
# both sides, valid and test), the data set's loading time and the process's peak memory.
#   scripts/bench-kg-scale.sh [EPOCHS] [THREADS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EPOCHS="${1:-2}"
THREADS="${2:-2}"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/scale.toml" <<TOML
[suite]
name = "kg-scale"
seeds = [0]
ratios = [16]
[train]
epochs = $EPOCHS
batch_size = 1024
lr = 1e-3
l2 = 0
eval_every = $EPOCHS
[[domain]]
kind = "kg"
name = "fb15k237-sized-transe"
data = { format = "synthetic-kg", entities = 14541, relations = 237, triples = 310116, dim = 16, valid = 0.0565, test = 0.0655 }
model = { kind = "transe", dim = 100 }
[[domain]]
kind = "kg"
name = "fb15k237-sized-rotate"
data = { format = "synthetic-kg", entities = 14541, relations = 237, triples = 310116, dim = 16, valid = 0.0565, test = 0.0655 }
model = { kind = "rotate", dim = 100 }
[[sampler]]
kind = "uniform"
[[sampler]]
kind = "self-adversarial"
TOML
# Built first, so the linker's memory is not the run's.
"$ROOT/scripts/nsbench" --version > /dev/null
/usr/bin/time -v "${CARGO_TARGET_DIR:-$ROOT/target}/release/nsbench" run "$TMP/scale.toml" --out "$TMP/out" --jobs 1 --threads "$THREADS" --no-plots \
  2> "$TMP/time.txt" | tail -n +1 >/dev/null || { cat "$TMP/time.txt"; exit 1; }
grep -E "Maximum resident|Elapsed" "$TMP/time.txt"
python3 - "$TMP/out" <<'PY'
import sys, pandas as pd
d = pd.read_parquet(f"{sys.argv[1]}/results.parquet")
w = d.pivot_table(index=["dataset", "sampler"], columns="metric", values="value")
print(d[["n_queries", "n_items", "n_train", "n_test"]].iloc[0].to_dict())
cols = ["epoch_seconds", "eval_seconds", "positives_per_second", "mrr", "hits@10", "process_peak_rss_mib"]
print(w[cols].to_string(float_format=lambda x: f"{x:.4g}"))
PY
