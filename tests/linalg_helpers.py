"""Random matrices and comparisons shared by the ``fw.linalg`` tests (the test modules,
their OpInfo records and the GPU checks)."""

import numpy as np

import framework as fw

G = np.random.default_rng(0)  # the stream random_matrix draws from without a seed


def random_matrix(shape, shift=0.0, dtype=np.float64, seed=None) -> np.ndarray:
    """Standard-normal values of ``shape`` as ``dtype`` (a NumPy or framework dtype), drawn
    from a generator seeded with ``seed`` (default: the shared stream :data:`G`); ``shift``
    adds ``shift * I`` over the last two dims, which keeps square matrices well
    conditioned."""
    a = (G if seed is None else np.random.default_rng(seed)).standard_normal(shape)
    if shift:
        a = a + shift * np.eye(shape[-1])
    return a.astype(getattr(dtype, "np", dtype))


def as_tensor(a, grad=False) -> fw.Tensor:
    """``fw.tensor(a)``, requiring grad when ``grad``."""
    return fw.tensor(a, requires_grad=grad)


def assert_close(got, want, tol=1e-10) -> None:
    """``got`` (a tensor or array-like) equals ``want`` to ``tol``, relative and absolute."""
    got = got.detach().numpy() if isinstance(got, fw.Tensor) else np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
