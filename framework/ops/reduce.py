"""Reductions and scans: primitives ``sum/prod/amax/amin/argmax/argmin/any/all``,
``cumsum/cumprod``, and the composites built on them (mean, var, std, max/min with
indices, logsumexp, norm)."""

from __future__ import annotations

import functools
import math

from .. import dtypes
from ..dtypes import FLOAT
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor
from .pointwise import cast, where
from .registry import REDUCE, SCAN, apply, register
from .shapes import normalize_dim, normalize_dims, prod as shape_prod


def _reduced_shape(shape, dims, keepdim):
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _reduce_meta_for(name, out_dtype=None):
    def meta(x, *, dims, keepdim):
        if name in ("amax", "amin", "argmax", "argmin"):
            for d in dims:
                if x.shape[d] == 0:
                    raise ShapeError(f"{name}: expected reduction dim {d} to have non-zero size "
                                     f"(input shape {list(x.shape)})")
        return _reduced_shape(x.shape, dims, keepdim), out_dtype or x.dtype
    return meta


def _expand_back(g, x, dims, keepdim):
    """Reshape a reduced gradient so it broadcasts against ``x``."""
    if not keepdim and dims:
        g = g.reshape(_reduced_shape(x.shape, dims, True))
    return g


def _sum_vjp(g, args, out, dims, keepdim):
    x = args[0]
    return (_expand_back(g, x, dims, keepdim).expand(x.shape),)


def _prod_vjp(g, args, out, dims, keepdim):
    x = args[0]
    g = _expand_back(g, x, dims, keepdim)
    # d prod / d x_i = product of the others, computed without dividing by x_i (exact with
    # zeros): exclusive cumulative products from the left and from the right.
    flat = x
    if len(dims) != 1:
        perm = [d for d in range(x.ndim) if d not in dims] + list(dims)
        flat = x.permute(perm).reshape([x.shape[d] for d in perm if d not in dims] + [-1])
        dim = flat.ndim - 1
    else:
        dim = dims[0]
    left = _exclusive_cumprod(flat, dim, reverse=False)
    right = _exclusive_cumprod(flat, dim, reverse=True)
    others = left * right
    if len(dims) != 1:
        perm = [d for d in range(x.ndim) if d not in dims] + list(dims)
        others = others.reshape([x.shape[d] for d in perm]).permute(_inverse_perm(perm))
    return (g * others.conj() if others.dtype.is_complex else g * others,)


def _inverse_perm(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _exclusive_cumprod(x, dim, reverse):
    from .movement import pad
    if reverse:
        x = x.flip(dim)
    n = x.shape[dim]
    if n == 0:
        return x
    shifted = x.narrow(dim, 0, n - 1)
    pads = [0, 0] * (x.ndim - 1 - dim) + [1, 0]
    out = pad(shifted, pads, value=1.0).cumprod(dim)
    return out.flip(dim) if reverse else out


def _minmax_vjp(g, args, out, dims, keepdim):
    x = args[0]
    g = _expand_back(g, x, dims, keepdim)
    o = _expand_back(out, x, dims, keepdim)
    mask = (x == o).to(g.dtype)
    count = mask.sum(dim=dims, keepdim=True)
    return (g * mask / count,)


SUM = register("sum", REDUCE, _reduce_meta_for("sum"), vjp=_sum_vjp, saves_args=())
PROD = register("prod", REDUCE, _reduce_meta_for("prod"), vjp=_prod_vjp)
AMAX = register("amax", REDUCE, _reduce_meta_for("amax"), vjp=_minmax_vjp, saves_output=True)
AMIN = register("amin", REDUCE, _reduce_meta_for("amin"), vjp=_minmax_vjp, saves_output=True)
ARGMAX = register("argmax", REDUCE, _reduce_meta_for("argmax", dtypes.int64))
ARGMIN = register("argmin", REDUCE, _reduce_meta_for("argmin", dtypes.int64))
ANY = register("any", REDUCE, _reduce_meta_for("any", dtypes.bool_))
ALL = register("all", REDUCE, _reduce_meta_for("all", dtypes.bool_))


def _scan_meta(x, *, dim):
    return x.shape, x.dtype


def _cumsum_vjp(g, args, out, dim):
    return (g.flip(dim).cumsum(dim).flip(dim),)


def _cumprod_vjp(g, args, out, dim):
    x = args[0]
    if x.dtype.is_complex:  # the conjugate of the derivative (PyTorch's convention)
        return ((g * out.conj()).flip(dim).cumsum(dim).flip(dim) / x.conj(),)
    return ((g * out).flip(dim).cumsum(dim).flip(dim) / x,)


CUMSUM = register("cumsum", SCAN, _scan_meta, vjp=_cumsum_vjp, saves_args=())
CUMPROD = register("cumprod", SCAN, _scan_meta, vjp=_cumprod_vjp, saves_output=True)


# ---------------------------------------------------------------------------------------
# public functions
def _accumulating_input(x, dtype, name):
    if dtype is not None:
        return cast(x, dtypes.to_dtype(dtype))
    if x.dtype.category < FLOAT:
        return cast(x, dtypes.int64)
    return x


def _dims_arg(dim, x, name):
    if isinstance(dim, (tuple, list)) and not dim:
        dim = None  # PyTorch: an empty dim list reduces over every dim
    return normalize_dims(dim, x.ndim, name)


def sum(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (all dims by default); ints and bools accumulate in int64."""
    x = _accumulating_input(input, dtype, "sum")
    return apply(SUM, x, dims=_dims_arg(dim, x, "sum"), keepdim=keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    """Product over ``dim`` (one dim, or all)."""
    x = _accumulating_input(input, dtype, "prod")
    return apply(PROD, x, dims=_dims_arg(dim, x, "prod"), keepdim=keepdim)


def _float_input(x, name, dtype=None, complex_ok=False):
    if dtype is not None:
        return cast(x, dtypes.to_dtype(dtype))
    if x.dtype.is_complex and not complex_ok:
        raise DTypeError(f"{name}: {x.dtype.name} tensors are not supported")
    if x.dtype.category < FLOAT:
        raise DTypeError(f"{name}(): could not infer output dtype. Input dtype must be either a "
                         f"floating point or complex dtype. Got: {x.dtype.name}")
    return x


def _count(x, dims):
    return shape_prod(x.shape[d] for d in dims)


def mean(input, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    """Arithmetic mean over ``dim``."""
    x = _float_input(input, "mean", dtype, complex_ok=True)
    dims = _dims_arg(dim, x, "mean")
    if x.dtype.itemsize == 2:  # float16/bfloat16: accumulate and divide in float32
        return (sum(x, dims, keepdim, dtype=dtypes.float32) / _count(x, dims)).to(x.dtype)
    return sum(x, dims, keepdim) / _count(x, dims)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """Variance with Bessel's ``correction`` (1 by default; ``unbiased=False`` means 0)."""
    x = _float_input(input, "var")
    if correction is None:
        correction = 0 if unbiased is False else 1
    if x.dtype.itemsize == 2:  # float16/bfloat16: compute in float32, round once
        return var(cast(x, dtypes.float32), dim, keepdim=keepdim,
                   correction=correction).to(x.dtype)
    dims = _dims_arg(dim, x, "var")
    mu = mean(x, dims, keepdim=True)
    d = x - mu
    n = _count(x, dims)
    denom = n - correction
    if isinstance(denom, int) and denom <= 0:
        denom = 0.0
    return sum(d * d, dims, keepdim) / denom


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None) -> Tensor:
    """Standard deviation (square root of :func:`var`)."""
    return var(input, dim, unbiased, keepdim, correction=correction).sqrt()


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` in one call."""
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` in one call."""
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def amax(input, dim=None, keepdim=False) -> Tensor:
    """Maximum over ``dim`` (gradient shared evenly among ties)."""
    return apply(AMAX, input, dims=_dims_arg(dim if dim != () else None, input, "amax"),
                 keepdim=keepdim)


def amin(input, dim=None, keepdim=False) -> Tensor:
    """Minimum over ``dim``."""
    return apply(AMIN, input, dims=_dims_arg(dim if dim != () else None, input, "amin"),
                 keepdim=keepdim)


def _arg_reduce(op, input, dim, keepdim, name):
    if dim is None:
        flat = input.reshape(-1)
        out = apply(op, flat, dims=(0,), keepdim=False)
        return out.reshape([1] * input.ndim) if keepdim else out
    d = normalize_dim(dim, input.ndim, name)
    return apply(op, input, dims=(d,) if input.ndim else (), keepdim=keepdim)


def argmax(input, dim=None, keepdim=False) -> Tensor:
    """Index of the maximum (first one on ties), over ``dim`` or the flattened tensor."""
    return _arg_reduce(ARGMAX, input, dim, keepdim, "argmax")


def argmin(input, dim=None, keepdim=False) -> Tensor:
    """Index of the minimum."""
    return _arg_reduce(ARGMIN, input, dim, keepdim, "argmin")


class _ValuesIndices(tuple):
    """``(values, indices)`` with named fields, as ``torch.return_types.<op>``; one
    subclass per op (:meth:`named`) so it prints as PyTorch's does."""

    _op = None

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]

    @classmethod
    def named(cls, op: str) -> type:
        """The result type of ``op`` (``max``, ``sort``...), made once."""
        sub = _RETURN_TYPES.get(op)
        if sub is None:
            sub = _RETURN_TYPES[op] = type(op, (cls,), {"_op": op, "__slots__": ()})
        return sub

    def __repr__(self) -> str:
        if self._op is None:
            return tuple.__repr__(self)
        return (f"framework.return_types.{self._op}(\nvalues={self[0]!r},\n"
                f"indices={self[1]!r})")


_RETURN_TYPES: dict = {}


def _max_min(input, dim, keepdim, other, is_max):
    name = "max" if is_max else "min"
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        from .pointwise import binary
        return binary("maximum" if is_max else "minimum", input, other)
    if dim is None:
        return (amax if is_max else amin)(input)
    d = normalize_dim(dim, input.ndim, name)
    idx = (argmax if is_max else argmin)(input, d, keepdim=True)
    values = input.gather(d, idx) if input.ndim else input
    if not keepdim and input.ndim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return _ValuesIndices.named(name)((values, idx))


def max(input, dim=None, keepdim=False, *, other=None):
    """``max(x)``: the maximum; ``max(x, dim)``: (values, indices); ``max(x, y)``: maximum."""
    return _max_min(input, dim, keepdim, other, True)


def min(input, dim=None, keepdim=False, *, other=None):
    """``min(x)``, ``min(x, dim)`` -> (values, indices), or ``min(x, y)``."""
    return _max_min(input, dim, keepdim, other, False)


def any(input, dim=None, keepdim=False) -> Tensor:
    """True where any element along ``dim`` is nonzero."""
    x = input if input.dtype is dtypes.bool_ else input != 0
    return apply(ANY, x, dims=_dims_arg(dim, x, "any"), keepdim=keepdim)


def all(input, dim=None, keepdim=False) -> Tensor:
    """True where every element along ``dim`` is nonzero."""
    x = input if input.dtype is dtypes.bool_ else input != 0
    return apply(ALL, x, dims=_dims_arg(dim, x, "all"), keepdim=keepdim)


def cumsum(input, dim, *, dtype=None) -> Tensor:
    """Cumulative sum along ``dim``."""
    x = _accumulating_input(input, dtype, "cumsum")
    return apply(CUMSUM, x, dim=normalize_dim(dim, x.ndim, "cumsum")) if x.ndim else x.clone()


def cumprod(input, dim, *, dtype=None) -> Tensor:
    """Cumulative product along ``dim``."""
    x = _accumulating_input(input, dtype, "cumprod")
    return apply(CUMPROD, x, dim=normalize_dim(dim, x.ndim, "cumprod")) if x.ndim else x.clone()


def logsumexp(input, dim=None, keepdim=False) -> Tensor:
    """``log(sum(exp(x)))`` along ``dim``, computed stably."""
    x = input if input.dtype.is_floating_point else cast(input, dtypes.get_default_dtype())
    dims = _dims_arg(dim, x, "logsumexp")
    if x.numel() == 0:
        return sum(x.exp(), dims, keepdim).log()
    m = amax(x, dims, keepdim=True).detach()
    m = where(m.isinf(), 0.0, m)
    out = sum((x - m).exp(), dims, keepdim=True).log() + m
    return out if keepdim else out.reshape(_reduced_shape(x.shape, dims, False))


def norm(input, p="fro", dim=None, keepdim=False, dtype=None) -> Tensor:
    """Vector p-norm over ``dim`` (2 / "fro" by default; also 1, inf, -inf, 0, any p); the
    norm of complex input is the (real) norm of ``|z|``."""
    x = _float_input(input, "norm", dtype, complex_ok=True)
    if x.dtype.is_complex:  # |z| is real; its gradient sends g * z / |z| (0 at 0) back
        return norm(x.abs(), p, dim, keepdim)
    if x.dtype.itemsize == 2:  # float16/bfloat16: square and sum in float32, round once
        return norm(cast(x, dtypes.float32), p, dim, keepdim).to(x.dtype)
    dims = _dims_arg(dim, x, "norm")
    if p in ("fro", 2, 2.0):
        return _root_zero_grad_safe(sum(x * x, dims, keepdim), 2)
    if p == math.inf:
        return amax(x.abs(), dims, keepdim)
    if p == -math.inf:
        return amin(x.abs(), dims, keepdim)
    if p == 0:
        return sum((x != 0).to(x.dtype), dims, keepdim)
    if p == 1:
        return sum(x.abs(), dims, keepdim)
    if isinstance(p, (int, float)):
        return _root_zero_grad_safe(sum(x.abs() ** p, dims, keepdim), p)
    raise ArgumentError(f"norm: unsupported p={p!r}")


def _root_zero_grad_safe(s, p):
    """``s ** (1/p)``; where ``s`` is 0 and autograd records, the gradient is 0 (as PyTorch's
    norm backward), not ``inf * 0 = nan``: the root then reads a constant 1 instead of s."""
    root = (lambda v: v.sqrt()) if p == 2 else (lambda v: v ** (1.0 / p))
    if not s.requires_grad:
        return root(s)
    nz = s != 0
    return where(nz, root(where(nz, s, 1.0)), 0.0)


def _numpy_aliases(fn):
    """Accept NumPy's ``axis=`` / ``keepdims=`` for ``dim`` / ``keepdim``, as PyTorch's argument
    parser does for its native functions (``probs.sum(axis=1, keepdims=True)``)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
            if alias in kwargs:
                if name in kwargs:
                    raise ArgumentError(f"{fn.__name__}(): got both {name}= and its alias "
                                        f"{alias}=")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)
    return wrapper


for _name in ("sum", "prod", "mean", "var", "std", "var_mean", "std_mean", "amax", "amin",
              "argmax", "argmin", "max", "min", "any", "all", "cumsum", "cumprod", "logsumexp",
              "norm"):
    globals()[_name] = _numpy_aliases(globals()[_name])
