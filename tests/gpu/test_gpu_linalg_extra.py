"""The second half of ``fw.linalg`` on device "cuda" (simulated without a GPU): the
triangular solve, LU, matrix exponential and ``*_ex`` kernels run on a host copy and their
results (and gradients) come back to the device; ``orthogonal`` trains there."""

import numpy as np

import framework as fw
from tests.linalg_helpers import random_matrix

L = fw.linalg


def _mat(shape, shift=0.0, seed=0):
    return random_matrix(shape, shift, np.float32, seed)


def test_extra_linalg_on_device_matches_cpu():
    A, B = _mat((2, 3, 3), 3.0), _mat((2, 3, 2), seed=1)

    def run(device):
        a = fw.tensor(A, device=device, requires_grad=True)
        b = fw.tensor(B, device=device)
        LU, piv = L.lu_factor(a)
        outs = [L.solve_triangular(a, b, upper=True), LU, L.lu_solve(LU, piv, b),
                L.matrix_exp(a * 0.2), L.inv_ex(a).inverse, L.cond(a, 1)]
        sum(o.sum() for o in outs).backward()
        assert piv.device.type == device and piv.dtype is fw.int32
        return [o.detach().cpu().numpy() for o in outs] + [a.grad.cpu().numpy()]
    dev, cpu = run("cuda"), run("cpu")
    for i, (d, c) in enumerate(zip(dev, cpu)):
        np.testing.assert_allclose(d, c, rtol=2e-4, atol=2e-4, err_msg=str(i))


def test_orthogonal_parametrization_on_device():
    fw.manual_seed(0)
    m = fw.nn.utils.parametrizations.orthogonal(fw.nn.Linear(3, 3)).to("cuda")
    opt = fw.optim.SGD(m.parameters(), lr=0.1)
    loss = m(fw.randn(4, 3, device="cuda")).pow(2).sum()
    loss.backward()
    opt.step()
    W = m.weight.detach()
    assert W.device.type == "cuda"
    np.testing.assert_allclose((W.mT @ W).cpu().numpy(), np.eye(3), atol=1e-5)
