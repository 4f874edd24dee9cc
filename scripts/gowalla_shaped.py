"""Writes a data set of Gowalla's shape as LightGCN's split has it (29,858 users x 40,981 items, 27
training and 7 test items per user, item popularity Zipf-like with exponent 0.8) to DIR/train.tsv and
DIR/test.tsv (`user<TAB>item`), for the side-by-side scripts: python3 gowalla_shaped.py DIR [SEED]."""
import pathlib
import sys

import numpy as np

USERS, ITEMS, TRAIN, TEST = 29_858, 40_981, 27, 7


def main():
    out = pathlib.Path(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    weights = 1.0 / np.arange(1, ITEMS + 1) ** 0.8
    weights /= weights.sum()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.tsv", "w") as train, open(out / "test.tsv", "w") as test:
        for u in range(USERS):
            items = rng.choice(ITEMS, size=TRAIN + TEST, replace=False, p=weights)
            train.writelines(f"{u}\t{i}\n" for i in items[:TRAIN])
            test.writelines(f"{u}\t{i}\n" for i in items[TRAIN:])


if __name__ == "__main__":
    main()
