# The bridge between nsbench and a sampler class written in Python: loads the class, calls it once per
# batch under torch.no_grad() with a seeded generator, and checks what it returns before nsbench reads it.
import importlib.util

import torch

# What sample() may return in a dict, and the dtype each must have.
ANSWER = {
    "ids": "int",  # (B, k) candidate ids
    "embeddings": "float",  # (B, k, D) negative embeddings, instead of ids (constants: no gradient)
    "origin": "int",  # (B, k) the ids embedding negatives were made from (for the diagnostics)
    "weights": "float",  # (B, k) each negative's loss weight relative to an ordinary one (1)
    "log_q": "float",  # (B, k) log proposal probability, for the logQ correction under softmax
    "valid": "bool",  # (B, k) False: the slot is not a negative
}


def load(path, cls, params, n_items, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, cls):
        raise AttributeError(f"{path} has no class {cls!r}")
    return getattr(module, cls)(n_items=n_items, **params)


def _check(name, t, rows, k, kind):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"sample() returned {name} of type {type(t).__name__}, expected a torch.Tensor")
    shape = tuple(t.shape)
    if shape[:2] != (rows, k) or len(shape) != (3 if name == "embeddings" else 2):
        want = "(B, k, D)" if name == "embeddings" else "(B, k)"
        raise ValueError(f"sample() returned {name} of shape {shape}, expected {want} = ({rows}, {k}{', D' if name == 'embeddings' else ''})")
    floating, boolean = t.dtype.is_floating_point, t.dtype == torch.bool
    if kind == "float" and not floating:
        raise TypeError(f"sample() returned {name} of dtype {t.dtype}, expected a floating dtype")
    if kind == "int" and (floating or boolean or t.is_complex()):
        raise TypeError(f"sample() returned {name} of dtype {t.dtype}, expected an integer dtype")
    if kind == "bool" and not boolean:
        raise TypeError(f"sample() returned {name} of dtype {t.dtype}, expected torch.bool")
    if floating and not bool(torch.isfinite(t).all()):
        raise ValueError(f"sample() returned {name} with NaN or inf")


def call(sampler, queries, positives, k, seed, context):
    """The sampler's answer for one batch, as a tuple in ANSWER's order (None where absent)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        result = sampler.sample(queries, positives, k, generator, context)
    if not isinstance(result, dict):
        result = {"ids": result}
    unknown = sorted(set(result) - set(ANSWER))
    if unknown:
        raise ValueError(f"sample() returned the keys {unknown}; allowed: {sorted(ANSWER)}")
    if (result.get("ids") is None) == (result.get("embeddings") is None):
        raise ValueError("sample() must return ids or embeddings: exactly one of the two")
    rows = queries.shape[0]
    for name, kind in ANSWER.items():
        if result.get(name) is not None:
            _check(name, result[name], rows, k, kind)
    return tuple(result.get(name) for name in ANSWER)
