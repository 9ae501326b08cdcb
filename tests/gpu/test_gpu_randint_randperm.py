"""``randint`` / ``randperm`` on the cuda device: drawn from the generator's Philox stream,
in range, and re-drawn by a compiled function on every call."""

import numpy as np

import framework as fw


def test_randint_and_randperm_on_cuda():
    fw.manual_seed(0)
    r = fw.randint(-3, 4, (500,), device="cuda")
    assert r.device.type == "cuda" and r.dtype == fw.int64
    v = r.cpu().numpy()
    assert v.min() == -3 and v.max() == 3
    p = fw.randperm(9, device="cuda", dtype=fw.int32)
    assert p.device.type == "cuda" and p.dtype == fw.int32
    assert sorted(p.cpu().tolist()) == list(range(9))


def test_compiled_randint_is_redrawn_on_cuda():
    """(As for randn, the compiled Triton graph's draws are not eager's on this device.)"""
    def f(x):
        return (x + fw.randint(0, 1000, x.shape, device=x.device),
                x[fw.randperm(16, device=x.device)])

    cf = fw.compile(f, mode="always")
    x = fw.arange(16.0, device="cuda")
    outs = [[t.cpu().numpy() for t in cf(x)] for _ in range(3)]
    for a, p in outs:
        d = a - np.arange(16)
        assert d.min() >= 0 and d.max() <= 999 and (d == np.floor(d)).all()
        assert sorted(p.tolist()) == list(range(16))
    assert len({tuple(a) for a, _ in outs}) == 3 and len({tuple(p) for _, p in outs}) == 3
    assert cf.stats()["captures"] == 1
