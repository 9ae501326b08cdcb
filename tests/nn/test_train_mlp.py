"""End-to-end: an MLP trained with a hand-written SGD loop (no fw.optim) learns a seeded,
non-linearly separable synthetic classification task to > 95% held-out accuracy."""

import numpy as np

import framework as fw
from framework import nn
from framework.nn import functional as F


def make_rings(n, rng):
    """Three classes: an inner disc and two rings, with 2 noise features."""
    radius = rng.uniform(0, 3, size=n)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    y = np.digitize(radius, [1.0, 2.0])
    keep = (np.abs(radius - 1.0) > 0.1) & (np.abs(radius - 2.0) > 0.1)  # a clear margin
    pts = np.stack([radius * np.cos(angle), radius * np.sin(angle),
                    rng.standard_normal(n) * 0.1, rng.standard_normal(n) * 0.1], 1)
    return pts[keep].astype(np.float32), y[keep].astype(np.int64)


def test_mlp_learns_rings():
    fw.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_rings(3000, rng)
    x_test, y_test = make_rings(1000, rng)
    model = nn.Sequential(nn.Linear(4, 64), nn.GELU(), nn.LayerNorm(64), nn.Linear(64, 64),
                          nn.ReLU(), nn.Dropout(0.05), nn.Linear(64, 3))
    params = list(model.parameters())
    velocity = [fw.zeros_like(p) for p in params]
    lr, momentum, batch = 0.1, 0.9, 64
    xt, yt = fw.tensor(x_train), fw.tensor(y_train)
    losses = []
    for epoch in range(8):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch):
            idx = fw.tensor(order[start:start + batch])
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            model.zero_grad()
            loss.backward()
            with fw.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(momentum).add_(p.grad)
                    p.sub_(v * lr)
            losses.append(float(loss))
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    model.eval()
    with fw.no_grad():
        pred = model(fw.tensor(x_test)).argmax(1).numpy()
    acc = (pred == y_test).mean()
    print(f"held-out accuracy {acc:.3f}")
    assert acc > 0.95, f"accuracy {acc:.3f}"


def test_compiled_training_step_matches_eager():
    """The layers are plain op calls: a captured forward + backward + update (with the
    BatchNorm running-stat mutations functionalized) gives eager's numbers."""
    import copy
    import warnings

    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8, momentum=None), nn.GELU(),
                          nn.LayerNorm(8), nn.Linear(8, 3))
    twin = copy.deepcopy(model)

    def sgd_step(net, x, y):
        loss = F.cross_entropy(net(x), y, label_smoothing=0.1)
        net.zero_grad()
        loss.backward()
        with fw.no_grad():
            for p in net.parameters():
                p.sub_(p.grad * 0.1)
        return loss

    compiled = fw.compile(lambda x, y: sgd_step(model, x, y), fullgraph=True)
    x, y = fw.randn(6, 4), fw.tensor([0, 1, 2, 0, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent graph break / eager fallback
        for _ in range(3):
            got = float(compiled(x, y))
            want = float(sgd_step(twin, x, y))
            np.testing.assert_allclose(got, want, rtol=1e-5)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(model[1].num_batches_tracked) == 3
