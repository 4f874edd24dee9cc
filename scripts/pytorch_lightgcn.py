"""A plain PyTorch LightGCN training loop, the reference for nsbench's LightGCN side by side.

Follows the LightGCN reference code (He et al. 2020, gusye1234/LightGCN-PyTorch): embeddings N(0, 0.1),
the symmetric-normalised bipartite adjacency as a torch sparse COO tensor, K layers of torch.sparse.mm
per batch, the layer mean, BPR with one uniform negative the user has not interacted with, L2 on the
batch's layer-0 rows (weight x (|u|^2 + |i|^2 + |j|^2) / 2 / batch), Adam. Evaluation: full ranking of
the validation and test splits with training items set to -inf (validation items rank as non-relevant on
test), blocks of users, torch.topk; Recall and NDCG at 10, 20, 40. Input: LightGCN's adjacency files
(`user item item ...`). Prints JSON with training pairs/s, evaluation seconds and the test metrics.
  python3 scripts/pytorch_lightgcn.py --dir ../shared/datasets/ml-1m-implicit --epochs 5 --threads 1
"""
import argparse
import json
import math
import time

import numpy as np
import torch


def load(path):
    users, items = [], []
    for line in open(path):
        parts = line.split()
        if len(parts) < 2:
            continue
        u = int(parts[0])
        for i in parts[1:]:
            users.append(u)
            items.append(int(i))
    return np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--eval-block", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    tr_u, tr_i = load(f"{a.dir}/train.txt")
    va_u, va_i = load(f"{a.dir}/valid.txt")
    te_u, te_i = load(f"{a.dir}/test.txt")
    n_users = int(max(tr_u.max(), va_u.max(), te_u.max())) + 1
    n_items = int(max(tr_i.max(), va_i.max(), te_i.max())) + 1
    n = n_users + n_items

    # D^-1/2 A D^-1/2 of the bipartite training graph, as the reference code builds it.
    rows = np.concatenate([tr_u, tr_i + n_users])
    cols = np.concatenate([tr_i + n_users, tr_u])
    deg = np.bincount(rows, minlength=n).astype(np.float32)
    inv = np.zeros(n, dtype=np.float32)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    adj = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])),
                                  torch.from_numpy(inv[rows] * inv[cols]), (n, n)).coalesce()

    emb = torch.nn.Parameter(torch.randn(n, a.dim) * 0.1)
    opt = torch.optim.Adam([emb], lr=a.lr)
    positives = [set() for _ in range(n_users)]
    for u, i in zip(tr_u, tr_i):
        positives[u].add(int(i))

    def propagate():
        layers = [emb]
        x = emb
        for _ in range(a.layers):
            x = torch.sparse.mm(adj, x)
            layers.append(x)
        return torch.stack(layers).mean(0)

    train_seconds, losses = 0.0, []
    for _ in range(a.epochs):
        order = rng.permutation(len(tr_u))
        start = time.perf_counter()
        total = 0.0
        for s in range(0, len(order), a.batch):
            idx = order[s:s + a.batch]
            u, i = tr_u[idx], tr_i[idx]
            j = rng.integers(0, n_items, len(idx))
            for r in range(len(idx)):  # the reference code's rejection of known positives
                while int(j[r]) in positives[u[r]]:
                    j[r] = rng.integers(0, n_items)
            ut, it, jt = torch.from_numpy(u), torch.from_numpy(i + n_users), torch.from_numpy(j + n_users)
            final = propagate()
            pu, pi, pj = final[ut], final[it], final[jt]
            loss = torch.nn.functional.softplus((pu * pj).sum(1) - (pu * pi).sum(1)).mean()
            reg = (emb[ut].square().sum() + emb[it].square().sum() + emb[jt].square().sum()) / 2 / len(idx)
            opt.zero_grad()
            (loss + a.l2 * reg).backward()
            opt.step()
            total += loss.item() * len(idx)
        train_seconds += time.perf_counter() - start
        losses.append(total / len(order))

    ks = (10, 20, 40)
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    start = time.perf_counter()
    with torch.no_grad():
        final = propagate()
        users, items = final[:n_users], final[n_users:]
        results = {}
        for split, (su, si) in (("valid", (va_u, va_i)), ("test", (te_u, te_i))):
            targets = [set() for _ in range(n_users)]
            for u, i in zip(su, si):
                targets[u].add(int(i))
            evaluated = [u for u in range(n_users) if targets[u]]
            sums = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}
            for b in range(0, len(evaluated), a.eval_block):
                block = evaluated[b:b + a.eval_block]
                scores = users[block] @ items.T
                r = [row for row, u in enumerate(block) for _ in positives[u]]
                c = [i for u in block for i in positives[u]]
                scores[r, c] = -math.inf
                top = scores.topk(max(ks), dim=1).indices.numpy()
                for row, u in enumerate(block):
                    t = targets[u]
                    hits = np.array([int(i) in t for i in top[row]], dtype=float)
                    for k in ks:
                        sums[f"recall@{k}"] += hits[:k].sum() / len(t)
                        ideal = discounts[:min(k, len(t))].sum()
                        sums[f"ndcg@{k}"] += (hits[:k] * discounts[:k]).sum() / ideal
            results[split] = {m: v / len(evaluated) for m, v in sums.items()}
    eval_seconds = time.perf_counter() - start
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} ({a.threads} thread(s))",
        "epochs": a.epochs, "loss": losses,
        "train_seconds": train_seconds,
        "positives_per_second": len(tr_u) * a.epochs / train_seconds,
        "eval_seconds": eval_seconds,
        **results["test"],
    }))


if __name__ == "__main__":
    main()
