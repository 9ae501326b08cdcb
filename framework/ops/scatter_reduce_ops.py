"""``scatter_reduce`` / ``index_reduce``: scatter with a reduction (sum, prod, mean, amax,
amin) into a tensor.

``scatter_reduce`` (attrs ``dim``, ``reduce``, ``include_self``) is the one registered op;
``index_reduce`` expands its 1-D index along the other dims and calls it. Semantics are
PyTorch's:

- positions no index points at keep the input's value;
- ``include_self=False``: the input's value at a written position takes no part in the
  reduction (the kernels first write the reduction's identity there);
- ``mean`` divides by the number of values reduced (the input's own value counted when
  ``include_self``); integer dtypes use floor division, as PyTorch does;
- ``amax``/``amin`` propagate NaN;
- shapes as ``scatter``: ``index.size(d) <= src.size(d)`` for every ``d`` and
  ``<= input.size(d)`` for ``d != dim`` (not checked for an empty index); indices must lie
  in ``[0, input.size(dim))`` (:class:`~framework.errors.FwIndexError` otherwise).

Gradients follow PyTorch's ``scatter_reduce_backward`` (``sum``: the gradient, gathered
for ``src``; ``mean``: divided by the counts; ``prod``: the product of the other values,
exact with zeros; ``amax``/``amin``: split evenly among the values equal to the result).
One deliberate difference: with ``include_self=False``, PyTorch's amax/amin rule still
counts an input value that happens to equal the result when it splits the gradient (so
``src`` gets half), although that value took no part in the reduction; here only the
values that were reduced share it, which is the true derivative.
Second-order gradients through ``prod`` are not exact where two or more zeros are
scattered into one position (PyTorch raises there).
"""

from __future__ import annotations

from .. import dtypes
from ..errors import ArgumentError, DTypeError, FwIndexError, FwTypeError, ShapeError
from ..tensor import Tensor
from .indexing import GATHER, SCATTER, SCATTER_ADD
from .registry import INDEX, apply, register
from .shapes import normalize_dim

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
INDEX_REDUCTIONS = ("prod", "mean", "amax", "amin")


def _is_int(s) -> bool:
    return isinstance(s, int)


def _nonempty(shape) -> tuple:
    """PyTorch's ``ensure_nonempty``: a 0-d tensor counts as one element along dim 0."""
    return tuple(shape) if len(shape) else (1,)


def _scatter_reduce_meta(x, index, src, *, dim, reduce, include_self):
    op = "scatter_reduce"
    if index.dtype.category != dtypes.INT:
        raise DTypeError(f"{op}: index must be an integer tensor (int64/int32), got "
                         f"{index.dtype.name}")
    if src.dtype is not x.dtype:
        raise DTypeError(f"{op}: expected input and src to have the same dtype, got "
                         f"{x.dtype.name} and {src.dtype.name}")
    if reduce not in REDUCTIONS:
        raise ArgumentError(f"{op}: reduce must be one of {', '.join(REDUCTIONS)}, got "
                            f"{reduce!r}")
    if reduce == "mean" and x.dtype is dtypes.bool_:
        raise DTypeError(f"{op}: reduce='mean' is not defined for bool tensors")
    n = max(len(x.shape), 1)
    if not isinstance(dim, int) or not 0 <= dim < n:
        raise ArgumentError(f"{op}: dim must be in [0, {n - 1}] after normalization, got "
                            f"{dim!r}")
    if any(_is_int(s) and s == 0 for s in index.shape):
        return x.shape, x.dtype  # an empty index writes nothing: no shape rule (PyTorch)
    xs, ix, ss = _nonempty(x.shape), _nonempty(index.shape), _nonempty(src.shape)
    if len(ix) != len(xs):
        raise ShapeError(f"{op}: index tensor must have the same number of dimensions as "
                         f"input tensor ({len(x.shape)}), got index of shape "
                         f"{list(index.shape)}")
    if len(ss) != len(ix):
        raise ShapeError(f"{op}: index tensor must have the same number of dimensions as src "
                         f"tensor ({len(src.shape)}), got index of shape {list(index.shape)}")
    for d in range(len(ix)):
        small_x = d == dim or not (_is_int(ix[d]) and _is_int(xs[d])) or ix[d] <= xs[d]
        small_s = not (_is_int(ix[d]) and _is_int(ss[d])) or ix[d] <= ss[d]
        if not (small_x and small_s):
            raise ShapeError(f"{op}: expected index {list(index.shape)} to be no larger than "
                             f"input {list(x.shape)} apart from dimension {dim} and no larger "
                             f"than src {list(src.shape)} (dimension {d})")
    return x.shape, x.dtype


# ---------------------------------------------------------------------------------------
# gradients (public ops only: traceable and differentiable again)
def _atleast_1d(t):
    return t.reshape((1,)) if t.ndim == 0 else t


def _corner(t, shape):
    """``t[:shape[0], :shape[1], ...]``: the part of ``src`` that ``index`` reads."""
    for d, (a, b) in enumerate(zip(t.shape, shape)):
        if a != b:
            t = t.narrow(d, 0, b)
    return t


def _pad_to(t, shape):
    """``t`` padded with zeros at the end of each dim up to ``shape`` (src positions that
    no index reads get a zero gradient)."""
    if tuple(t.shape) == tuple(shape):
        return t
    from .movement import pad
    pads = []
    for d in reversed(range(len(shape))):
        pads += [0, shape[d] - t.shape[d]]
    return pad(t, pads)


def _grads(g, x, index, src, out, dim, reduce, include_self):
    """(grad of input, grad of src restricted to the index's shape), all at least 1-d."""
    def gather(t):
        return apply(GATHER, t, index, dim=dim)

    def scatter_add(base, vals):
        return apply(SCATTER_ADD, base, index, vals, dim=dim)

    def written_zero(t):  # t with 0 at every position some index points at
        return apply(SCATTER, t, index, 0.0, dim=dim)

    sc = _corner(src, index.shape)
    if reduce == "sum":
        gx, gs = g, gather(g)
    elif reduce == "mean":
        from ..creation import ones_like, zeros_like
        base = ones_like(g) if include_self else zeros_like(g)
        count = scatter_add(base, ones_like(sc, dtype=g.dtype)).clamp(min=1)
        gx = g / count
        gs = gather(gx)
    elif reduce in ("amax", "amin"):
        self_is = (x == out).to(g.dtype)
        if not include_self:  # the input's value took no part: it gets no share
            self_is = written_zero(self_is)
        src_is = (sc == gather(out)).to(g.dtype)
        share = g / scatter_add(self_is, src_is)
        gx = self_is * share
        gs = src_is * gather(share)
    else:  # prod: the product of the other values, zeros included (PyTorch's rule)
        from ..creation import zeros_like
        from .indexing import masked_fill
        x_nz = masked_fill(x, x == 0, 1.0)
        others_x = apply(SCATTER_REDUCE, x_nz, index, sc, dim=dim, reduce="prod",
                         include_self=include_self)
        gx = g * others_x / x_nz
        src_zero = sc == 0
        zeros_here = gather(scatter_add(zeros_like(g), src_zero.to(g.dtype)))
        single = src_zero & (zeros_here == 1)
        others_s = apply(SCATTER_REDUCE, x, index, masked_fill(sc, single, 1.0), dim=dim,
                         reduce="prod", include_self=include_self)
        from .pointwise import where
        gs = where(single, gather(g * others_s),
                   gather(g * out) / masked_fill(sc, src_zero, 1.0))
    if not include_self:
        gx = written_zero(gx)
    return gx, gs


def _scatter_reduce_vjp(g, args, out, *, dim, reduce, include_self):
    x, index, src = args
    gx, gs = _grads(_atleast_1d(g), _atleast_1d(x), _atleast_1d(index), _atleast_1d(src),
                    _atleast_1d(out), dim, reduce, include_self)
    gs = _pad_to(gs, _nonempty(src.shape))
    return (gx.reshape(x.shape) if x.ndim == 0 else gx, None,
            gs.reshape(src.shape) if src.ndim == 0 else gs)


#: ``out = input`` with ``src`` reduced into it at ``index`` along ``dim``; kernels in
#: backends/cpu_scatter_reduce.py (CPU) and backends/cuda_index.py (CUDA, on the host).
SCATTER_REDUCE = register("scatter_reduce", INDEX, _scatter_reduce_meta,
                          vjp=_scatter_reduce_vjp, differentiable_args=(0, 2),
                          saves_output=True)


# ---------------------------------------------------------------------------------------
# public functions
def _tensor_arg(t, name, op):
    if not isinstance(t, Tensor):
        raise FwTypeError(f"{op}: expected {name} to be a Tensor, got {type(t).__name__}")


def _flag(value, name, op) -> bool:
    if not isinstance(value, (bool, int)):
        raise FwTypeError(f"{op}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_reduce(reduce, allowed, op):
    if reduce not in allowed:
        raise ArgumentError(f"{op}: reduce must be one of {', '.join(allowed)}, got "
                            f"{reduce!r}")


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True) -> Tensor:
    """Reduce ``src`` into a copy of ``input`` at ``index`` along ``dim`` (PyTorch's
    ``torch.scatter_reduce``): for dim 0, ``out[index[i][j]][j] = reduce(out[...],
    src[i][j])``.

    ``reduce`` is ``"sum"``, ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``. Positions no
    index points at keep ``input``'s value; with ``include_self=False`` the written
    positions do not start from ``input``'s value. ``mean`` divides by the number of
    values reduced (floor division for integer dtypes); ``amax``/``amin`` propagate NaN.
    ``index`` has ``input``'s number of dims, ``index.size(d) <= src.size(d)`` for every
    dim and ``<= input.size(d)`` for the others; ``src`` has ``input``'s dtype."""
    op = "scatter_reduce"
    _tensor_arg(input, "input", op)
    _tensor_arg(index, "index", op)
    _tensor_arg(src, "src", op)
    _check_reduce(reduce, REDUCTIONS, op)
    d = normalize_dim(dim, input.ndim, op)
    return apply(SCATTER_REDUCE, input, index, src, dim=d, reduce=reduce,
                 include_self=_flag(include_self, "include_self", op))


def index_reduce(input, dim, index, source, reduce, *, include_self=True) -> Tensor:
    """Reduce the slices of ``source`` into a copy of ``input`` at the positions
    ``index`` along ``dim`` (PyTorch's ``Tensor.index_reduce``): for dim 0,
    ``out[index[i]] = reduce(out[index[i]], source[i])``.

    ``reduce`` is ``"prod"``, ``"mean"``, ``"amax"`` or ``"amin"``; ``index`` is a 1-D
    integer tensor with ``source.size(dim)`` entries in ``[0, input.size(dim))``, and
    ``source`` has ``input``'s shape apart from ``dim`` and its dtype. ``include_self``,
    ``mean`` and NaN behave as in :func:`scatter_reduce`, on which this is built (the
    index is expanded along the other dims)."""
    op = "index_reduce"
    _tensor_arg(input, "input", op)
    _tensor_arg(index, "index", op)
    _tensor_arg(source, "source", op)
    _check_reduce(reduce, INDEX_REDUCTIONS, op)
    include_self = _flag(include_self, "include_self", op)
    if index.ndim > 1:
        raise FwIndexError(f"{op}: index is supposed to be a vector, got shape "
                           f"{list(index.shape)}")
    if index.dtype.category != dtypes.INT:
        raise DTypeError(f"{op}: index must be an integer tensor (int64/int32), got "
                         f"{index.dtype.name}")
    if source.dtype is not input.dtype:
        raise DTypeError(f"{op}: expected input and source to have the same dtype, got "
                         f"{input.dtype.name} and {source.dtype.name}")
    d = normalize_dim(dim, input.ndim, op)
    if source.ndim == 0 and input.ndim > 1:
        raise ShapeError(f"{op}: source must have the same number of dimensions as input "
                         f"(shape {list(input.shape)}), got a 0-d source")
    x1 = _atleast_1d(input)
    s1 = _atleast_1d(source)
    if input.ndim and s1.ndim != x1.ndim:
        raise ShapeError(f"{op}: source must have the same number of dimensions as input, "
                         f"got source of shape {list(source.shape)} and input of shape "
                         f"{list(input.shape)}")
    if input.ndim and any(_is_int(a) and _is_int(b) and a != b
                          for k, (a, b) in enumerate(zip(s1.shape, x1.shape)) if k != d):
        raise ShapeError(f"{op}: source shape must match input shape apart from dimension "
                         f"{d}, got source {list(source.shape)} and input "
                         f"{list(input.shape)}")
    n = index.shape[0] if index.ndim else 1
    if _is_int(n) and _is_int(s1.shape[d]) and n != s1.shape[d]:
        raise ShapeError(f"{op}: number of indices ({n}) should be equal to source.size(dim) "
                         f"({s1.shape[d]}) for dim {d}")
    shape = [1] * s1.ndim
    shape[d] = n
    idx = index.reshape(tuple(shape)).expand(s1.shape)
    try:
        out = apply(SCATTER_REDUCE, x1, idx, s1, dim=d, reduce=reduce,
                    include_self=include_self)
    except FwIndexError as e:  # the range check of the kernel: name this op
        raise FwIndexError(str(e).replace("scatter_reduce:", f"{op}:", 1)) from None
    return out.reshape(()) if input.ndim == 0 else out


__all__ = ["scatter_reduce", "index_reduce"]
METHODS = "scatter_reduce index_reduce"  # names of __all__ that are also Tensor methods
INPLACE_METHODS = "scatter_reduce index_reduce"  # with an in-place method (name + "_")
