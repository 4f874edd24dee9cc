"""Self-adversarial negative sampling (Sun et al., RotatE, ICLR 2019) in Python: k uniform negatives, each
weighted in the loss by softmax(alpha * score) over the k, without gradient. Weights are in units of an
ordinary negative (the loss averages weight x term over the k), so they are the softmax times k, as
nsbench's built-in `self-adversarial` returns them."""


class SelfAdversarial:
    def __init__(self, n_items, alpha=1.0):
        self.n_items = n_items
        self.alpha = alpha

    def sample(self, queries, positives, k, generator, context):
        ids = context.uniform(k)
        weights = (self.alpha * context.score(ids)).softmax(dim=1) * k
        return {"ids": ids, "weights": weights}
