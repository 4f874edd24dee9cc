#!/usr/bin/env bash
# Trains skip-gram with negative sampling on one corpus with the same settings in nsbench
# (suites/text-lee.toml's popularity cells: word2vec's update, one thread) and in gensim (Word2Vec sg=1,
# hs=0, 2 workers and 1 worker), seed by seed in turn, and prints words/s and quality side by side.
#   scripts/compare-gensim.sh [DATA_DIR] [EPOCHS] [SEEDS] [COPIES]
# DATA_DIR holds lee_background.cor and the evaluation files (default ../shared/datasets/word-embeddings);
# EPOCHS default 20; SEEDS default "0 1 2"; COPIES (default 1) trains on the corpus repeated that many
# times, for a longer and steadier timing. words/s: in-vocabulary corpus words × epochs ÷ training seconds,
# as gensim reports it (nsbench's `words_per_second`: its cell's training seconds, sampling included,
# evaluation and diagnostics excluded).
# Python: NSBENCH_PYTHON, or a virtual environment (.venv, or $NSBENCH_VENV) created on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "${1:-$ROOT/../shared/datasets/word-embeddings}" && pwd)"
EPOCHS="${2:-20}"
SEEDS="${3:-0 1 2}"
COPIES="${4:-1}"
. "$ROOT/scripts/python-env.sh"
python_env "import gensim, pandas, pyarrow" "gensim==4.4.0 pandas pyarrow"
export OMP_WAIT_POLICY=PASSIVE
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
for _ in $(seq "$COPIES"); do cat "$DATA/lee_background.cor"; echo; done > "$TMP/corpus.cor"
EVAL=(--similarity "$DATA/wordsim353.tsv" "$DATA/simlex999.txt" --analogies "$DATA/questions-words.txt")
for seed in $SEEDS; do
  "$PY" - "$ROOT/suites/text-lee.toml" "$TMP" "$DATA" "$EPOCHS" "$seed" > "$TMP/s$seed.toml" <<'PY'
import re, sys
suite, tmp, data, epochs, seed = sys.argv[1:]
s = open(suite).read()
s = s[:s.index('[[sampler]]')] + '[[sampler]]\nkind = "popularity"\nexclude_positives = false\n'
s = s.replace('"../../shared/datasets/word-embeddings', f'"{data}')
s = s.replace(f'"{data}/lee_background.cor"', f'"{tmp}/corpus.cor"')
s = re.sub(r"^seeds = .*$", f"seeds = [{seed}]", s, flags=re.M)
s = re.sub(r"^epochs = .*$", f"epochs = {epochs}", s, flags=re.M)
s = re.sub(r"^eval_every = .*$", f"eval_every = {epochs}", s, flags=re.M)
print(s)
PY
  "$ROOT/scripts/nsbench" run "$TMP/s$seed.toml" --out "$TMP/nsbench-$seed" --jobs 1 --threads 1 --no-plots \
    > "$TMP/nsbench-$seed.log" 2>&1 || { cat "$TMP/nsbench-$seed.log"; exit 1; }
  for workers in 2 1; do
    "$PY" "$ROOT/scripts/gensim_sgns.py" "$TMP/corpus.cor" "${EVAL[@]}" --epochs "$EPOCHS" --seed "$seed" \
      --workers "$workers" > "$TMP/gensim-$workers-$seed.json"
  done
done
"$PY" - "$TMP" "$SEEDS" <<'PY'
import glob, json, statistics, sys, pandas as pd
tmp, seeds = sys.argv[1], sys.argv[2].split()
metrics = ["wordsim353-spearman", "simlex999-spearman", "analogy-accuracy"]
rows = {}
for seed in seeds:
    ref = json.load(open(f"{tmp}/gensim-2-{seed}.json"))
    df = pd.read_parquet(f"{tmp}/nsbench-{seed}/results.parquet")
    get = lambda m: float(df.loc[df.metric == m, "value"].iloc[0])
    ours = {m: get(m) for m in metrics}
    ours["words_per_second"] = get("words_per_second")
    rows.setdefault("nsbench, word2vec update, 1 thread", []).append(ours)
    for w in (2, 1):
        rows.setdefault(f"gensim 4.4, {w} worker(s)", []).append(json.load(open(f"{tmp}/gensim-{w}-{seed}.json")))
    words = ref["corpus_words"]
print(f"{words} in-vocabulary words per epoch, seeds {' '.join(seeds)} (mean ± sd over seeds)")
print(f"{'implementation':<36} " + " ".join(f"{m:>22}" for m in metrics + ["words/s"]))
for name, rs in rows.items():
    cell = lambda k: (f"{statistics.mean(r[k] for r in rs):.4f} ± {statistics.pstdev(r[k] for r in rs):.4f}"
                      if k != "words_per_second" else f"{statistics.mean(r[k] for r in rs):,.0f}")
    print(f"{name:<36} " + " ".join(f"{cell(k):>22}" for k in metrics + ["words_per_second"]))
ours = statistics.mean(r["words_per_second"] for r in rows["nsbench, word2vec update, 1 thread"])
for w in (2, 1):
    theirs = statistics.mean(r["words_per_second"] for r in rows[f"gensim 4.4, {w} worker(s)"])
    print(f"nsbench (1 thread) / gensim ({w} worker(s)): {ours / theirs:.2f}x words/s")
PY
