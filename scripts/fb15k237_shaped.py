"""Writes a knowledge graph of FB15k-237's shape (14,541 entities, 237 relations, 272,115 training, 17,535
validation and 20,466 test triples, no test triple in training) to DIR/{train,valid,test}.txt
(`head<TAB>relation<TAB>tail`), for scripts/compare-pykeen.sh at scale. Triples follow a latent
translation model (entity and relation vectors in 16 dimensions, each tail one of the 10 entities nearest
to head + relation), so that a trained TransE has something to find: python3 fb15k237_shaped.py DIR [SEED]."""
import pathlib
import sys

import numpy as np

ENTITIES, RELATIONS, TRAIN, VALID, TEST = 14_541, 237, 272_115, 17_535, 20_466


def main():
    out = pathlib.Path(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    e = rng.normal(size=(ENTITIES, 16)).astype(np.float32)
    r = rng.normal(size=(RELATIONS, 16)).astype(np.float32) * 0.5
    heads = rng.integers(ENTITIES, size=(TRAIN + VALID + TEST) * 2)
    rels = rng.integers(RELATIONS, size=len(heads))
    triples = set()
    for start in range(0, len(heads), 2048):
        h, rel = heads[start:start + 2048], rels[start:start + 2048]
        target = e[h] + r[rel]
        dist = (target * target).sum(1, keepdims=True) - 2 * target @ e.T + (e * e).sum(1)
        near = np.argpartition(dist, 10, axis=1)[:, :10]
        tails = near[np.arange(len(h)), rng.integers(10, size=len(h))]
        triples.update(zip(h.tolist(), rel.tolist(), tails.tolist()))
        if len(triples) >= TRAIN + VALID + TEST:
            break
    triples = sorted(triples)
    order = rng.permutation(len(triples))[: TRAIN + VALID + TEST]
    chosen = [triples[i] for i in order]
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": chosen[:TRAIN], "valid": chosen[TRAIN:TRAIN + VALID], "test": chosen[TRAIN + VALID:]}
    for name, rows in splits.items():
        with open(out / f"{name}.txt", "w") as f:
            f.writelines(f"e{h}\tr{rel}\te{t}\n" for h, rel, t in rows)


if __name__ == "__main__":
    main()
