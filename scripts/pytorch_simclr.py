"""SimCLR and MoCo on small grey images in plain PyTorch, as nsbench's vision domain trains them: an MLP
encoder (pixels → 128 → ReLU → 64) or nsbench's CNN (--encoder cnn), and a head (64 → 64 → ReLU → 32,
L2-normalised); augmentations per view (integer shift up to ±1 px, rotation up to ±15° with nearest-pixel
sampling, Gaussian pixel noise σ 0.1 clipped to [0, 1], and with probability 0.5 a cutout square of a
quarter of the side), batched with affine_grid / grid_sample; NT-Xent at temperature 0.5. SimCLR: both
views of a batch through the network in one pass (as SimCLR's reference code), both anchors, the other
2N − 2 views negatives. MoCo: a momentum key encoder (m = 0.99) and a queue of keys (--queue) as the
negatives. Adam 1e-3. Evaluation: kNN (20 nearest training images by cosine, votes exp(cos / 0.07)) on
the encoder's features of clean images. Prints JSON: kNN accuracy, training images per second, seconds
per epoch.
  python3 pytorch_simclr.py --csv digits.csv.gz --height 8 --width 8 --scale 16 [--mode simclr|moco]
      [--encoder mlp|cnn]"""
import argparse
import copy
import gzip
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(path, scale):
    rows = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.float32)
    return torch.from_numpy(rows[:, :-1] / scale), torch.from_numpy(rows[:, -1]).long()


def stratified(y, test, rng):
    train, held = [], []
    for c in np.unique(y.numpy()):
        of = np.flatnonzero(y.numpy() == c)
        rng.shuffle(of)
        n = int(round(len(of) * test))
        held.extend(of[:n]), train.extend(of[n:])
    return torch.tensor(sorted(train)), torch.tensor(sorted(held))


def augment(x, h, w, g):
    n = x.shape[0]
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(15)
    shift = torch.randint(-1, 2, (n, 2), generator=g).float()
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin * h / w, -shift[:, 0] * 2 / w], 1),
                         torch.stack([sin * w / h, cos, -shift[:, 1] * 2 / h], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    v = F.grid_sample(x.view(n, 1, h, w), grid, mode="nearest", align_corners=False)
    v = (v + torch.randn(v.shape, generator=g) * 0.1).clamp(0, 1)
    side = max(h // 4, 1)
    cut = torch.rand(n, generator=g) < 0.5
    x0 = torch.randint(0, w - side + 1, (n,), generator=g)
    y0 = torch.randint(0, h - side + 1, (n,), generator=g)
    xs, ys = torch.arange(w).view(1, 1, w), torch.arange(h).view(1, h, 1)
    square = ((xs >= x0.view(n, 1, 1)) & (xs < (x0 + side).view(n, 1, 1))
              & (ys >= y0.view(n, 1, 1)) & (ys < (y0 + side).view(n, 1, 1)) & cut.view(n, 1, 1))
    return v.view(n, h, w).masked_fill(square, 0).view(n, h * w)


class Cnn(torch.nn.Module):
    """nsbench's `cnn` encoder: 3 x 3 convolutions to 16 and (stride 2) 32 channels, ReLU, global average
    pooling, a linear layer to 64."""

    def __init__(self, h, w):
        super().__init__()
        self.h, self.w = h, w
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(32, 64)

    def forward(self, x):
        x = F.relu(self.c1(x.view(-1, 1, self.h, self.w)))
        return self.fc(F.relu(self.c2(x)).mean((2, 3)))


class Net(torch.nn.Module):
    def __init__(self, h, w, encoder="mlp"):
        super().__init__()
        if encoder == "cnn":
            self.enc = Cnn(h, w)
        else:
            self.enc = torch.nn.Sequential(torch.nn.Linear(h * w, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64))
        self.head = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))

    def forward(self, x):
        return F.normalize(self.head(self.enc(x)), dim=1)


def knn(net, x, y, train, test):
    with torch.no_grad():
        f = F.normalize(net.enc(x), dim=1)
        sims = f[test] @ f[train].t()
        top, at = sims.topk(20, dim=1)
        votes = torch.zeros(len(test), int(y.max()) + 1).scatter_add_(1, y[train][at], (top / 0.07).exp())
        return float((votes.argmax(1) == y[test]).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--height", type=int, default=8)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--scale", type=float, default=16)
    ap.add_argument("--mode", choices=["simclr", "moco"], default="simclr")
    ap.add_argument("--encoder", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--queue", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    x, y = load(a.csv, a.scale)
    train, test = stratified(y, 0.2, np.random.default_rng(a.seed))
    h, w = a.height, a.width
    net = Net(h, w, a.encoder)
    key = copy.deepcopy(net).requires_grad_(False) if a.mode == "moco" else None
    queue = F.normalize(torch.randn(a.queue, 32, generator=g), dim=1) if key else None
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    seconds = 0.0
    for _ in range(a.epochs):
        start = time.perf_counter()
        order = train[torch.randperm(len(train), generator=g)]
        for b in range(0, len(order), a.batch):
            images = x[order[b:b + a.batch]]
            n = images.shape[0]
            if n < 2:
                continue
            if key is None:
                # Both views through the network in one pass, as SimCLR's reference code does.
                views = torch.cat([augment(images, h, w, g), augment(images, h, w, g)])
                z = net(views)
                logits = z @ z.t() / 0.5
                logits.fill_diagonal_(float("-inf"))
                target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
                loss = F.cross_entropy(logits, target)
            else:
                u = net(augment(images, h, w, g))
                with torch.no_grad():
                    k = key(augment(images, h, w, g))
                logits = torch.cat([(u * k).sum(1, keepdim=True), u @ queue.t()], 1) / 0.5
                loss = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if key is not None:
                with torch.no_grad():
                    for pk, pq in zip(key.parameters(), net.parameters()):
                        pk.mul_(0.99).add_(pq, alpha=0.01)
                    queue = torch.cat([k, queue])[: a.queue]
        seconds += time.perf_counter() - start
    print(json.dumps({"impl": f"pytorch {torch.__version__} {a.mode} {a.encoder} ({a.threads} thread)",
                      "knn": knn(net, x, y, train, test), "epoch_seconds": seconds / a.epochs,
                      "images_per_second": len(train) * a.epochs / seconds}))


if __name__ == "__main__":
    main()
