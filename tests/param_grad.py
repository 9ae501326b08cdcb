"""Finite differences for tests: the gradient of a scalar loss with respect to a parameter,
and the Jacobian of a NumPy function."""

import numpy as np

import framework as fw


def numeric_param_grad(p, loss, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` (a Python float) in each element of the float64
    parameter ``p``; ``p`` is restored afterwards."""
    base = p.detach().numpy().copy()
    num = np.zeros(base.shape)
    for i in range(base.size):
        vals = []
        for sgn in (1, -1):
            pert = base.copy()
            pert.reshape(-1)[i] += sgn * eps
            with fw.no_grad():
                p.copy_(fw.tensor(pert, dtype=fw.float64))
                vals.append(loss())
        num.reshape(-1)[i] = (vals[0] - vals[1]) / (2 * eps)
    with fw.no_grad():
        p.copy_(fw.tensor(base, dtype=fw.float64))
    return num


def numeric_jacobian(f, x0: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of the NumPy function ``f`` at the float64 array ``x0``:
    shape ``f(x0).shape + x0.shape`` (the gradient, for a scalar ``f``)."""
    out0 = np.asarray(f(x0))
    jac = np.zeros(out0.shape + x0.shape)
    it = np.nditer(x0, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        jac[(...,) + i] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * eps)
    return jac
