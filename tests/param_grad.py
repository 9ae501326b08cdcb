"""Finite-difference gradients of a scalar loss with respect to a parameter, for tests."""

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
