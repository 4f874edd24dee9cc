"""Dynamic negative sampling (Zhang et al., SIGIR 2013) in Python: the best-scored of M uniform
candidates per negative, the query's known positives redrawn, as nsbench's built-in `dns`."""
import torch


class Dns:
    def __init__(self, n_items, candidates=10):
        self.n_items = n_items
        self.candidates = candidates

    def sample(self, queries, positives, k, generator, context):
        rows = queries.shape[0]
        drawn = torch.randint(self.n_items, (rows, k * self.candidates), generator=generator)
        # Redraw known positives (a few rounds, as rejection sampling; what is left keeps its draw).
        for _ in range(8):
            known = context.is_known(queries, drawn)
            if not bool(known.any()):
                break
            fresh = torch.randint(self.n_items, drawn.shape, generator=generator)
            drawn = torch.where(known, fresh, drawn)
        scores = context.score(drawn).view(rows, k, self.candidates)
        best = scores.argmax(dim=-1, keepdim=True)
        return drawn.view(rows, k, self.candidates).gather(-1, best).squeeze(-1)
