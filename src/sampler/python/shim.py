# The bridge between nsbench and a sampler class written in Python: loads the class, calls it once per
# batch under torch.no_grad(), checks what it returns and copies its ids (and optional weights and log q)
# into buffers nsbench owns.
import importlib.util
import math

import torch


class Context:
    """What a sampler may read of the current model and data, for one batch."""

    def __init__(self, query_embeddings, item_embeddings, similarity, known_keys, n_items):
        self.query_embeddings = query_embeddings  # (B, D)
        self.item_embeddings = item_embeddings  # (N, D)
        self.similarity = similarity  # "dot", "l1", "l2" or "modulus"
        self.known_keys = known_keys  # sorted query * N + item of every training pair (int64)
        self.n_items = n_items

    def score(self, candidates):
        """The model's score of each row's query against candidate ids (B, M) -> (B, M)."""
        u = self.query_embeddings.unsqueeze(1)
        c = self.item_embeddings[candidates]
        if self.similarity == "dot":
            return (u * c).sum(-1)
        if self.similarity == "l1":
            return -(u - c).abs().sum(-1)
        if self.similarity == "l2":
            return -(u - c).norm(dim=-1)
        half = u.shape[-1] // 2
        d = u - c
        return -(d[..., :half] ** 2 + d[..., half:] ** 2).sqrt().sum(-1)

    def is_known(self, queries, candidates):
        """Whether each candidate (B, M) is a training positive of its row's query (B)."""
        if self.known_keys.numel() == 0:
            return torch.zeros_like(candidates, dtype=torch.bool)
        keys = queries.unsqueeze(1) * self.n_items + candidates
        at = torch.searchsorted(self.known_keys, keys).clamp(max=self.known_keys.numel() - 1)
        return self.known_keys[at] == keys


def load(path, cls, params, n_items, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, cls):
        raise AttributeError(f"{path} has no class {cls!r}")
    return getattr(module, cls)(n_items=n_items, **params)


def _check(name, t, shape, floating):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"sample() returned {name} of type {type(t).__name__}, expected a torch.Tensor")
    if tuple(t.shape) != shape:
        raise ValueError(f"sample() returned {name} of shape {tuple(t.shape)}, expected {shape}")
    if floating and not bool(torch.isfinite(t).all()):
        raise ValueError(f"sample() returned {name} with NaN or inf")
    if not floating and (t.dtype.is_floating_point or t.dtype == torch.bool):
        raise TypeError(f"sample() returned {name} of dtype {t.dtype}, expected an integer dtype")


def call(sampler, queries, positives, k, seed, context, out_ids, out_weights, out_log_q):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        result = sampler.sample(queries, positives, k, generator, context)
        if isinstance(result, dict):
            ids, weights, log_q = result.get("ids"), result.get("weights"), result.get("log_q")
        else:
            ids, weights, log_q = result, None, None
        shape = (queries.shape[0], k)
        _check("ids", ids, shape, False)
        out_ids.copy_(ids)
        if weights is not None:
            _check("weights", weights, shape, True)
            out_weights.copy_(weights)
        if log_q is not None:
            _check("log_q", log_q, shape, True)
            out_log_q.copy_(log_q)
    return weights is not None, log_q is not None
