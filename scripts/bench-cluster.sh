#!/usr/bin/env bash
# Throughput of the ways to run a grid, measured side by side on this machine:
#   1. suites/samplers.toml with --jobs 1 and with --jobs 2 (cells per second, and their ratio);
#   2. the harness overhead of the --jobs 1 run: wall time minus the cells' training, evaluation and
#      diagnostics seconds (what is left is loading, hashing, writing, merging and plotting);
#   3. the same grid as a Slurm array of 1 shard and of 4 shards (1 CPU each) on the running cluster
#      (scripts/slurm-local.sh start; eval "$(scripts/slurm-local.sh env)").
# Every run starts from an empty results directory. Prints one line per measurement.
# The array is timed from submission to the last shard's end (its throughput) and, separately, to the
# merge job's end (merging and drawing the figures once).
#   scripts/bench-cluster.sh [SUITE] [--slurm-only]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="$(realpath "${1:-$ROOT/suites/samplers.toml}")"
ONLY="${2:-}"
NSBENCH="$ROOT/scripts/nsbench"
"$NSBENCH" --version >/dev/null  # build first, outside the timings
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT

seconds() { python3 -c 'import time; print(f"{time.time():.3f}")'; }

# Training, evaluation and diagnostics seconds of every cell of a results directory, summed.
inside_cells() {
  python3 - "$1" <<'PY'
import sys, pandas as pd
r = pd.read_parquet(f"{sys.argv[1]}/results.parquet")
m = r[r.metric.isin(["train_seconds", "eval_seconds", "diagnostics_seconds"])]
print(f"{m.value.sum():.3f} {r.run_id.nunique()}")
PY
}

declare -A WALL
for jobs in $([ "$ONLY" = --slurm-only ] || echo 1 2); do
  start=$(seconds)
  "$NSBENCH" run "$SUITE" --out "$TMP/jobs$jobs" --jobs "$jobs" --threads 1 >/dev/null 2>"$TMP/jobs$jobs.log"
  end=$(seconds)
  WALL[$jobs]=$(python3 -c "print(f'{$end - $start:.1f}')")
  read -r inside cells < <(inside_cells "$TMP/jobs$jobs")
  echo "jobs=$jobs: $cells cells in ${WALL[$jobs]} s wall ($(python3 -c "print(f'{$cells / ${WALL[$jobs]}:.3f}')") cells/s); inside cells ${inside} s"
  if [ "$jobs" = 1 ]; then
    echo "harness overhead (jobs=1): $(python3 -c "w=${WALL[1]}; i=$inside; print(f'{w - i:.1f} s = {100 * (w - i) / w:.1f}% of the wall time')")"
  fi
done
[ "$ONLY" = --slurm-only ] || echo "throughput --jobs 2 / --jobs 1: $(python3 -c "print(f'{${WALL[1]} / ${WALL[2]}:.2f}x')")"

if command -v sbatch >/dev/null && [ -n "${SLURM_CONF:-}" ]; then
  declare -A ARRAY_WALL
  for shards in 1 4; do
    start=$(seconds)
    ids=$("$NSBENCH" slurm "$SUITE" --out "$TMP/slurm$shards" --shards "$shards" --cpus-per-task 1 --submit \
      | grep -o 'array job [0-9]* .* merge job [0-9]*' | grep -o '[0-9]\+' | head -3)
    array=$(echo "$ids" | sed -n 1p); merge=$(echo "$ids" | sed -n 3p)
    while squeue -h -j "$array" 2>/dev/null | grep -q .; do sleep 0.2; done
    array_end=$(seconds)
    while squeue -h -j "$merge" 2>/dev/null | grep -q .; do sleep 0.2; done
    end=$(seconds)
    ARRAY_WALL[$shards]=$(python3 -c "print(f'{$array_end - $start:.1f}')")
    read -r inside cells < <(inside_cells "$TMP/slurm$shards")
    echo "slurm shards=$shards: $cells cells, array ${ARRAY_WALL[$shards]} s from submission to the last shard's end ($(python3 -c "print(f'{$cells / ${ARRAY_WALL[$shards]}:.3f}')") cells/s), merge job done $(python3 -c "print(f'{$end - $array_end:.1f}')") s later"
  done
  echo "throughput 4 shards / 1 shard: $(python3 -c "print(f'{${ARRAY_WALL[1]} / ${ARRAY_WALL[4]}:.2f}x')")"
else
  echo "no Slurm here: skipped the array measurement"
fi
