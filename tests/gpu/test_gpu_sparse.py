"""Sparse tensors on device "cuda": the parts move with ``.to("cuda")``, fw.sparse.mm runs
spmm_coo's decomposition through the Triton codegen (forward and both gradients),
conversions and softmax stay on the device, and an Embedding(sparse=True) trained with
SparseAdam on the device matches the same run on the CPU."""

import numpy as np

import framework as fw
from framework import nn, optim

IDX = [[0, 2, 1, 2, 0], [1, 0, 3, 0, 1]]


def _np(t):
    return t.detach().cpu().numpy()


def test_sparse_parts_move_with_the_tensor():
    s = fw.sparse_coo_tensor(IDX, [1.0, 2.0, 3.0, 4.0, 5.0], (3, 4)).to("cuda")
    assert s.device.type == "cuda" and s._indices().device.type == "cuda"
    c = s.to_sparse_csr()
    assert c.device.type == "cuda" and c.crow_indices().device.type == "cuda"
    np.testing.assert_allclose(_np(c.to_dense()), _np(s.cpu().to_dense()))
    np.testing.assert_allclose(_np(s.coalesce().to_dense()), _np(s.to_dense()))
    assert s.cpu().device.type == "cpu"


def test_mm_and_gradients_on_device_match_cpu():
    g = np.random.default_rng(0)
    vals, d, up = g.standard_normal(5), g.standard_normal((4, 3)), g.standard_normal((3, 3))
    results = {}
    for dev in ("cpu", "cuda"):
        s = fw.sparse_coo_tensor(IDX, fw.tensor(vals, dtype=fw.float32), (3, 4)).to(dev)
        s.requires_grad_()
        dt = fw.tensor(d, dtype=fw.float32, device=dev, requires_grad=True)
        out = fw.sparse.mm(s, dt)
        assert out.device.type == dev
        out.backward(fw.tensor(up, dtype=fw.float32, device=dev))
        results[dev] = (_np(out), _np(dt.grad), _np(s.grad._values()))
    for a, b in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_softmax_and_elementwise_on_device():
    x = fw.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.5]])
    s_cpu, s_gpu = x.to_sparse(), x.to("cuda").to_sparse()
    np.testing.assert_allclose(_np(fw.sparse.softmax(s_gpu, 1).to_dense()),
                               _np(fw.sparse.softmax(s_cpu, 1).to_dense()), rtol=1e-6)
    np.testing.assert_allclose(_np((s_gpu * x.to("cuda") + s_gpu).to_dense()),
                               _np((s_cpu * x + s_cpu).to_dense()), rtol=1e-6)


def test_sparse_embedding_with_sparse_adam_on_device():
    weights = {}
    for dev in ("cpu", "cuda"):
        fw.manual_seed(0)
        emb = nn.Embedding(8, 2, sparse=True).to(dev)
        opt = optim.SparseAdam(emb.parameters(), lr=0.1)
        for rows in ([1, 3, 1], [2, 3]):
            opt.zero_grad()
            emb(fw.tensor(rows, device=dev)).pow(2).sum().backward()
            assert emb.weight.grad._values().device.type == dev
            opt.step()
        weights[dev] = _np(emb.weight)
    np.testing.assert_allclose(weights["cuda"], weights["cpu"], rtol=1e-5, atol=1e-6)
