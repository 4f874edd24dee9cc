"""A plain PyTorch full-ranking evaluation loop, the reference for nsbench's evaluation benchmark.

Same shape as benches/evaluation.rs: 29,858 users x 40,981 items (Gowalla's), 27 training and 7 test
items per user, 64-dimensional N(0, 0.1) embeddings, Recall@20 and NDCG@20 of every user. Per block of
users: one matrix product, the training items set to -inf, torch.topk, hits from a dense target mask.
Index tensors are built before timing, as nsbench builds them before evaluating. Prints JSON.
  python3 scripts/pytorch_eval_topk.py --threads 1 --block 1024 --repeats 3
"""
import argparse
import json
import math
import time

import numpy as np
import torch

USERS, ITEMS, TRAIN, TEST, DIM, K = 29_858, 40_981, 27, 7, 64, 20


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    picked = np.stack([rng.choice(ITEMS, TRAIN + TEST, replace=False) for _ in range(USERS)])
    train, test = picked[:, :TRAIN], picked[:, TRAIN:]
    torch.manual_seed(0)
    users = torch.randn(USERS, DIM) * 0.1
    items = torch.randn(ITEMS, DIM) * 0.1
    discounts = 1.0 / torch.log2(torch.arange(2, K + 2, dtype=torch.float32))
    ideal = discounts[: min(K, TEST)].sum()
    blocks = []
    for s in range(0, USERS, a.block):
        e = min(USERS, s + a.block)
        rows = torch.arange(e - s).repeat_interleave(TRAIN)
        blocks.append((s, e, rows, torch.from_numpy(train[s:e].reshape(-1)),
                       torch.arange(e - s).repeat_interleave(TEST), torch.from_numpy(test[s:e].reshape(-1))))
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        recall = ndcg = 0.0
        with torch.no_grad():
            for s, e, tr_rows, tr_cols, te_rows, te_cols in blocks:
                scores = users[s:e] @ items.T
                scores[tr_rows, tr_cols] = -math.inf
                top = scores.topk(K, dim=1).indices
                is_test = torch.zeros(e - s, ITEMS, dtype=torch.bool)
                is_test[te_rows, te_cols] = True
                hits = is_test.gather(1, top).float()
                recall += (hits.sum(1) / TEST).sum().item()
                ndcg += ((hits * discounts).sum(1) / ideal).sum().item()
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} ({a.threads} thread(s), {a.block} users per block)",
        "seconds": min(times), "seconds_all": times,
        "recall@20": recall / USERS, "ndcg@20": ndcg / USERS,
    }))


if __name__ == "__main__":
    main()
