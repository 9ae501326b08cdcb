"""The general (non-symmetric) eigendecomposition: ``fw.linalg.eig`` / ``eigvals``
(``torch.linalg.eig`` semantics), one registered op ``linalg_eig`` with a NumPy/LAPACK
kernel (geev, in ``framework/backends/cpu_linalg.py``).

The results are complex whatever the input (float32 and complex64 -> complex64, float64
and complex128 -> complex128): eigenvalues ``(*, n)`` in LAPACK's order and eigenvectors
``(*, n, n)`` as columns of norm 1 (LAPACK makes the largest component of each real;
eigenvectors are unique only up to a phase, as PyTorch warns).

The VJP is PyTorch's ``linalg_eig_backward``: with ``E[i, j] = conj(L_j - L_i)`` off the
diagonal,

    gA = V^-H (P / E + diag(gL)) V^H,   P = V^H gV - V^H V diag(Re(diag(V^H gV)))

(``P`` off the diagonal; the diagonal is ``gL``), the real part for a real ``A``. A loss
that depends on the eigenvectors' phases (``Im(diag(V^H gV))`` not ~0) is ill-defined and
raises, as in PyTorch; the gradient needs distinct eigenvalues.
"""

# ruff: noqa: N803, N806  (PyTorch's names: A, L, V)
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import dtypes
from .._state import tls
from ..errors import AutogradError, ShapeError
from ..tensor import Tensor
from .linalg import matmul
from .linalg_ops import LINALG, check_matrix, solve_matrix
from .math_extra import diag_embed, diagonal
from .pointwise import where
from .registry import apply, register

EigResult = namedtuple("eig", ["eigenvalues", "eigenvectors"])

def _check(A, fn):
    """A float or complex (batch of) square matrix, with PyTorch's message otherwise."""
    check_matrix(A, fn, square=False, complex_ok=True)
    if isinstance(A.shape[-1], int) and isinstance(A.shape[-2], int) \
            and A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{fn}: A must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices")
    return A


def _eig_meta(A):
    _check(A, "linalg.eig")
    ct = A.dtype if A.dtype.is_complex else A.dtype.to_complex()
    return (A.shape[:-1], ct), (A.shape, ct)


def _eig_vjp(grads, args, out):
    gL, gV = grads
    (A,) = args
    L, V = out
    Vh = V.mH
    VhgV = matmul(Vh, gV)
    d = diagonal(VhgV, 0, -2, -1)
    if tls.tracer is None:
        im = np.abs(d.imag.detach()._host_array("linalg_eig_backward"))
        if im.size and im.max() > 1e-2:  # torch: allclose(Im, 0, rtol=atol=1e-2)
            raise AutogradError(
                "linalg_eig_backward: The eigenvectors in the complex case are specified up "
                "to multiplication by e^{i phi}. The specified loss function depends on this "
                "quantity, so it is ill-defined.")
    P = VhgV - matmul(Vh, V * d.real.unsqueeze(-2))
    Lc = L.conj()
    E = Lc.unsqueeze(-2) - Lc.unsqueeze(-1)  # E[i, j] = conj(L_j - L_i)
    n = L.shape[-1]
    from ..creation import eye
    off = ~eye(n, dtype=dtypes.bool_, device=L.device)
    inner = where(off, P / where(off, E, 1.0), 0.0) + diag_embed(gL)
    gA = solve_matrix(Vh, matmul(inner, Vh))
    return (gA if A.dtype.is_complex else gA.real,)


EIG = register("linalg_eig", LINALG, _eig_meta, vjp=_eig_vjp, num_outputs=2,
               saves_output=True, saves_args=(), complex_ok=True)


def eig(A):
    """``(eigenvalues, eigenvectors)`` of each square matrix of ``A (*, n, n)``, real or
    complex, as complex tensors (``torch.linalg.eig``): ``A V = V diag(L)``, eigenvectors
    of norm 1 as columns, unique only up to a phase (a loss of them must not depend on it).
    Differentiable for distinct eigenvalues."""
    _check(A, "linalg.eig")
    return EigResult(*apply(EIG, A))


def eigvals(A) -> Tensor:
    """The eigenvalues of each square matrix of ``A`` (complex; ``torch.linalg.eigvals``);
    the gradient is ``V^-H diag(gL) V^H``."""
    _check(A, "linalg.eigvals")
    return apply(EIG, A)[0]


__all__ = ["EIG", "EigResult", "eig", "eigvals"]
