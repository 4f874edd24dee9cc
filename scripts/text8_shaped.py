"""Writes a corpus of text8's shape (17,005,207 tokens; word types drawn with probability ∝ (rank + 2.7)^-1.27
over 253,854 ranks, which leaves about 71k types seen 5 times or more, as text8 has) to DIR/corpus.txt in lines of 10,000 words (as gensim's Text8Corpus reads
text8), and DIR/similarity.tsv, 300 random pairs of frequent words with random scores (a valid file for
the `similarity` key; its Spearman ρ means nothing), for measuring time and memory at scale:
python3 text8_shaped.py DIR [SEED] [TOKENS]."""
import pathlib
import string
import sys

import numpy as np

TYPES, TOKENS, LINE = 253_854, 17_005_207, 10_000


def spell(ids):
    """Word id -> four lower-case letters (26^4 > TYPES): distinct, and whole under simple_preprocess."""
    letters = np.array(list(string.ascii_lowercase))
    digits = [(ids // 26**p) % 26 for p in range(3, -1, -1)]
    return ["".join(w) for w in np.stack([letters[d] for d in digits], axis=1)]


def main():
    out = pathlib.Path(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    tokens = int(sys.argv[3]) if len(sys.argv) > 3 else TOKENS
    weights = 1.0 / (np.arange(TYPES) + 2.7) ** 1.27
    weights /= weights.sum()
    words = np.array(spell(np.arange(TYPES)))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.txt", "w") as f:
        for start in range(0, tokens, LINE):
            ids = rng.choice(TYPES, size=min(LINE, tokens - start), p=weights)
            f.write(" ".join(words[ids]) + "\n")
    a, b = rng.integers(0, 2000, size=(2, 300))
    with open(out / "similarity.tsv", "w") as f:
        f.writelines(f"{words[x]}\t{words[y]}\t{s:.2f}\n" for x, y, s in zip(a, b, rng.uniform(0, 10, 300)))


if __name__ == "__main__":
    main()
