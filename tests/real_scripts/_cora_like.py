"""A small random graph written in Cora's file format, for the gcn and gat ports."""

import os

import numpy as np

CLASSES = np.array(["Case_Based", "Neural_Networks", "Theory"])


def write_cora(path, n=40, n_feat=12, seed=0):
    """A Cora-format graph: ``n`` nodes with sparse 0/1 features that hint at the class
    (one of four class-specific words is always on) and mostly same-class citations.
    Node 0 cites nobody and has no features, to exercise the script's inf -> 0 guards."""
    rng = np.random.RandomState(seed)
    os.makedirs(path, exist_ok=True)
    labels = rng.randint(0, len(CLASSES), n)
    ids = rng.permutation(np.arange(1000, 1000 + 5 * n))[:n]
    feats = (rng.rand(n, n_feat) < 0.2).astype(int)
    for i in range(1, n):
        feats[i, labels[i] * 4 + rng.randint(0, 4)] = 1
    feats[0] = 0
    with open(os.path.join(path, "cora.content"), "w") as fh:
        for i in range(n):
            fh.write("\t".join([str(ids[i])] + [str(v) for v in feats[i]] + [CLASSES[labels[i]]])
                     + "\n")
    with open(os.path.join(path, "cora.cites"), "w") as fh:
        for i in range(1, n):
            for j in range(1, n):
                p = 0.15 if labels[i] == labels[j] else 0.02
                if i != j and rng.rand() < p:
                    fh.write(f"{ids[i]}\t{ids[j]}\n")
    return ids, feats, labels
