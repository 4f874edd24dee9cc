"""gensim's skip-gram with negative sampling on a corpus, with nsbench's text settings and metrics.

Trains Word2Vec(sg=1, hs=0) on a one-document-per-line corpus tokenised by simple_preprocess, then
reports words/s (corpus words in the vocabulary × epochs ÷ training seconds) and the Spearman ρ and
coverage of each similarity file, and 3CosAdd analogy accuracy and coverage, as one JSON line.
  python3 scripts/gensim_sgns.py CORPUS --similarity A.tsv B.txt --analogies Q.txt [--epochs 20] ...
"""
import argparse
import json
import logging
import pathlib
import time

from gensim.models import Word2Vec
from gensim.utils import simple_preprocess

p = argparse.ArgumentParser()
p.add_argument("corpus")
p.add_argument("--similarity", nargs="*", default=[])
p.add_argument("--analogies")
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--dim", type=int, default=100)
p.add_argument("--window", type=int, default=5)
p.add_argument("--negative", type=int, default=5)
p.add_argument("--min-count", type=int, default=5)
p.add_argument("--sample", type=float, default=1e-3)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
logging.basicConfig(level=logging.ERROR)

docs = [simple_preprocess(line) for line in open(a.corpus, encoding="utf8")]
docs = [d for d in docs if d]
model = Word2Vec(vector_size=a.dim, window=a.window, negative=a.negative, hs=0, sg=1,
                 min_count=a.min_count, sample=a.sample, workers=a.workers, seed=a.seed)
model.build_vocab(docs)
words = sum(1 for d in docs for w in d if w in model.wv.key_to_index)
start = time.perf_counter()
model.train(docs, total_examples=len(docs), epochs=a.epochs)
seconds = time.perf_counter() - start
out = {"impl": "gensim", "words_per_second": words * a.epochs / seconds, "train_seconds": seconds,
       "vocabulary": len(model.wv), "corpus_words": words}
for path in a.similarity:
    name = pathlib.Path(path).stem
    lines = [l for l in open(path, encoding="utf8") if l.strip() and not l.startswith("#")]
    (_, _), (rho, _), oov = model.wv.evaluate_word_pairs(path, delimiter="\t")
    out[f"{name}-spearman"] = float(rho)
    out[f"{name}-coverage"] = 1 - oov / 100
if a.analogies:
    accuracy, sections = model.wv.evaluate_word_analogies(a.analogies)
    total = sum(1 for l in open(a.analogies, encoding="utf8") if l.strip() and not l.startswith(":"))
    covered = sum(len(s["correct"]) + len(s["incorrect"]) for s in sections if s["section"] == "Total accuracy")
    out["analogy-accuracy"] = float(accuracy)
    out["analogy-coverage"] = covered / total
print(json.dumps(out))
