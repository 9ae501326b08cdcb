"""``fw.linalg`` on device "cuda" (simulated without a GPU): the LAPACK kernels run on a
host copy and their results come back to the device; composites, autograd, the errors and
``fw.compile`` (the primitives as backend steps of the GPU program) work there too."""

import numpy as np
import pytest

import framework as fw
from framework.linalg import LinAlgError
from tests.linalg_helpers import random_matrix

L = fw.linalg


def _dev(a):
    return fw.tensor(a, device="cuda")


def _mat(shape, shift=0.0, seed=0):
    return random_matrix(shape, shift, np.float32, seed)


def test_primitives_on_device():
    A = _mat((2, 3, 3), 3.0)
    B = _mat((2, 3, 2), seed=1)
    S = A @ np.swapaxes(A, -1, -2)
    outs = {"det": (L.det(_dev(A)), np.linalg.det(A)),
            "inv": (L.inv(_dev(A)), np.linalg.inv(A)),
            "solve": (L.solve(_dev(A), _dev(B)), np.linalg.solve(A, B)),
            "cholesky": (L.cholesky(_dev(S)), np.linalg.cholesky(S)),
            "eigvalsh": (L.eigvalsh(_dev(S)), np.linalg.eigvalsh(S)),
            "svdvals": (L.svdvals(_dev(B)), np.linalg.svd(B, compute_uv=False)),
            "logabsdet": (L.slogdet(_dev(A)).logabsdet, np.linalg.slogdet(A)[1]),
            "R": (L.qr(_dev(B)).R, np.linalg.qr(B)[1]),
            "pinv": (L.pinv(_dev(B)), np.linalg.pinv(B)),
            "nuc": (L.matrix_norm(_dev(A), "nuc"), np.linalg.norm(A, "nuc", axis=(-2, -1))),
            "power": (L.matrix_power(_dev(A), -2), np.linalg.matrix_power(A, -2))}
    for name, (got, want) in outs.items():
        assert got.device.type == "cuda", name
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=2e-4, atol=2e-4,
                                   err_msg=name)


def test_backward_on_device_matches_cpu():
    A = _mat((3, 3), 3.0, seed=2).astype(np.float64)

    def loss(a):
        return L.det(a) + L.inv(a).sum() + L.svdvals(a).sum() + L.eigvalsh(a + a.mT).sum()
    grads = []
    for device in ("cpu", "cuda"):
        a = fw.tensor(A, device=device, requires_grad=True)
        loss(a).backward()
        assert a.grad.device.type == device
        grads.append(a.grad.cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-9, atol=1e-9)


def test_errors_on_device():
    with pytest.raises(LinAlgError, match="linalg.inv: The diagonal element 2 is zero"):
        L.inv(_dev(np.array([[1.0, 2.0], [2.0, 4.0]], np.float32)))
    with pytest.raises(LinAlgError, match="leading minor of order 1"):
        L.cholesky(_dev(-np.eye(2, dtype=np.float32)))


def test_compiled_on_device(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def f(a):
        return L.inv(a) * 2 + L.det(a)[..., None, None], L.svdvals(a).sum(-1)
    cf = fw.compile(f, fullgraph=True, mode="always")
    a = _dev(_mat((2, 3, 3), 3.0, seed=3))
    got, want = cf(a), f(a)
    assert not cf.stats()["graph_breaks"]
    for g, w in zip(got, want):
        assert g.device.type == "cuda"
        np.testing.assert_allclose(g.cpu().numpy(), w.cpu().numpy(), rtol=1e-5, atol=1e-5)
