"""Dynamic negative sampling (Zhang et al., SIGIR 2013) in Python: for each of the k negatives, M
uniform candidates (the query's known positives redrawn), scored by the current model; the best-scored
is kept. nsbench's built-in `dns` does the same."""


class Dns:
    def __init__(self, n_items, candidates=10):
        self.n_items = n_items
        self.candidates = candidates

    def sample(self, queries, positives, k, generator, context):
        rows, m = queries.shape[0], self.candidates
        drawn = context.uniform(k * m).view(rows, k, m)  # from the cell's stream, positives redrawn
        scores = context.score(drawn.view(rows, k * m)).view(rows, k, m)
        return drawn.gather(-1, scores.max(dim=-1, keepdim=True).indices).squeeze(-1)
