"""``matmul`` (NumPy broadcasting semantics, 1-D cases included) and ``einsum``, plus
``bmm``, ``mm``, ``mv``, ``dot``, ``outer`` built on them."""

from __future__ import annotations

from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor
from .pointwise import promote, sum_to_shape
from .registry import MATMUL, apply, register
from .shapes import broadcast_shapes


def _matmul_meta(a, b):
    if a.dtype is not b.dtype:
        raise DTypeError(f"matmul: expected both operands to share a dtype, got {a.dtype.name} "
                         f"and {b.dtype.name}")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{list(a.shape)} and {list(b.shape)}")
    k1 = a.shape[-1]
    k2 = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be "
                         f"multiplied ({k1} != {k2} in the contracted dimension)")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "matmul")
    m = (a.shape[-2],) if a.ndim > 1 else ()
    n = (b.shape[-1],) if b.ndim > 1 else ()
    return batch + m + n, a.dtype


def _matmul_vjp(g, args, out):
    a, b = args
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    # the gradient in the 2-D (batched) layout of a2 @ b2
    batch = broadcast_shapes(a2.shape[:-2], b2.shape[:-2], "matmul")
    shape2 = batch + (a2.shape[-2], b2.shape[-1])
    g2 = g if g.shape == shape2 else g.reshape(shape2)
    ga = gb = None
    if a.requires_grad:
        ga = g2.matmul(b2.mT)
        ga = sum_to_shape(ga, a2.shape) if ga.shape != a2.shape else ga
        ga = ga if ga.shape == a.shape else ga.reshape(a.shape)
    if b.requires_grad:
        gb = a2.mT.matmul(g2)
        gb = sum_to_shape(gb, b2.shape) if gb.shape != b2.shape else gb
        gb = gb if gb.shape == b.shape else gb.reshape(b.shape)
    return ga, gb


MATMUL_OP = register("matmul", MATMUL, _matmul_meta, vjp=_matmul_vjp)


def matmul(input, other) -> Tensor:
    """Matrix product with batch broadcasting (``@``)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul: both arguments must be Tensors")
    if input.dtype is not other.dtype:
        input, other, _ = promote(input, other, "matmul")
    return apply(MATMUL_OP, input, other)


def mm(input, mat2) -> Tensor:
    """2-D matrix product."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    return matmul(input, mat2)


def bmm(input, mat2) -> Tensor:
    """Batched 3-D matrix product (no broadcasting)."""
    if input.ndim != 3 or mat2.ndim != 3:
        raise ShapeError(f"bmm: expected 3-D tensors, got shapes {list(input.shape)} and "
                         f"{list(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes differ: {input.shape[0]} vs {mat2.shape[0]}")
    return matmul(input, mat2)


def mv(input, vec) -> Tensor:
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D and a 1-D tensor, got {list(input.shape)} and "
                         f"{list(vec.shape)}")
    return matmul(input, vec)


def dot(input, other) -> Tensor:
    """Inner product of two 1-D tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D")
    return matmul(input, other)


def outer(input, vec2) -> Tensor:
    """Outer product of two 1-D tensors."""
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


# ---------------------------------------------------------------------------------------
def _parse_einsum(equation, n):
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: ellipsis ('...') in the equation is not supported")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = lhs.split(",")
    if len(terms) != n:
        raise ArgumentError(f"einsum: equation {equation!r} has {len(terms)} operands but "
                            f"{n} tensors were given")
    return terms, rhs


def _einsum_meta(*ops, equation):
    terms, rhs = _parse_einsum(equation, len(ops))
    sizes = {}
    for term, t in zip(terms, ops):
        if len(term) != t.ndim:
            raise ShapeError(f"einsum: operand with subscripts {term!r} has {t.ndim} dims "
                             f"(shape {list(t.shape)})")
        for c, s in zip(term, t.shape):
            if c in sizes and sizes[c] != s and 1 not in (s, sizes[c]):
                raise ShapeError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {s}")
            sizes[c] = s if c not in sizes or sizes[c] == 1 else sizes[c]
    return tuple(sizes[c] for c in rhs), ops[0].dtype


def _einsum_vjp(g, args, out, equation):
    terms, rhs = _parse_einsum(equation, len(args))
    grads = []
    for i, (term, t) in enumerate(zip(terms, args)):
        if not t.requires_grad:
            grads.append(None)
            continue
        others = [rhs] + [tm for j, tm in enumerate(terms) if j != i]
        available = set("".join(others))
        kept = "".join(c for c in dict.fromkeys(term) if c in available)
        eq = ",".join(others) + "->" + kept
        gi = einsum(eq, g, *[a for j, a in enumerate(args) if j != i])
        if kept != term:
            if len(set(term)) != len(term):
                raise NotImplementedError("einsum: gradient of repeated subscripts within one "
                                          "operand (diagonals) is not supported")
            shape = [t.shape[term.index(c)] if c in kept else 1 for c in term]
            order = [kept.index(c) for c in term if c in kept]
            gi = gi.permute(order) if order != list(range(len(order))) else gi
            gi = gi.reshape(shape).expand(t.shape)
        grads.append(gi)
    return tuple(grads)


EINSUM = register("einsum", MATMUL, _einsum_meta, vjp=_einsum_vjp)


def einsum(equation, *operands) -> Tensor:
    """Einstein summation over the operands (``"ij,jk->ik"``)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    from .. import dtypes
    from .pointwise import cast
    dt = dtypes.result_type(*[o.dtype for o in operands])
    return apply(EINSUM, *[cast(o, dt) for o in operands], equation=equation)
