#!/usr/bin/env bash
# Word embeddings at text8's scale: writes a corpus of text8's shape (scripts/text8_shaped.py: 17M
# tokens, a Zipf vocabulary of which about 71k words are seen 5 times or more) and trains one SGNS cell
# on it (dim 100, window 5, 5 unigram^0.75 negatives, word2vec's update, one thread). Prints the pairs an
# epoch draws, the distinct pairs kept as known co-occurrences, seconds per epoch, the diagnostics'
# seconds and the process's peak memory (from /usr/bin/time and from the cell's own record).
#   scripts/bench-text-scale.sh [TOKENS] [SAMPLE] [EPOCHS]
# SAMPLE is word2vec's subsampling threshold: 0 (the default) keeps every word, about 100M pairs an
# epoch at 17M tokens; 1e-3 thins the frequent words (about 59M).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOKENS="${1:-17005207}"
SAMPLE="${2:-0}"
EPOCHS="${3:-1}"
. "$ROOT/scripts/python-env.sh"
python_env "import numpy, pandas, pyarrow" "numpy pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
"$PY" "$ROOT/scripts/text8_shaped.py" "$TMP" 0 "$TOKENS"
cat > "$TMP/scale.toml" <<TOML
[suite]
name = "text-scale"
seeds = [0]
ratios = [5]
[train]
epochs = $EPOCHS
optimizer = "word2vec"
lr = 0.025
l2 = 0.0
batch_size = 1024
eval_every = $EPOCHS
[[domain]]
kind = "text"
name = "text8-shaped"
model = { kind = "sgns", dim = 100 }
data = { format = "corpus", path = "$TMP/corpus.txt", min_count = 5, window = 5, sample = $SAMPLE, similarity = ["$TMP/similarity.tsv"] }
[[sampler]]
kind = "popularity"
exclude_positives = false
TOML
# Built first, so the linker's memory is not the run's.
"$ROOT/scripts/nsbench" --version > /dev/null
/usr/bin/time -v "${CARGO_TARGET_DIR:-$ROOT/target}/release/nsbench" run "$TMP/scale.toml" --out "$TMP/out" --jobs 1 --threads 1 --no-plots \
  > "$TMP/log.txt" 2> "$TMP/time.txt" || { cat "$TMP/log.txt" "$TMP/time.txt"; exit 1; }
grep -hE "^note" "$TMP/log.txt" "$TMP/time.txt" || true
grep -E "Maximum resident|Elapsed" "$TMP/time.txt"
"$PY" - "$TMP/out" <<'PY'
import sys, pandas as pd
d = pd.read_parquet(f"{sys.argv[1]}/results.parquet")
v = d.set_index("metric").value
print(f"pairs an epoch: {d.n_train.iloc[0]:,}")
for m in ["epoch_seconds", "diagnostics_seconds", "positives_per_second", "words_per_second", "process_peak_rss_mib"]:
    print(f"{m}: {v[m]:,.4g}")
PY
