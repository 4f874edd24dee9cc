"""Samplers that break one promise each, for `nsbench check-sampler`'s tests."""
import torch


class ReturnsPositive:
    """Draws uniformly but puts the positive itself in the first slot."""

    def __init__(self, n_items):
        self.n_items = n_items

    def sample(self, queries, positives, k, generator, context):
        ids = torch.randint(self.n_items, (queries.shape[0], k), generator=generator)
        ids[:, 0] = positives
        return ids


class IgnoresSeed:
    """Uses a generator of its own, seeded once: the same draws whatever the cell's stream."""

    def __init__(self, n_items):
        self.n_items = n_items

    def sample(self, queries, positives, k, generator, context):
        mine = torch.Generator().manual_seed(0)
        ids = torch.randint(self.n_items, (queries.shape[0], k), generator=mine)
        return torch.where(context.is_known(queries, ids), torch.zeros_like(ids), ids)


class WrongShape:
    """Returns k + 1 negatives per positive."""

    def __init__(self, n_items):
        self.n_items = n_items

    def sample(self, queries, positives, k, generator, context):
        return torch.randint(self.n_items, (queries.shape[0], k + 1), generator=generator)


class Raises:
    """Fails inside the user's code."""

    def __init__(self, n_items):
        self.n_items = n_items

    def sample(self, queries, positives, k, generator, context):
        return self.missing_method(queries)
