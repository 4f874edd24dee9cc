"""The speed ratios the side-by-side scripts guard: each records its own with `record` (a JSON line in
$NSBENCH_RATIOS, when set); scripts/bench-ratios.sh prints them beside their targets with
`python3 ratios.py FILE` (exit 1 when one misses)."""
import json
import os
import sys


def record(name, ratio, target, better="higher"):
    """One ratio and its target (None: reported only); `better` says which side of it passes."""
    if os.environ.get("NSBENCH_RATIOS"):
        with open(os.environ["NSBENCH_RATIOS"], "a") as f:
            f.write(json.dumps({"name": name, "ratio": ratio, "target": target, "better": better}) + "\n")


def main():
    rows = [json.loads(line) for line in open(sys.argv[1])]
    print(f"\n{'ratio':<64} {'measured':>9} {'target':>8}  verdict")
    missed = 0
    for r in rows:
        t = r["target"]
        if t is None:
            verdict, want = "reported", "-"
        else:
            ok = r["ratio"] >= t if r["better"] == "higher" else r["ratio"] <= t
            missed += not ok
            verdict, want = ("meets" if ok else "MISSES"), ("≥ " if r["better"] == "higher" else "≤ ") + f"{t:g}×"
        print(f"{r['name']:<64} {r['ratio']:>8.2f}× {want:>8}  {verdict}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
