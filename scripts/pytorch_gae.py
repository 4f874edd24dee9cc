"""Graph auto-encoder (Kipf & Welling 2016) as its reference code trains it, in plain PyTorch: a two-layer
GCN encoder (Â X W0, ReLU, Â H W1; Â = D^-1/2 (A + I) D^-1/2 of the training graph, sparse), an
inner-product decoder over the whole dense adjacency, and the weighted binary cross-entropy of GAE's code
(pos_weight = non-edges / edges of A + I, times norm = N² / 2(N² − edges)), full batch, Adam. The split
is GAE's mask_test_edges (85/5/10 of the undirected edges, as many sampled non-edges for validation and
test). Prints JSON: AUC and AP on the test edges, seconds per epoch (training only).
  python3 pytorch_gae.py --cites cora.cites --content cora.content [--epochs 200] [--threads 1]"""
import argparse
import json
import time

import numpy as np
import torch

import warnings

warnings.filterwarnings("ignore", message="Sparse invariant checks")


def load(cites, content):
    ids, rows = {}, []
    for line in open(content):
        parts = line.split("\t")
        ids[parts[0]] = len(ids)
        rows.append([float(x) for x in parts[1:-1]])
    edges = set()
    for line in open(cites):
        a, b = line.split()
        if a in ids and b in ids and a != b:
            i, j = ids[a], ids[b]
            edges.add((min(i, j), max(i, j)))
    return torch.tensor(rows), np.array(sorted(edges))


def split(edges, n, rng):
    edges = edges[rng.permutation(len(edges))]
    n_test, n_valid = len(edges) // 10, len(edges) // 20
    test, valid, train = edges[:n_test], edges[n_test:n_test + n_valid], edges[n_test + n_valid:]
    known = {tuple(e) for e in edges}
    negatives = set()
    while len(negatives) < n_test:
        i, j = rng.integers(n, size=2)
        if i != j and (min(i, j), max(i, j)) not in known:
            negatives.add((min(i, j), max(i, j)))
    return train, test, np.array(sorted(negatives))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cites", required=True)
    ap.add_argument("--content", required=True)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, edges = load(a.cites, a.content)
    n = x.shape[0]
    train, test, test_neg = split(edges, n, np.random.default_rng(a.seed))
    ij = torch.tensor(np.concatenate([train, train[:, ::-1]]).T.copy())
    adj = torch.sparse_coo_tensor(ij, torch.ones(ij.shape[1]), (n, n)).coalesce()
    a_loop = (adj + torch.sparse_coo_tensor(torch.arange(n).repeat(2, 1), torch.ones(n), (n, n))).coalesce()
    deg = torch.sparse.sum(a_loop, 1).to_dense()
    d = deg.pow(-0.5)
    vals = d[a_loop.indices()[0]] * a_loop.values() * d[a_loop.indices()[1]]
    a_hat = torch.sparse_coo_tensor(a_loop.indices(), vals, (n, n)).coalesce()
    labels = a_loop.to_dense()
    pos_weight = (n * n - labels.sum()) / labels.sum()
    norm = n * n / float((n * n - labels.sum()) * 2)

    def glorot(i, o):
        r = (6.0 / (i + o)) ** 0.5
        return torch.nn.Parameter(torch.rand(i, o) * 2 * r - r)

    w0, w1 = glorot(x.shape[1], 32), glorot(32, 16)
    opt = torch.optim.Adam([w0, w1], lr=0.01)

    def encode():
        h = torch.sparse.mm(a_hat, x @ w0).relu()
        return torch.sparse.mm(a_hat, h @ w1)

    seconds = 0.0
    for _ in range(a.epochs):
        start = time.perf_counter()
        z = encode()
        logits = z @ z.t()
        loss = norm * torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - start
    with torch.no_grad():
        z = encode()
        score = lambda e: torch.sigmoid((z[e[:, 0]] * z[e[:, 1]]).sum(1)).numpy()
        s = np.concatenate([score(test), score(test_neg)])
        y = np.concatenate([np.ones(len(test)), np.zeros(len(test_neg))])
    order = np.argsort(-s)
    ranks = np.empty(len(s))
    ranks[np.argsort(s)] = np.arange(1, len(s) + 1)
    n_pos = len(test)
    auc = (ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * len(test_neg))
    hits = np.cumsum(y[order])
    ap_score = float((hits / np.arange(1, len(s) + 1))[y[order] == 1].mean())
    print(json.dumps({"impl": f"pytorch {torch.__version__} ({a.threads} thread)", "auc": float(auc),
                      "ap": ap_score, "epoch_seconds": seconds / a.epochs}))


if __name__ == "__main__":
    main()
