"""Plain PyTorch reference for nsbench's MF-BPR training on a given train/test split.

Same model, loss, sampler, optimiser and metrics as `nsbench run suites/ml100k.toml`:
MF (normal init, std 0.1), BPR with uniform negatives that exclude the user's training items,
L2 = l2/2 * (|u|^2 + |p|^2 + mean_k |n|^2) per batch row, Adam, shuffled batches, full-ranking
evaluation with training items excluded (Recall@K = hits / n_test, NDCG@K with ideal DCG over
min(K, n_test)). Prints one JSON line with the metrics and the training throughput.

    python scripts/pytorch_mf_bpr.py --train TRAIN.tsv --test TEST.tsv --threads 2
"""
import argparse
import json
import time

import numpy as np
import torch


def load(path, users, items):
    pairs = []
    with open(path) as f:
        for line in f:
            u, i = line.split("\t")[:2]
            pairs.append((users.setdefault(u, len(users)), items.setdefault(i.strip(), len(items))))
    return np.array(pairs, dtype=np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    users, items = {}, {}
    train = load(a.train, users, items)
    test = load(a.test, users, items)
    n_users, n_items = len(users), len(items)
    known = np.zeros((n_users, n_items), dtype=bool)  # O(1) look-up of a user's training items
    known[train[:, 0], train[:, 1]] = True

    user_emb = torch.nn.Parameter(torch.randn(n_users, a.dim) * 0.1)
    item_emb = torch.nn.Parameter(torch.randn(n_items, a.dim) * 0.1)
    opt = torch.optim.Adam([user_emb, item_emb], lr=a.lr)
    k = a.negatives

    def sample(u):
        neg = rng.integers(0, n_items, size=(len(u), k))
        for _ in range(64):  # redraw known positives, as nsbench's uniform sampler does
            bad = known[u[:, None], neg]
            if not bad.any():
                break
            neg[bad] = rng.integers(0, n_items, size=int(bad.sum()))
        return neg

    train_seconds = 0.0
    for epoch in range(a.epochs):
        start = time.perf_counter()
        order = rng.permutation(len(train))
        for b in range(0, len(train), a.batch):
            batch = train[order[b:b + a.batch]]
            u_np = batch[:, 0]
            neg = torch.from_numpy(sample(u_np))
            u = user_emb[torch.from_numpy(u_np)]
            p = item_emb[torch.from_numpy(batch[:, 1])]
            n = item_emb[neg]
            pos_score = (u * p).sum(-1)
            neg_score = (u.unsqueeze(1) * n).sum(-1)
            loss = -torch.nn.functional.logsigmoid(pos_score.unsqueeze(1) - neg_score).mean()
            reg = (u.square().sum() + p.square().sum() + n.square().sum() / k) * (a.l2 / 2 / len(batch))
            opt.zero_grad()
            (loss + reg).backward()
            opt.step()
        train_seconds += time.perf_counter() - start

    with torch.no_grad():
        scores = user_emb @ item_emb.T
        scores[torch.from_numpy(train[:, 0]), torch.from_numpy(train[:, 1])] = -float("inf")
        top = scores.topk(a.k, dim=1).indices.numpy()
    test_sets = [set() for _ in range(n_users)]
    for u, i in test:
        test_sets[u].add(i)
    recall, ndcg, n_eval = 0.0, 0.0, 0
    discounts = 1.0 / np.log2(np.arange(2, a.k + 2))
    for u in range(n_users):
        t = test_sets[u]
        if not t:
            continue
        hits = np.array([i in t for i in top[u]], dtype=float)
        recall += hits.sum() / len(t)
        ndcg += (hits * discounts).sum() / discounts[: min(a.k, len(t))].sum()
        n_eval += 1
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} ({a.threads} threads)",
        f"recall@{a.k}": recall / n_eval,
        f"ndcg@{a.k}": ndcg / n_eval,
        "train_seconds": train_seconds,
        "positives_per_second": len(train) * a.epochs / train_seconds,
    }))


if __name__ == "__main__":
    main()
