"""A sampler no built-in has: hard negatives with the popularity bias taken out. Draws M uniform
candidates per negative and keeps the one with the highest score minus beta * log(1 + count), so that a
candidate is not hard merely for being popular (popular items score high under MF whatever the query).
The counts are the candidates' training frequencies, read from the known positives once."""
import torch


class PopularityDebiasedHard:
    def __init__(self, n_items, candidates=10, beta=0.5):
        self.n_items = n_items
        self.candidates = candidates
        self.beta = beta
        self.log_count = None

    def sample(self, queries, positives, k, generator, context):
        if self.log_count is None:
            items = context.known_keys % self.n_items
            counts = torch.bincount(items, minlength=self.n_items).float()
            self.log_count = torch.log1p(counts)
        rows = queries.shape[0]
        drawn = torch.randint(self.n_items, (rows, k * self.candidates), generator=generator)
        for _ in range(8):
            known = context.is_known(queries, drawn)
            if not bool(known.any()):
                break
            drawn = torch.where(known, torch.randint(self.n_items, drawn.shape, generator=generator), drawn)
        adjusted = context.score(drawn) - self.beta * self.log_count[drawn]
        best = adjusted.view(rows, k, self.candidates).argmax(dim=-1, keepdim=True)
        return drawn.view(rows, k, self.candidates).gather(-1, best).squeeze(-1)
