#!/usr/bin/env bash
# The cost of writing a sampler in Python: the built-in `dns` against the same method in Python, once on
# the context's primitives (examples/samplers/dns.py) and once in torch alone (dns_torch.py), MF on
# MovieLens-100K (the shared 80/20 split; a synthetic set of its shape without it), k = 4, M = 10, at
# batch 1024 and 4096, one thread, in alternated rounds; prints the sampler's and the epoch's seconds
# (medians over rounds and epochs) and each one's ratio to the built-in.
#   scripts/bench-python-sampler.sh [ROUNDS]        (default 4)
# Needs scripts/setup-python.sh (run here when missing); pandas and pyarrow go into its venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-4}"
VENV="${NSBENCH_PYTHON_VENV:-$ROOT/.venv-python}"
"$ROOT/scripts/setup-python.sh" >/dev/null
"$VENV/bin/python" -c "import pandas, pyarrow" 2>/dev/null || "$VENV/bin/python" -m pip install -q pandas pyarrow
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
SPLIT="$ROOT/../shared/datasets/ml-100k/split-80-20-seed0"
if [ -f "$SPLIT/train.tsv" ]; then
  DATA="{ format = \"delimited\", delimiter = \"\\t\", train = \"$(cd "$SPLIT" && pwd)/train.tsv\", test = \"$(cd "$SPLIT" && pwd)/test.tsv\" }"
else
  DATA='{ format = "synthetic", users = 943, items = 1682, interactions_per_user = 85 }'
fi
SAMPLERS=('kind = "dns"'
  "kind = \"python\"
path = \"$ROOT/examples/samplers/dns.py\"
class = \"Dns\""
  "kind = \"python\"
path = \"$ROOT/examples/samplers/dns_torch.py\"
class = \"DnsTorch\"")
# One suite per batch size and order: alternate rounds train the samplers in reverse order, so that
# whatever the first cell of a process pays falls on each in turn.
suite() {
  local batch="$1" order="$2"
  cat <<EOF
[suite]
name = "python-overhead-b$batch"
seeds = [0]
ratios = [4]

[train]
epochs = 5
batch_size = $batch
lr = 5e-3
l2 = 1e-2
eval_every = 5
ks = [20]

[[domain]]
kind = "rec"
name = "ml100k"
data = $DATA
model = { kind = "mf", dim = 64 }
EOF
  for i in $order; do printf '\n[[sampler]]\n%s\n' "${SAMPLERS[$i]}"; done
}
for round in $(seq 1 "$ROUNDS"); do
  order="0 1 2"; [ $((round % 2)) -eq 0 ] && order="2 1 0"
  for batch in 1024 4096; do
    suite "$batch" "$order" > "$TMP/r$round-b$batch.toml"
    "$ROOT/scripts/nsbench-python" run "$TMP/r$round-b$batch.toml" --out "$TMP/r$round-b$batch" \
      --jobs 1 --threads 1 --no-plots >/dev/null 2>&1
  done
done
PYTHONPATH="$ROOT/scripts" "$VENV/bin/python" - "$TMP" <<'PY'
import glob, sys, pandas as pd
frames = []
for path in glob.glob(f"{sys.argv[1]}/r*-b*/curves.parquet"):
    df = pd.read_parquet(path)
    df = df[(df.split == "train") & df.metric.isin(["sampling_seconds", "epoch_seconds"])]
    frames.append(df.assign(batch=int(path.split("-b")[-1].split("/")[0])))
df = pd.concat(frames)
med = df.groupby(["batch", "sampler", "metric"]).value.median().unstack("metric")
names = {"dns": "built-in dns (Rust)", "py-dns": "dns.py (context primitives)", "py-dnstorch": "dns_torch.py (torch alone)"}
print(f"{'batch':>5}  {'sampler':<30} {'sampling s/epoch':>16} {'ratio':>7} {'epoch s':>9} {'ratio':>7}")
for batch in sorted(df.batch.unique()):
    ref = med.loc[(batch, "dns")]
    for sampler in ["dns", "py-dns", "py-dnstorch"]:
        r = med.loc[(batch, sampler)]
        print(f"{batch:>5}  {names[sampler]:<30} {r.sampling_seconds:>16.4f} "
              f"{r.sampling_seconds / ref.sampling_seconds:>6.2f}x {r.epoch_seconds:>9.4f} "
              f"{r.epoch_seconds / ref.epoch_seconds:>6.2f}x")
print("target: dns.py's sampling at batch 4096 <= 2x the built-in's")
from ratios import record
at = med.loc[(4096, "py-dns")].sampling_seconds / med.loc[(4096, "dns")].sampling_seconds
record("Python dns.py sampling / built-in dns, batch 4096", at, 2.0, "lower")
PY
