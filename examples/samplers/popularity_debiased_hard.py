"""A sampler no built-in has: hard negatives with the popularity bias taken out. Draws M uniform
candidates per negative and keeps the one with the highest score minus beta * log(1 + count), so that a
candidate is not hard merely for being popular (popular items score high under MF whatever the query).
The counts are the candidates' training frequencies (`context.item_counts`)."""
import torch


class PopularityDebiasedHard:
    def __init__(self, n_items, candidates=10, beta=0.5):
        self.n_items = n_items
        self.candidates = candidates
        self.beta = beta
        self.log_count = None

    def sample(self, queries, positives, k, generator, context):
        if self.log_count is None:
            self.log_count = torch.log1p(context.item_counts.float())
        rows = queries.shape[0]
        drawn = context.uniform(k * self.candidates)
        adjusted = context.score(drawn) - self.beta * self.log_count[drawn]
        best = adjusted.view(rows, k, self.candidates).argmax(dim=-1, keepdim=True)
        return drawn.view(rows, k, self.candidates).gather(-1, best).squeeze(-1)
