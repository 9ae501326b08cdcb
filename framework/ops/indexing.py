"""Indexing: primitives ``gather``, ``scatter``, ``scatter_add``, ``index`` (advanced
indexing), ``index_put`` (functional ``x[key] = v``), and ``x[key]`` itself.

Basic indexing (ints, slices, None, Ellipsis) becomes ``slice`` + ``reshape`` views.
Advanced indexing (integer and boolean tensors) follows NumPy's rules through the
``index`` primitive, whose key is an attribute where ``TensorSlot(i)`` marks the i-th
index tensor argument.
"""

from __future__ import annotations

import operator

import numpy as np

from .. import dtypes
from .._state import tls
from ..errors import DTypeError, FwIndexError, ShapeError
from ..tensor import Tensor
from .movement import RESHAPE, SLICE, view_alias
from .pointwise import cast, promote, sum_to_shape, where
from .registry import INDEX, apply, register
from .shapes import broadcast_shapes, normalize_dim


class TensorSlot:
    """Placeholder in an index key for the ``i``-th index tensor argument."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"T{self.i}"

    def __eq__(self, other) -> bool:
        return isinstance(other, TensorSlot) and other.i == self.i

    def __hash__(self) -> int:
        return hash(("TensorSlot", self.i))


def _check_index_dtype(t, op):
    if t.dtype.category != dtypes.INT:
        raise FwIndexError(f"{op}: index tensors must be integer (int64/int32) tensors, got "
                           f"{t.dtype.name}")


def _gather_meta(x, index, *, dim):
    _check_index_dtype(index, "gather")
    if index.ndim != x.ndim and x.ndim:
        raise ShapeError(f"gather: index tensor must have the same number of dimensions as "
                         f"input tensor ({x.ndim}), got {index.ndim}")
    for d, (si, sx) in enumerate(zip(index.shape, x.shape)):
        if d != dim and isinstance(si, int) and isinstance(sx, int) and si > sx:
            raise ShapeError(f"gather: size of index {list(index.shape)} must not exceed the "
                             f"input size {list(x.shape)} at dimension {d} (dim={dim})")
    return index.shape, x.dtype


def _scatter_meta(x, index, src, *, dim):
    _check_index_dtype(index, "scatter")
    if isinstance(src, Tensor) and src.dtype is not x.dtype:
        raise DTypeError(f"scatter: expected self and src to share a dtype, got "
                         f"{x.dtype.name} and {src.dtype.name}")
    return x.shape, x.dtype


def _key_shape(x_shape, key, index_shapes):
    """Output shape of ``x[key]`` computed by NumPy on a zero-stride dummy (no memory)."""
    if not all(isinstance(s, int) for sh in (x_shape, *index_shapes) for s in sh) or any(
            hasattr(b, "free_symbols") for k in key if isinstance(k, slice)
            for b in (k.start, k.stop, k.step)):  # ``cache[:bsz]`` with a traced dynamic bsz
        return _symbolic_key_shape(x_shape, key, index_shapes)
    dummy = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=x_shape,
                                            strides=(0,) * len(x_shape))
    np_key = tuple(np.zeros(index_shapes[k.i], np.intp) if isinstance(k, TensorSlot) else k
                   for k in key)
    return dummy[np_key].shape


def _symbolic_slice_len(size, k: slice):
    if k == slice(None):
        return size
    import sympy
    a = 0 if k.start is None else (k.start + size if k.start < 0 else k.start)
    b = size if k.stop is None else (k.stop + size if k.stop < 0 else sympy.Min(k.stop, size))
    return sympy.Max(0, sympy.ceiling((b - a) / (k.step or 1)))


def _symbolic_key_shape(x_shape, key, index_shapes):
    """NumPy's advanced-indexing shape rule for sizes that are sympy expressions (traced
    dynamic dims): broadcast index dims replace the indexed dims when those are adjacent,
    else they come first."""
    from .shapes import broadcast_many
    key = tuple(key) + (slice(None),) * (len(x_shape) - len(key))
    adv = [d for d, k in enumerate(key) if not isinstance(k, slice)]
    b = broadcast_many([index_shapes[key[d].i] if isinstance(key[d], TensorSlot) else ()
                        for d in adv], "index")
    basic = [(d, _symbolic_slice_len(x_shape[d], k)) for d, k in enumerate(key)
             if isinstance(k, slice)]
    if adv and adv != list(range(adv[0], adv[-1] + 1)):
        return tuple(b) + tuple(n for _, n in basic)
    first = adv[0] if adv else len(x_shape)
    return tuple(n for d, n in basic if d < first) + tuple(b) + \
        tuple(n for d, n in basic if d > first)


def _index_meta(x, *idx, key):
    for t in idx:
        _check_index_dtype(t, "index")
    try:
        shape = _key_shape(x.shape, key, [t.shape for t in idx])
    except IndexError as e:
        raise FwIndexError(f"index: {e} (tensor shape {list(x.shape)})") from None
    return tuple(shape), x.dtype


def _index_put_meta(x, v, *idx, key, accumulate):
    target = _index_meta(x, *idx, key=key)[0]
    vshape = v.shape if isinstance(v, Tensor) else ()
    if isinstance(v, Tensor) and v.dtype is not x.dtype:
        raise DTypeError(f"index_put: value dtype {v.dtype.name} does not match tensor dtype "
                         f"{x.dtype.name}")
    got = broadcast_shapes(target, vshape, "index_put")
    if any(a != b and (isinstance(a, int) or isinstance(b, int)) for a, b in zip(got, target)) \
            or len(got) != len(target):  # symbolic sizes that met are assumed to agree
        raise ShapeError(f"index_put: shape mismatch: value tensor of shape {list(vshape)} "
                         f"cannot be broadcast to indexing result of shape {list(target)}")
    return x.shape, x.dtype


def _gather_vjp(g, args, out, dim):
    x, index = args
    zeros = g.new_zeros(x.shape)
    return (apply(SCATTER_ADD, zeros, index, g, dim=dim), None)


def _src_grad(g, index, src, dim):
    """Gradient of scatter's ``src``: gathered at ``index``, zero where src was unused."""
    if not isinstance(src, Tensor):
        return None
    gs = apply(GATHER, g, index, dim=dim)
    if gs.shape != src.shape:
        from .movement import pad
        pads = []
        for d in reversed(range(src.ndim)):
            pads += [0, src.shape[d] - index.shape[d]]
        gs = pad(gs, pads)
    return gs


def _scatter_add_vjp(g, args, out, dim):
    x, index, src = args
    return (g, None, _src_grad(g, index, src, dim))


def _scatter_vjp(g, args, out, dim):
    x, index, src = args
    gx = apply(SCATTER, g, index, 0.0, dim=dim)
    return (gx, None, _src_grad(g, index, src, dim))


def _index_vjp(g, args, out, key):
    x, idx = args[0], args[1:]
    zeros = g.new_zeros(x.shape)
    return (apply(INDEX_PUT, zeros, g, *idx, key=key, accumulate=True),) + (None,) * len(idx)


def _index_put_vjp(g, args, out, key, accumulate):
    v, idx = args[1], args[2:]
    gx = g if accumulate else apply(INDEX_PUT, g, 0.0, *idx, key=key, accumulate=False)
    gv = None
    if isinstance(v, Tensor):
        gv = sum_to_shape(apply(INDEX, g, *idx, key=key), v.shape)
    return (gx, gv) + (None,) * len(idx)


# These VJPs read only the index tensors' data (and the other args' shapes), so only the
# indices are version-checked: updating the input or value in place afterwards is fine.
GATHER = register("gather", INDEX, _gather_meta, vjp=_gather_vjp, differentiable_args=(0,),
                  saves_args=(1,))
SCATTER = register("scatter", INDEX, _scatter_meta, vjp=_scatter_vjp,
                   differentiable_args=(0, 2), saves_args=(1,))
SCATTER_ADD = register("scatter_add", INDEX, _scatter_meta, vjp=_scatter_add_vjp,
                       differentiable_args=(0, 2), saves_args=(1,))
INDEX = register("index", INDEX, _index_meta, vjp=_index_vjp, differentiable_args=(0,),
                 saves_args=lambda args, needs: tuple(range(1, len(args))))
INDEX_PUT = register("index_put", "index", _index_put_meta, vjp=_index_put_vjp,
                     differentiable_args=(0, 1),
                     saves_args=lambda args, needs: tuple(range(2, len(args))))


# ---------------------------------------------------------------------------------------
# key parsing
def _host_tensor(arr, dtype, device) -> Tensor:
    """A tensor of host data ``arr`` placed on ``device`` (wrapped on the CPU, then moved)."""
    from ..device import cpu
    t = Tensor._wrap(arr, dtype, cpu)
    return t if device.type == "cpu" else t.to(device)


def _normalize_key(x: Tensor, key):
    """Split a Python index into (basic part applied as views, advanced key, tensors)."""
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if isinstance(k, Tensor):
            if k.dtype is dtypes.bool_:
                items.append(("mask", k))
            elif k.dtype.category == dtypes.INT:
                items.append(("tensor", k))
            else:
                raise FwIndexError(f"index: tensors used as indices must be long, int, byte or "
                                   f"bool tensors, got {k.dtype.name}")
        elif isinstance(k, (list, range, np.ndarray)):  # a range is a sequence, as in torch
            arr = np.asarray(k)
            if arr.dtype == bool:
                items.append(("mask", _host_tensor(arr, dtypes.bool_, x.device)))
            elif arr.dtype.kind in "iu" or arr.size == 0:
                from .creation_ops import full  # noqa: F401
                from ..creation import tensor as make
                items.append(("tensor", make(arr.astype(np.int64), device=x.device)))
            else:
                raise FwIndexError(f"index: unsupported index list {k!r}")
        elif isinstance(k, slice) and any(isinstance(b, Tensor) for b in
                                          (k.start, k.stop, k.step)):
            # ``x[:, :t]`` with a one-element integer tensor ``t``: its value, as in torch
            # (``operator.index`` reads it: a graph break in a capture)
            items.append(("basic", slice(*(operator.index(b) if isinstance(b, Tensor) else b
                                           for b in (k.start, k.stop, k.step)))))
        elif k is None or k is Ellipsis or isinstance(k, slice):
            items.append(("basic", k))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            items.append(("basic", int(k)))
        elif isinstance(k, bool):
            items.append(("mask", _host_tensor(np.array(k), dtypes.bool_, x.device)))
        else:
            raise FwIndexError(f"index: only integers, slices (`:`), ellipsis (`...`), None and "
                               f"long or bool tensors are valid indices, got "
                               f"{type(k).__name__}")
    return items


def _dims_used(kind, k):
    if kind == "mask":
        return max(k.ndim, 1) if k.ndim else 0
    if kind == "tensor":
        return 1
    return 0 if k is None or k is Ellipsis else 1


def _expand_ellipsis(x, items):
    used = sum(_dims_used(kind, k) for kind, k in items)
    if used > x.ndim:
        raise FwIndexError(f"index: too many indices for tensor of dimension {x.ndim} "
                           f"(shape {list(x.shape)})")
    n_ell = sum(1 for kind, k in items if kind == "basic" and k is Ellipsis)
    if n_ell > 1:
        raise FwIndexError("index: an index can only have a single ellipsis ('...')")
    out = []
    for kind, k in items:
        if kind == "basic" and k is Ellipsis:
            out += [("basic", slice(None))] * (x.ndim - used)
        else:
            out.append((kind, k))
    if not n_ell:
        out += [("basic", slice(None))] * (x.ndim - used)
    return out


def _int_bound(v) -> bool:
    return v is None or isinstance(v, (int, np.integer))


def _negative(v) -> bool:
    """Whether a slice bound counts from the end. A symbolic bound whose sign sympy cannot
    decide is taken as non-negative; the compiled entry re-checks the slice's shape rule
    with every new size, so a call where it is negative captures again."""
    neg = v < 0
    if isinstance(neg, (bool, np.bool_)):
        return bool(neg)
    import sympy
    return neg is sympy.true


def _apply_basic(x: Tensor, items):
    """Apply ints/slices/None as views; return the view and the remaining advanced items."""
    starts, stops, steps = [], [], []
    new_shape = []
    rest = []
    dim = 0
    for kind, k in items:
        if kind != "basic":
            n = _dims_used(kind, k)
            for j in range(n):
                size = x.shape[dim + j]
                starts.append(0)
                stops.append(size)
                steps.append(1)
                new_shape.append(size)
            rest.append((kind, k, len(new_shape) - n))
            dim += n
            continue
        if k is None:
            new_shape.append(1)
            rest.append(("none", None, len(new_shape) - 1))
            continue
        size = x.shape[dim]
        if isinstance(k, int):
            if isinstance(size, int) and not -size <= k < size:
                raise FwIndexError(f"index {k} is out of bounds for dimension {dim} with size "
                                   f"{size}")
            k = k + size if k < 0 else k
            starts.append(k)
            stops.append(k + 1)
            steps.append(1)
        else:
            if k.step is not None and k.step <= 0:
                raise FwIndexError(f"index: step must be greater than zero, got {k.step}")
            symbolic_bound = not (_int_bound(k.start) and _int_bound(k.stop))
            if isinstance(size, int) and not symbolic_bound:
                a, b, c = k.indices(size)
                b = max(a, b)
            else:
                # a dynamic size or a symbolic bound (``pe[:x.size(0)]`` in a capture):
                # negative bounds count from the end, as k.indices() does
                a = 0 if k.start is None else (k.start + size if _negative(k.start) else k.start)
                b = size if k.stop is None else (k.stop + size if _negative(k.stop) else k.stop)
                c = k.step or 1
            starts.append(a)
            stops.append(b)
            steps.append(c)
            new_shape.append(len(range(a, b, c))
                             if isinstance(size, int) and not symbolic_bound else None)
        dim += 1
    out = x
    full = all(a == 0 and b == s and c == 1 for a, b, c, s in zip(starts, stops, steps, x.shape))
    if not full:
        out = apply(SLICE, x, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    # drop int-indexed dims, insert None dims
    final = []
    src = iter(out.shape)
    it_kinds = iter(items)
    for kind, k in it_kinds:
        if kind == "basic" and isinstance(k, int):
            next(src)
        elif kind == "basic" and k is None:
            final.append(1)
        elif kind == "mask":
            for _ in range(_dims_used(kind, k)):
                final.append(next(src))
        else:
            final.append(next(src))
    final = tuple(final)
    if final != out.shape:
        out = apply(RESHAPE, out, shape=final)
    return out, [(kind, k, pos) for kind, k, pos in rest if kind != "none"]


def _check_mask_shape(mask, shape, pos):
    """A boolean mask must match the dims it indexes (NumPy's nonzero() would instead give
    an out-of-bounds index, or silently select from a smaller mask)."""
    for j, (m, s) in enumerate(zip(mask.shape, shape[pos:pos + mask.ndim])):
        if m.__class__ is int and s.__class__ is int and m != s:
            raise FwIndexError(f"index: the shape of the mask {list(mask.shape)} at index {j} "
                               f"does not match the shape of the indexed tensor "
                               f"{list(shape)} at index {pos + j}")


def _advanced_key(shape, rest):
    """Build the ``index`` primitive's key from the advanced items, expanding masks."""
    key = [slice(None)] * len(shape)
    tensors = []
    for kind, k, pos in rest:
        if kind == "mask":
            if k.ndim == 0:
                raise FwIndexError("index: 0-d boolean masks are not supported")
            _check_mask_shape(k, shape, pos)
            for j, nz in enumerate(k.nonzero().unbind(1)):
                key[pos + j] = TensorSlot(len(tensors))
                tensors.append(nz)
        else:
            key[pos] = TensorSlot(len(tensors))
            tensors.append(k)
    while key and isinstance(key[-1], slice) and key[-1] == slice(None):
        key.pop()
    return tuple(key), tensors


def _plain_bound(v) -> bool:
    return v is None or v.__class__ is int


def _getitem_fast(x: Tensor, key):
    """``x[i]``, ``x[a:b]``, ``x[:, i]``...: ints and slices on int sizes, without the
    general key parser (None: not that simple, take the general path)."""
    items = key if key.__class__ is tuple else (key,)
    shape = x.shape
    if len(items) > len(shape):
        return None
    starts, stops, steps, out_shape = [], [], [], []
    dropped = False
    for d, k in enumerate(items):
        size = shape[d]
        if size.__class__ is not int:
            return None
        if k.__class__ is int:
            if not -size <= k < size:
                return None  # the general path raises the error
            if k < 0:
                k += size
            starts.append(k)
            stops.append(k + 1)
            steps.append(1)
            dropped = True
        elif k.__class__ is slice:
            if not (_plain_bound(k.start) and _plain_bound(k.stop) and _plain_bound(k.step)):
                return None  # a symbolic bound (``pe[:x.size(0)]`` in a capture)
            if k.step is not None and k.step <= 0:
                return None
            a, b, c = k.indices(size)
            b = max(a, b)
            starts.append(a)
            stops.append(b)
            steps.append(c)
            out_shape.append(len(range(a, b, c)))
        else:
            return None
    for d in range(len(items), len(shape)):
        starts.append(0)
        stops.append(shape[d])
        steps.append(1)
        out_shape.append(shape[d])
    out = x
    if any(a != 0 or b != s or c != 1 for a, b, c, s in zip(starts, stops, steps, shape)):
        out = apply(SLICE, x, starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    if dropped:
        return apply(RESHAPE, out, shape=tuple(out_shape))
    return out if out is not x else view_alias(x)


def getitem(x: Tensor, key) -> Tensor:
    """``x[key]`` with NumPy/PyTorch semantics."""
    out = _getitem_fast(x, key)
    if out is not None:
        return out
    items = _expand_ellipsis(x, _normalize_key(x, key))
    out, rest = _apply_basic(x, items)
    if not rest:
        return out if out is not x else view_alias(x)
    akey, tensors = _advanced_key(out.shape, rest)
    _check_bounds(out, akey, tensors)
    return apply(INDEX, out, *tensors, key=akey)


def _check_bounds(x, key, tensors):
    for d, k in enumerate(key):
        if isinstance(k, TensorSlot):
            t = tensors[k.i]
            size = x.shape[d]
            if t._data is not None and t.numel() and isinstance(size, int) and \
                    t.device.type == "cpu":
                lo, hi = int(t._data.min()), int(t._data.max())
                if lo < -size or hi >= size:
                    bad = hi if hi >= size else lo
                    raise FwIndexError(f"index {bad} is out of bounds for dimension {d} with "
                                       f"size {size}")


def _coordinate_key(x: Tensor, key) -> tuple:
    """Rewrite a key mixing ints and index tensors as one integer tensor per dim.

    PyTorch applies ints before advanced indices (``x[2, :, idx]`` has shape
    ``(x.shape[1], len(idx))``), NumPy does not; indexing a grid of each dim's coordinates
    with the user's key (PyTorch semantics, :func:`getitem`) gives a pure advanced key on
    which both agree.
    """
    from .creation_ops import arange
    coords = []
    for d, size in enumerate(x.shape):
        shape = [1] * x.ndim
        shape[d] = size
        grid = arange(size, device=x.device).reshape(shape).expand(x.shape)
        coords.append(getitem(grid, key))
    return tuple(coords)


def index_put_key(x: Tensor, key, value, accumulate: bool = False) -> Tensor:
    """Functional ``x[key] = value`` (or ``+=`` with ``accumulate``): a new tensor."""
    items = _expand_ellipsis(x, _normalize_key(x, key))
    kinds = {kind if kind != "basic" else type(k) for kind, k in items}
    if int in kinds and ({"tensor", "mask"} & kinds):
        return index_put_key(x, _coordinate_key(x, key), value, accumulate)
    tensors, akey, dim = [], [], 0
    full_key = []  # akey plus the None entries: the shape the user's value must fit
    for kind, k in items:
        if kind == "basic" and k is None:
            full_key.append(None)
            continue
        start = len(akey)
        if kind == "mask":
            _check_mask_shape(k, x.shape, dim)
            for nz in k.nonzero().unbind(1):
                akey.append(TensorSlot(len(tensors)))
                tensors.append(nz)
            dim += max(k.ndim, 1)
        elif kind == "tensor":
            akey.append(TensorSlot(len(tensors)))
            tensors.append(k)
            dim += 1
        else:
            if isinstance(k, int):
                size = x.shape[dim]
                if isinstance(size, int) and not -size <= k < size:
                    raise FwIndexError(f"index {k} is out of bounds for dimension {dim} with "
                                       f"size {size}")
            akey.append(k)
            dim += 1
        full_key += akey[start:]
    akey = tuple(akey)
    _check_bounds(x, akey, tensors)
    if isinstance(value, Tensor):
        if value.dtype is not x.dtype:
            value = cast(value, x.dtype)
        shapes = [t.shape for t in tensors]
        target = tuple(_key_shape(x.shape, akey, shapes))
        if value.shape != target:
            full = tuple(_key_shape(x.shape, tuple(full_key), shapes))
            if full != target:  # None dims: fit the value to x[key], then drop them
                from .movement import expand
                value = expand(value, full).reshape(target)
            squeezed = value
            while squeezed.ndim > len(target) and squeezed.shape[0] == 1:
                squeezed = squeezed.reshape(squeezed.shape[1:])
            value = squeezed
    elif not isinstance(value, (bool, int, float)):
        raise TypeError(f"index_put: value must be a Tensor or a number, got "
                        f"{type(value).__name__}")
    else:
        if x.dtype.category == dtypes.INT and isinstance(value, float):
            value = int(value)
    return apply(INDEX_PUT, x, value, *tensors, key=akey, accumulate=accumulate)


# ---------------------------------------------------------------------------------------
# public gather/scatter family
def gather(input, dim, index) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0, etc."""
    d = normalize_dim(dim, input.ndim, "gather")
    return apply(GATHER, input, index, dim=d)


def take_along_dim(input, indices, dim=None) -> Tensor:
    """Gather along ``dim`` after broadcasting ``indices`` against ``input``."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = normalize_dim(dim, input.ndim, "take_along_dim")
    shape_x = list(input.shape)
    shape_i = list(indices.shape)
    shape_x[d] = shape_i[d] = 1
    b = broadcast_shapes(tuple(shape_x), tuple(shape_i), "take_along_dim")
    xs = list(b)
    xs[d] = input.shape[d]
    ix = list(b)
    ix[d] = indices.shape[d]
    return gather(input.expand(xs), d, indices.expand(ix))


def _scatter_src(input, src, op):
    if isinstance(src, Tensor):
        return cast(src, input.dtype)
    return float(src) if input.dtype.is_floating_point else src


def scatter(input, dim, index, src=None, *, value=None, reduce=None) -> Tensor:
    """Write ``src`` (a tensor or a number) into ``input`` at ``index`` along ``dim``."""
    d = normalize_dim(dim, input.ndim, "scatter")
    src = value if src is None else src
    if reduce == "add":
        return scatter_add(input, d, index, src)
    if reduce is not None:
        raise NotImplementedError(f"scatter: reduce={reduce!r} is not implemented; use "
                                  "reduce='add' or scatter_reduce")
    return apply(SCATTER, input, index, _scatter_src(input, src, "scatter"), dim=d)


def scatter_add(input, dim, index, src) -> Tensor:
    """Add ``src`` into ``input`` at ``index`` along ``dim``."""
    d = normalize_dim(dim, input.ndim, "scatter_add")
    if isinstance(src, Tensor) and src.shape != index.shape:
        src = src.narrow_to(index.shape) if hasattr(src, "narrow_to") else src
    return apply(SCATTER_ADD, input, index, _scatter_src(input, src, "scatter_add"), dim=d)


def index_select(input, dim, index) -> Tensor:
    """Rows (along ``dim``) picked by a 1-D integer ``index``."""
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 0-D or 1-D, got shape {list(index.shape)}")
    d = normalize_dim(dim, input.ndim, "index_select")
    return getitem(input, (slice(None),) * d + (index.reshape(-1),))


def index_add(input, dim, index, source, *, alpha=1) -> Tensor:
    """``input`` with ``alpha * source`` rows added at ``index`` along ``dim``."""
    d = normalize_dim(dim, input.ndim, "index_add")
    if alpha != 1:
        source = source * alpha
    return index_put_key(input, (slice(None),) * d + (index,), source, accumulate=True)


def masked_fill(input, mask, value) -> Tensor:
    """``value`` where ``mask`` is True."""
    if mask.dtype is not dtypes.bool_:
        raise DTypeError(f"masked_fill: expected a bool mask, got {mask.dtype.name}")
    if isinstance(value, Tensor):
        value = cast(value, input.dtype)
    elif input.dtype.category == dtypes.INT and isinstance(value, float):
        raise DTypeError(f"masked_fill: value {value} cannot be cast to {input.dtype.name}")
    a, b, _ = promote(value, input, "masked_fill")
    return where(mask, cast(a, input.dtype) if isinstance(a, Tensor) else a, input)


def masked_select(input, mask) -> Tensor:
    """The elements where ``mask`` holds, as a 1-D tensor (data-dependent size)."""
    shape = broadcast_shapes(input.shape, mask.shape, "masked_select")
    return getitem(input.expand(shape), mask.expand(shape))


def nonzero(input, *, as_tuple=False):
    """Indices of nonzero elements, shape (n, ndim) (data-dependent: eager only)."""
    arr = input._host_array("nonzero()")
    idx = np.stack(np.nonzero(arr), axis=1) if arr.ndim else np.zeros((int(arr != 0), 0),
                                                                       np.int64)
    out = _host_tensor(np.ascontiguousarray(idx.astype(np.int64)), dtypes.int64, input.device)
    if as_tuple:
        return tuple(out[:, i] for i in range(out.shape[1]))
    return out


def argwhere(input) -> Tensor:
    """Same as ``nonzero(input)``."""
    return nonzero(input)


def index_put(input, indices, values, accumulate=False) -> Tensor:
    """Functional ``input[indices] = values`` with a tuple of index tensors."""
    return index_put_key(input, tuple(indices), values, accumulate)


def one_hot(tensor, num_classes=-1) -> Tensor:
    """Int64 one-hot encoding with a new last dim of ``num_classes``."""
    if tensor.dtype is not dtypes.int64:
        raise DTypeError(f"one_hot: expected an int64 class-index tensor, got "
                         f"{tensor.dtype.name}")
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    if tls.tracer is None and tensor.numel() and tensor._data is not None:
        lo, hi = int(tensor.min().item()), int(tensor.max().item())  # PyTorch's value checks
        if lo < 0 or hi >= num_classes:
            raise FwIndexError(f"one_hot: class values must be non-negative and smaller than "
                               f"num_classes ({num_classes}), got {lo if lo < 0 else hi}")
    from .creation_ops import arange
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(dtypes.int64)


__all__ = ["getitem", "index_put_key", "gather", "scatter", "scatter_add", "index_select",
           "index_add", "masked_fill", "masked_select", "nonzero", "take_along_dim",
           "normalize_dim"]
