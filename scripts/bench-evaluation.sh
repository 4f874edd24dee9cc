#!/usr/bin/env bash
# Full-ranking evaluation side by side: `cargo bench --bench evaluation` (nsbench's host scan and its
# tensor-operation path) and scripts/pytorch_eval_topk.py (a plain PyTorch top-k loop) on the same
# Gowalla-shaped workload, at one libtorch thread (or $1), with the ratio of each to the plain loop.
#   scripts/bench-evaluation.sh [THREADS]
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-1}"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy" "torch==2.13.0 numpy"
export OMP_WAIT_POLICY=PASSIVE
"$ROOT/scripts/setup-libtorch.sh"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
NSBENCH_BENCH_THREADS="$THREADS" cargo bench --manifest-path "$ROOT/Cargo.toml" --bench evaluation -- gowalla
for block in 100 1024; do
  "$PY" "$ROOT/scripts/pytorch_eval_topk.py" --threads "$THREADS" --block "$block" --repeats 3
done > "$TARGET/criterion/pytorch_eval.jsonl"
"$PY" - "$TARGET/criterion" "$THREADS" <<'PY'
import json, pathlib, sys
root, threads = pathlib.Path(sys.argv[1]), sys.argv[2]
plain = [json.loads(l) for l in (root / "pytorch_eval.jsonl").read_text().splitlines()]
fastest = min(p["seconds"] for p in plain)
rows = [(p["impl"], p["seconds"]) for p in plain]
for bench, label in (("host_scan", "nsbench host scan (the CPU path)"),
                     ("tensor_ops", "nsbench tensor operations (the accelerator path)")):
    f = root / f"evaluation_gowalla_shaped_t{threads}" / bench / "new" / "estimates.json"
    rows.append((f"{label}, {threads} thread(s)", json.loads(f.read_text())["median"]["point_estimate"] / 1e9))
print(f"\nOne full evaluation, 29,858 users x 40,981 items, top 20 (median seconds; ratio: the fastest plain loop / it)")
for name, s in rows:
    print(f"{name:<62} {s:>7.2f} s {fastest / s:>6.2f}x")
print("target: the host scan at least as fast as the plain loop, aiming at 2x")
PY
