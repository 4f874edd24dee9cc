"""Dynamic negative sampling written with torch alone: the candidates drawn from the cell's seeded
`generator` and the known positives redrawn through `context.is_known`, the scores computed from the
embeddings. The same method as dns.py, for a sampler that needs its own draws or its own scores; it is
slower, since the (B, k·M, D) gather runs in Python's torch (see README, "Samplers written in Python")."""
import torch


class DnsTorch:
    def __init__(self, n_items, candidates=10):
        self.n_items = n_items
        self.candidates = candidates

    def sample(self, queries, positives, k, generator, context):
        rows, m = queries.shape[0], self.candidates
        drawn = torch.randint(self.n_items, (rows, k * m), generator=generator)
        for _ in range(8):  # rejection rounds, as BPR redraws a known positive
            known = context.is_known(queries, drawn)
            if not bool(known.any()):
                break
            drawn = torch.where(known, torch.randint(self.n_items, drawn.shape, generator=generator), drawn)
        if context.similarity != "dot":
            scores = context.score(drawn)
        else:
            items = context.item_embeddings[drawn]  # (B, k·M, D)
            scores = torch.bmm(items, context.query_embeddings.unsqueeze(2)).squeeze(2)
        best = scores.view(rows, k, m).argmax(dim=-1, keepdim=True)
        return drawn.view(rows, k, m).gather(-1, best).squeeze(-1)
