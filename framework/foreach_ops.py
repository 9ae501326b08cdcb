"""``torch._foreach_*``: PyTorch's ops over lists of tensors.

User code calls these private names directly (DINOv2's teacher EMA is
``torch._foreach_mul_(teacher, m); torch._foreach_add_(teacher, student, alpha=1 - m)``).
Each applies the ordinary op at every list position; there is no fused multi-tensor kernel
(under ``fw.compile`` the per-tensor ops fuse anyway). Out-of-place forms return a list of
new tensors; in-place forms (``..._``) update each tensor and return None, as PyTorch's do.

The other operand of a binary op is one Python number, a list of numbers, a list of tensors,
or one 0-d tensor (PyTorch's four overloads); ``alpha`` scales a tensor operand of
``add``/``sub``.
"""

from __future__ import annotations

from . import ops as F
from .errors import ArgumentError, FwTypeError, ShapeError
from .tensor import Tensor

def _tensors(name, xs, arg="self"):
    if not isinstance(xs, (list, tuple)) or not all(isinstance(x, Tensor) for x in xs):
        raise FwTypeError(f"{name}(): argument '{arg}' must be a list or tuple of Tensors, got "
                          f"{type(xs).__name__}")
    if not xs:
        raise ArgumentError(f"{name}(): Tensor list must have at least one tensor")
    return list(xs)


def _per_position(name, xs, other, arg="other"):
    """``other`` as one operand per position of ``xs``."""
    if isinstance(other, (list, tuple)):
        if len(other) != len(xs):
            raise ShapeError(f"{name}(): Tensor lists must have the same number of tensors, got "
                             f"{len(xs)} and {len(other)}")
        return list(other)
    if isinstance(other, Tensor) and other.ndim != 0:
        raise ShapeError(f"{name}(): a Tensor shared by every position must be 0-D, got shape "
                         f"{list(other.shape)}; pass a list for one tensor per position")
    return [other] * len(xs)


def _binary(name, fn, alpha_ok):
    def op(self, other, *, alpha=None):
        xs = _tensors(name, self)
        others = _per_position(name, xs, other)
        if alpha is not None and not alpha_ok:
            raise ArgumentError(f"{name}(): got an unexpected keyword argument 'alpha'")
        if alpha is not None and not all(isinstance(o, Tensor) for o in others):
            raise ArgumentError(f"{name}(): alpha is only supported with a list of tensors or "
                                "a 0-D tensor operand")
        kw = {} if alpha is None else {"alpha": alpha}
        return [fn(x, o, **kw) for x, o in zip(xs, others)]
    return op


def _inplace(name, functional):
    """The ``..._`` form: each tensor takes the functional result (``copy_``)."""
    def op(self, *args, **kwargs):
        xs = _tensors(name, self)
        for x, v in zip(xs, functional(xs, *args, **kwargs)):
            x.copy_(v)
    op.__name__ = name
    return op


def _unary(name, fn):
    def op(self):
        return [fn(x) for x in _tensors(name, self)]
    return op


def _lerp(self, tensors1, weight):
    xs = _tensors("_foreach_lerp", self)
    ends = _tensors("_foreach_lerp", _per_position("_foreach_lerp", xs, tensors1, "tensors1"),
                    "tensors1")
    weights = _per_position("_foreach_lerp", xs, weight, "weight")
    return [F.lerp(x, e, w) for x, e, w in zip(xs, ends, weights)]


def _pointwise3(name, fn):
    def op(self, tensor1, tensor2, value=1):
        xs = _tensors(name, self)
        t1 = _per_position(name, xs, tensor1, "tensor1")
        t2 = _per_position(name, xs, tensor2, "tensor2")
        if isinstance(value, Tensor) and value.ndim == 1:  # one scalar per position
            value = value.tolist()
        vs = _per_position(name, xs, value, "value")
        return [fn(x, a, b, value=v) for x, a, b, v in zip(xs, t1, t2, vs)]
    return op


def _norm(self, ord=2, dtype=None):
    """The ``ord``-norm of each tensor (a list of 0-d tensors)."""
    from .linalg import vector_norm
    return [vector_norm(x, ord, dtype=dtype) for x in _tensors("_foreach_norm", self)]


def _copy_(self, src, non_blocking=False):
    xs = _tensors("_foreach_copy_", self)
    for x, s in zip(xs, _tensors("_foreach_copy_", _per_position("_foreach_copy_", xs, src,
                                                                    "src"), "src")):
        x.copy_(s)


def _zero_(self):
    for x in _tensors("_foreach_zero_", self):
        x.zero_()


def _build():
    table = {}
    binaries = {"add": (F.add, True), "sub": (F.sub, True), "mul": (F.mul, False),
                "div": (F.div, False), "maximum": (F.maximum, False),
                "minimum": (F.minimum, False), "pow": (F.pow, False),
                "clamp_min": (lambda x, o: F.clamp(x, min=o), False),
                "clamp_max": (lambda x, o: F.clamp(x, max=o), False)}
    for n, (fn, alpha_ok) in binaries.items():
        table[f"_foreach_{n}"] = _binary(f"_foreach_{n}", fn, alpha_ok)
    for n in ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp",
              "expm1", "floor", "frac", "lgamma", "log", "log10", "log1p", "log2", "neg",
              "reciprocal", "round", "sigmoid", "sign", "sin", "sinh", "sqrt", "tan", "tanh",
              "trunc"):
        table[f"_foreach_{n}"] = _unary(f"_foreach_{n}", getattr(F, n))
    table["_foreach_lerp"] = _lerp
    table["_foreach_addcmul"] = _pointwise3("_foreach_addcmul", F.addcmul)
    table["_foreach_addcdiv"] = _pointwise3("_foreach_addcdiv", F.addcdiv)
    for n, fn in list(table.items()):
        table[n + "_"] = _inplace(n + "_", fn)
    table["_foreach_norm"] = _norm
    table["_foreach_copy_"] = _copy_
    table["_foreach_zero_"] = _zero_
    for n, fn in table.items():
        fn.__name__ = n
        fn.__qualname__ = n
        fn.__doc__ = fn.__doc__ or f"``torch.{n}``: the op at every position of a tensor list."
    return table


FOREACH = _build()
globals().update(FOREACH)
__all__ = sorted(FOREACH)
