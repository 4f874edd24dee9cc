"""PyKEEN's TransE on a triple data set, for the side-by-side comparison in scripts/compare-pykeen.sh.

sLCWA training with PyKEEN's basic negative sampler (one negative per positive, head or tail
corrupted), margin ranking loss (margin 1), Adam, TransE defaults (dim 50, L1, unit-norm entities);
filtered evaluation on the test triples (train and valid filtered out), realistic ranks.
Prints one JSON line: triples/s of training, MRR, Hits@1/3/10.
"""
import argparse
import json
import time

import torch
from pykeen.datasets import PathDataset
from pykeen.pipeline import pipeline


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="folder with train.txt, valid.txt, test.txt")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = PathDataset(
        training_path=f"{a.dir}/train.txt",
        validation_path=f"{a.dir}/valid.txt",
        testing_path=f"{a.dir}/test.txt",
    )
    t = time.perf_counter()
    result = pipeline(
        dataset=ds,
        model="TransE",
        model_kwargs=dict(embedding_dim=a.dim, scoring_fct_norm=1),
        loss="marginranking",
        loss_kwargs=dict(margin=1.0),
        training_loop="sLCWA",
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=1),
        optimizer="Adam",
        optimizer_kwargs=dict(lr=a.lr),
        training_kwargs=dict(num_epochs=a.epochs, batch_size=a.batch, use_tqdm=False),
        evaluation_kwargs=dict(use_tqdm=False),
        random_seed=a.seed,
        device="cpu",
    )
    total = time.perf_counter() - t
    train_seconds = result.train_seconds
    n = ds.training.num_triples * a.epochs
    m = result.metric_results
    get = lambda key: float(m.get_metric(key))
    print(json.dumps({
        "tool": "pykeen",
        "train_seconds": train_seconds,
        "triples_per_second": n / train_seconds,
        "mrr": get("both.realistic.inverse_harmonic_mean_rank"),
        "hits@1": get("both.realistic.hits_at_1"),
        "hits@3": get("both.realistic.hits_at_3"),
        "hits@10": get("both.realistic.hits_at_10"),
        "total_seconds": total,
    }))


if __name__ == "__main__":
    main()
