"""Draw rates of the numpy and torch equivalents of nsbench's uniform and popularity samplers, one core.

Prints JSON: draws per second for numpy's rng.integers, numpy's rng.choice(p=...) and torch.multinomial
over a 1M-item Zipf pool with popularity^0.75 (the pool of `cargo bench --bench samplers`)."""
import json
import time

import numpy as np
import torch

torch.set_num_threads(1)
N = 1_000_000


def rate(draw, count, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        draw()
        best = min(best, time.perf_counter() - t)
    return count / best


rng = np.random.default_rng(0)
counts = np.ceil(1e6 / np.arange(1, N + 1))  # Zipf: rank r has ceil(1e6 / r) interactions
p = (counts + 1.0) ** 0.75
p /= p.sum()
pt = torch.from_numpy(p)
print(json.dumps({
    "numpy_integers": rate(lambda: rng.integers(0, N, size=4096 * 256), 4096 * 256, 10),
    "numpy_choice_p": rate(lambda: rng.choice(N, size=1_000_000, p=p), 1_000_000, 3),
    "torch_multinomial": rate(lambda: torch.multinomial(pt, 1_000_000, replacement=True), 1_000_000, 3),
    "numpy": np.__version__,
    "torch": torch.__version__,
}))
