#!/usr/bin/env bash
# Sampler benchmarks with numpy and torch side by side: runs `cargo bench --bench samplers` (criterion)
# and scripts/bench_numpy_torch.py, then prints draw rates, every sampler's cost per negative and each
# sampler's training step relative to uniform's, with the targets they are held to.
#   scripts/bench-samplers.sh [CRITERION FILTER]      e.g. scripts/bench-samplers.sh train_step_k1
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/python-env.sh"
python_env "import torch, numpy" "torch==2.13.0 numpy"
export OMP_WAIT_POLICY=PASSIVE
"$ROOT/scripts/setup-libtorch.sh"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo bench --manifest-path "$ROOT/Cargo.toml" --bench samplers -- "$@"
"$PY" "$ROOT/scripts/bench_numpy_torch.py" > "$TARGET/criterion/numpy_torch.json"
"$PY" - "$TARGET/criterion" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
ref = json.loads((root / "numpy_torch.json").read_text())

def ns(group, bench):
    f = root / group / bench / "new" / "estimates.json"
    return json.loads(f.read_text())["median"]["point_estimate"] if f.exists() else None

def per_second(group, bench, elements):
    t = ns(group, bench)
    return None if t is None else elements / t * 1e9

draws = 4096 * 256
rows = [
    ("uniform: bare Pcg64Mcg loop", per_second("uniform_draws", "bare_rng_loop", draws), None),
    ("uniform: sampler", per_second("uniform_draws", "uniform_sampler", draws), None),
    ("uniform: numpy rng.integers", ref["numpy_integers"], None),
    ("popularity 0.75, 1M Zipf: alias table", per_second("popularity_draws", "alias_table", draws), None),
    ("popularity 0.75, 1M Zipf: sampler", per_second("popularity_draws", "popularity_sampler", draws), None),
    ("popularity: numpy rng.choice(p=...)", ref["numpy_choice_p"], None),
    ("popularity: torch.multinomial", ref["torch_multinomial"], None),
]
print(f"\nDraw rates, one core (numpy {ref['numpy']}, torch {ref['torch']})")
for name, r, _ in rows:
    print(f"  {name:<42} {r:>12.3g} /s" if r else f"  {name:<42} {'-':>12}")
u, bare, npi = rows[1][1], rows[0][1], rows[2][1]
pop, choice, mult = rows[4][1], rows[5][1], rows[6][1]
if u and bare:
    print(f"  uniform vs numpy: {u / npi:.2f}x (target >= 1); vs bare loop: {u / bare:.0%} (target >= 50%)")
if pop:
    print(f"  popularity vs numpy choice: {pop / choice:.1f}x, vs torch.multinomial: {pop / mult:.1f}x "
          "(targets >= 20x)")

def kinds(group):
    d = root / group
    return sorted(p.name for p in d.iterdir() if (p / "new" / "estimates.json").exists()) if d.exists() else []

group = "sample_4096x4"
if kinds(group):
    print("\nCost per negative, sample() alone (4096 rows x 4, MF 64, MovieLens-100K shape)")
    for kind in sorted(kinds(group), key=lambda k: ns(group, k)):
        print(f"  {kind:<18} {ns(group, kind) / (4096 * 4):>9.1f} ns/negative")
targets = {"dns": 1.5, "cache": 1.2, "cache-every4": 1.2, "queue": 1.2, "in-batch": 1.2}
for k in (1, 4):
    group = f"train_step_k{k}"
    if "uniform" not in kinds(group):
        continue
    base = ns(group, "uniform")
    print(f"\nTraining step, batch 4096, k = {k}: time and ratio to uniform ({base / 1e6:.2f} ms)")
    for kind in sorted(kinds(group), key=lambda x: ns(group, x)):
        ratio = ns(group, kind) / base
        mark = f"  (target <= {targets[kind]}x: {'met' if ratio <= targets[kind] else 'NOT met'})" \
            if kind in targets else ""
        print(f"  {kind:<18} {ns(group, kind) / 1e6:>8.2f} ms {ratio:>6.2f}x{mark}")
PY
