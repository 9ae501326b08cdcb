"""A complex gradcheck by finite differences (no torch).

PyTorch's convention: for a real loss ``L`` and an input ``z = x + iy``, ``z.grad`` is
``dL/dx + i dL/dy`` (the conjugate Wirtinger derivative ``dL/d conj(z)`` times 2); a real
input gets ``dL/dx``. The helper reduces any output to a real loss with random weights,
``L = sum(Re(out) * A + Im(out) * B)``, differentiates it with autograd, and compares each
input's gradient with central differences taken on the real and the imaginary parts
separately.
"""

from __future__ import annotations

import numpy as np

import framework as fw


def _loss_np(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    out = np.asarray(out)
    return float((out.real * a).sum() + (out.imag * b).sum())


def complex_gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check ``fn``'s gradients at ``inputs`` (NumPy arrays, complex128 or float64)."""
    rng = np.random.default_rng(seed)
    inputs = [np.array(x) for x in inputs]
    out0 = fn(*[fw.tensor(x) for x in inputs]).detach().numpy()
    a = rng.standard_normal(out0.shape)
    b = rng.standard_normal(out0.shape)

    ts = [fw.tensor(x, requires_grad=True) for x in inputs]
    out = fn(*ts)
    if out.dtype.is_complex:
        w = fw.tensor(a - 1j * b, dtype=out.dtype)
        loss = (out * w).real.sum()  # Re(out) * a + Im(out) * b
    else:
        loss = (out * fw.tensor(a, dtype=out.dtype)).sum()
    loss.backward()

    def num(i, k, delta):
        hi = [x.copy() for x in inputs]
        lo = [x.copy() for x in inputs]
        hi[i].reshape(-1)[k] += delta
        lo[i].reshape(-1)[k] -= delta
        f = (lambda arrs: _loss_np(fn(*[fw.tensor(x) for x in arrs]).detach().numpy(), a, b))
        return (f(hi) - f(lo)) / (2 * eps)

    for i, x in enumerate(inputs):
        g = ts[i].grad
        assert g is not None, f"input {i} got no gradient"
        assert g.dtype is ts[i].dtype, f"input {i}: gradient dtype {g.dtype} != {ts[i].dtype}"
        g = g.numpy().reshape(-1)
        for k in range(x.size):
            d_re = num(i, k, eps)
            np.testing.assert_allclose(g[k].real, d_re, atol=atol, rtol=rtol,
                                       err_msg=f"input {i} element {k}: d/dRe")
            if np.iscomplexobj(x):
                d_im = num(i, k, 1j * eps)
                np.testing.assert_allclose(g[k].imag, d_im, atol=atol, rtol=rtol,
                                           err_msg=f"input {i} element {k}: d/dIm")
    return True


def crandn(*shape, seed=0) -> np.ndarray:
    """A complex128 NumPy array with standard normal real and imaginary parts."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
