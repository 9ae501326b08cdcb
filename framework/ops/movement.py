"""Movement primitives (reshape, permute, expand, slice are views; pad, cat, flip, trilu,
clone copy) and the public shape functions built on them."""

from __future__ import annotations

from ..errors import ArgumentError, ShapeError
from ..tensor import Tensor
from .pointwise import sum_to_shape
from .registry import MOVEMENT, apply, register
from .shapes import _is_symbolic, as_shape, infer_reshape, normalize_dim, normalize_dims, prod


# ---------------------------------------------------------------------------------------
# meta rules
def _reshape_meta(x, *, shape):
    return shape, x.dtype


def _permute_meta(x, *, dims):
    return tuple(x.shape[d] for d in dims), x.dtype


def _expand_meta(x, *, shape):
    return shape, x.dtype


def _slice_len(size, start, stop, step):
    if isinstance(size, int) and isinstance(start, int) and isinstance(stop, int):
        if not (0 <= start <= size and 0 <= stop <= size):
            # eager callers pass normalized bounds; raw ones come from a compiled entry
            # re-checking its graph for new sizes (topk's k past the dim, a symbolic bound
            # past the end): out of range, the entry does not apply and captures again
            raise ShapeError(f"slice: bounds {start}:{stop} outside a dim of size {size}")
        return len(range(start, stop, step))
    import sympy
    if isinstance(size, int):
        # a symbolic bound on a static dim (``pe[:x.size(0)]`` in a capture) is taken to lie
        # within the dim, as dynamo guards it; the check above holds each call to that
        return sympy.Max(0, sympy.ceiling((stop - start) / step))
    return sympy.Max(0, sympy.ceiling((sympy.Min(stop, size) - start) / step))


def _slice_meta(x, *, starts, stops, steps):
    return tuple(_slice_len(s, a, b, c) for s, a, b, c in zip(x.shape, starts, stops, steps)), \
        x.dtype


def _pad_meta(x, *, pads, value):
    shape = list(x.shape)
    for i in range(len(pads) // 2):
        d = len(shape) - 1 - i
        shape[d] = shape[d] + pads[2 * i] + pads[2 * i + 1]
        if isinstance(shape[d], int) and shape[d] < 0:
            raise ShapeError(f"pad: padding {list(pads)} gives a negative size for input shape "
                             f"{list(x.shape)}")
    return tuple(shape), x.dtype


def _cat_meta(*xs, dim):
    first = xs[0]
    total = 0
    for i, t in enumerate(xs):
        if t.dtype is not first.dtype:
            raise ShapeError(f"cat: expected all tensors to share a dtype, got "
                             f"{first.dtype.name} and {t.dtype.name} (tensor {i})")
        if t.ndim != first.ndim or any(a != b for j, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if j != dim):
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {dim}; "
                             f"got {list(first.shape)} and {list(t.shape)} (tensor {i})")
        total = total + t.shape[dim]
    shape = list(first.shape)
    shape[dim] = total
    return tuple(shape), first.dtype


def _same_meta(x, **_):
    return x.shape, x.dtype


# ---------------------------------------------------------------------------------------
# VJP rules
def _reshape_vjp(g, args, out, shape):
    return (g.reshape(args[0].shape),)


def _permute_vjp(g, args, out, dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (g.permute(inv),)


def _expand_vjp(g, args, out, shape):
    return (sum_to_shape(g, args[0].shape),)


def _slice_vjp(g, args, out, starts, stops, steps):
    from .indexing import index_put_key
    from .creation_ops import full
    x = args[0]
    key = tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))
    return (index_put_key(full(x.shape, 0.0, dtype=g.dtype, device=g.device), key, g),)


def _pad_vjp(g, args, out, pads, value):
    x = args[0]
    starts, stops = [0] * x.ndim, list(g.shape)
    for i in range(len(pads) // 2):
        d = x.ndim - 1 - i
        starts[d] = pads[2 * i]
        stops[d] = starts[d] + x.shape[d]
    return (apply(SLICE, g, starts=tuple(starts), stops=tuple(stops), steps=(1,) * x.ndim),)


def _cat_vjp(g, args, out, dim):
    grads, offset = [], 0
    for t in args:
        grads.append(g.narrow(dim, offset, t.shape[dim]))
        offset = offset + t.shape[dim]
    return tuple(grads)


# Movement VJPs read only the inputs' shapes, never their data (saves_args=()).
RESHAPE = register("reshape", MOVEMENT, _reshape_meta, vjp=_reshape_vjp, is_view=True,
                   saves_args=())
PERMUTE = register("permute", MOVEMENT, _permute_meta, vjp=_permute_vjp, is_view=True,
                   saves_args=())
EXPAND = register("expand", MOVEMENT, _expand_meta, vjp=_expand_vjp, is_view=True,
                  saves_args=())
SLICE = register("slice", MOVEMENT, _slice_meta, vjp=_slice_vjp, is_view=True, saves_args=())
PAD = register("pad", MOVEMENT, _pad_meta, vjp=_pad_vjp, saves_args=())
CAT = register("cat", MOVEMENT, _cat_meta, vjp=_cat_vjp, saves_args=())
FLIP = register("flip", MOVEMENT, _same_meta, vjp=lambda g, a, o, dims: (g.flip(dims),),
                saves_args=())
TRILU = register("trilu", MOVEMENT, _same_meta,
                 vjp=lambda g, a, o, k, upper: (apply(TRILU, g, k=k, upper=upper),),
                 saves_args=())
CLONE = register("clone", MOVEMENT, _same_meta, vjp=lambda g, a, o: (g,), saves_args=())
# ``detach()`` while tracing with grad enabled: a view with no VJP, so graph autodiff
# (fw.grad, vjp, jvp) stops where eager autograd stops. simplify drops it from compiled graphs.
DETACH = register("detach", MOVEMENT, _same_meta, is_view=True, saves_args=())


# ---------------------------------------------------------------------------------------
# public functions
def _viewable(x: Tensor, shape) -> bool:
    data = x._data
    if data is None or data.flags.c_contiguous:
        return True
    if x.device.type != "cpu":
        from ..backends import get_backend
        return get_backend(x.device).can_view(data, shape)
    try:
        v = data.view()
        v.shape = shape
        return True
    except AttributeError:
        return False


def _shape_keyword(shape: tuple, kwargs: dict, op: str, name: str) -> tuple:
    """PyTorch also takes the size by keyword: ``x.reshape(shape=(2, 3))``, ``x.view(size=...)``."""
    if set(kwargs) - {name}:
        raise ArgumentError(f"{op}() got an unexpected keyword argument "
                            f"{sorted(set(kwargs) - {name})[0]!r}")
    if name in kwargs:
        if shape:
            raise ArgumentError(f"{op}() got multiple values for argument {name!r}")
        return (kwargs[name],)
    return shape


def reshape(input, *shape, **kwargs) -> Tensor:
    """Same data in a new shape (a view when the layout allows, else a copy)."""
    shape = _shape_keyword(shape, kwargs, "reshape", "shape")
    shape = infer_reshape(as_shape(shape, "reshape"), input.numel(), "reshape")
    if shape == input.shape:
        return view_alias(input)
    if not _viewable(input, shape):
        # a row-major copy: clone()'s preserve_format would keep a channels-last-looking
        # layout (a permuted 4-d/5-d tensor), which the reshape could not view either
        input = apply(CLONE, input)
    return apply(RESHAPE, input, shape=shape)


def view_alias(x: Tensor) -> Tensor:
    """A view of ``x`` with the same shape (a new tensor object sharing storage)."""
    return apply(RESHAPE, x, shape=x.shape)


def view(input, *shape, **kwargs) -> Tensor:
    """A view with a new shape; errors when the strides don't allow one (use reshape)."""
    shape = _shape_keyword(shape, kwargs, "view", "size")
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)) and \
            not hasattr(shape[0], "__index__"):
        return _view_dtype(input, shape[0])
    shape = infer_reshape(as_shape(shape, "view"), input.numel(), "view")
    if not _viewable(input, shape):
        raise ShapeError(f"view: view size {list(shape)} is not compatible with input tensor's "
                         f"size {list(input.shape)} and stride {list(input.stride())} (at least "
                         "one dimension spans across two contiguous subspaces). Use "
                         ".reshape(...) instead.")
    return apply(RESHAPE, input, shape=shape)


def _view_dtype(input: Tensor, dtype) -> Tensor:
    """``view(dtype)``: the same bytes reinterpreted (PyTorch's semantics, not a cast)."""
    from .. import dtypes
    dt = dtypes.to_dtype(dtype)
    if dt is input.dtype:
        return view_alias(input)
    if dt.itemsize != input.dtype.itemsize:
        raise NotImplementedError(f"view(dtype): reinterpreting {input.dtype.name} as "
                                  f"{dt.name} (different element sizes) is not supported")
    if input.device.type != "cpu":
        raise NotImplementedError(f"view(dtype) is only implemented on the CPU, not on "
                                  f"{input.device}")
    if input.requires_grad:
        from ..errors import AutogradError
        raise AutogradError("view(dtype): a bit-reinterpreting view is not differentiable; "
                            "call .detach() first")
    out = Tensor._wrap(input._data.view(dt.np), dt, input.device, storage=input._storage)
    out._base = input._base if input._base is not None else input
    out._inference = input._inference
    return out


def clone(input, *, memory_format=None) -> Tensor:
    """A copy with its own storage: row-major, or channels-last for a channels-last input
    (``memory_format=fw.preserve_format``, the default) or when asked."""
    if memory_format is None and input.ndim not in (4, 5):
        return apply(CLONE, input)
    from ..memory_formats import clone_as
    return clone_as(input, memory_format)


def contiguous(input, memory_format=None) -> Tensor:
    """``input`` itself if dense in ``memory_format``'s order (row-major by default), else a
    copy laid out in it."""
    if memory_format is None or getattr(memory_format, "name", None) == "contiguous_format":
        return input if input.is_contiguous() else apply(CLONE, input)
    from ..memory_formats import to_format
    return to_format(input, memory_format)


def flatten(input, start_dim=0, end_dim=-1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one."""
    if input.ndim == 0:
        return reshape(input, 1)
    s = normalize_dim(start_dim, input.ndim, "flatten")
    e = normalize_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise ArgumentError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input.shape[:s] + (prod(input.shape[s:e + 1]),) + input.shape[e + 1:]
    return reshape(input, shape)


def unflatten(input, dim, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one entry may be -1)."""
    d = normalize_dim(dim, input.ndim, "unflatten")
    sizes = infer_reshape(tuple(sizes), input.shape[d], "unflatten")
    return reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])


def squeeze(input, dim=None) -> Tensor:
    """Remove size-1 dims (all, or those in ``dim``)."""
    if dim is None:
        dims = [i for i, s in enumerate(input.shape) if s == 1]
    else:
        dims = [d for d in normalize_dims(dim, input.ndim, "squeeze") if input.shape[d] == 1]
    return reshape(input, tuple(s for i, s in enumerate(input.shape) if i not in dims))


def unsqueeze(input, dim) -> Tensor:
    """Insert a size-1 dim at ``dim``."""
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return apply(RESHAPE, input, shape=input.shape[:d] + (1,) + input.shape[d:])


def permute(input, *dims) -> Tensor:
    """Reorder dims (a view)."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != input.ndim:
        raise ShapeError(f"permute: number of dims don't match: input has {input.ndim} dims "
                         f"({list(input.shape)}), permutation {list(dims)}")
    nd = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if sorted(nd) != list(range(input.ndim)):
        raise ArgumentError(f"permute: repeated dim in permutation {list(dims)}")
    return apply(PERMUTE, input, dims=nd)


def transpose(input, dim0, dim1) -> Tensor:
    """Swap two dims (a view)."""
    n = input.ndim
    d0, d1 = normalize_dim(dim0, n, "transpose"), normalize_dim(dim1, n, "transpose")
    if not n:
        return view_alias(input)
    perm = list(range(n))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return apply(PERMUTE, input, dims=tuple(perm))


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    """Transpose of a tensor with at most 2 dims."""
    if input.ndim > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else view_alias(input)


def movedim(input, source, destination) -> Tensor:
    """Move dims from ``source`` positions to ``destination`` positions."""
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    n = input.ndim
    src = [normalize_dim(d, n, "movedim") for d in src]
    dst = [normalize_dim(d, n, "movedim") for d in dst]
    rest = [d for d in range(n) if d not in src]
    perm = [None] * n
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(rest)
    perm = [p if p is not None else next(it) for p in perm]
    return permute(input, perm)


def expand(input, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim)."""
    sizes = as_shape(sizes, "expand")
    if len(sizes) < input.ndim:
        raise ShapeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                         f"or equal to the number of dimensions in the tensor ({input.ndim})")
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s == -1:
                raise ShapeError("expand: -1 is not allowed in a leading, non-existing "
                                 "dimension")
            shape.append(s)
            continue
        cur = input.shape[i - lead]
        if s == -1:
            shape.append(cur)
        elif cur == 1 or cur == s:
            shape.append(s)
        else:
            raise ShapeError(f"expand: the expanded size of the tensor ({s}) must match the "
                             f"existing size ({cur}) at non-singleton dimension {i}. Target "
                             f"sizes: {list(sizes)}. Tensor sizes: {list(input.shape)}")
    shape = tuple(shape)
    if shape == input.shape:
        return view_alias(input)
    return apply(EXPAND, input, shape=shape)


def expand_as(input, other) -> Tensor:
    """Expand to ``other``'s shape."""
    return expand(input, other.shape)


def broadcast_to(input, shape) -> Tensor:
    """Expand to ``shape``."""
    return expand(input, shape)


def broadcast_tensors(*tensors):
    """Expand all tensors to their common broadcast shape."""
    from .shapes import broadcast_many
    shape = broadcast_many([t.shape for t in tensors], "broadcast_tensors")
    return tuple(expand(t, shape) for t in tensors)


def narrow(input, dim, start, length) -> Tensor:
    """The slice ``start:start+length`` of dim ``dim`` (a view)."""
    d = normalize_dim(dim, input.ndim, "narrow")
    if isinstance(start, int) and start < 0:
        start += input.shape[d]
    starts = [0] * input.ndim
    stops = list(input.shape)
    starts[d], stops[d] = start, start + length
    if isinstance(stops[d], int) and isinstance(input.shape[d], int) and stops[d] > input.shape[d]:
        raise ShapeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                         f"({input.shape[d]})")
    return apply(SLICE, input, starts=tuple(starts), stops=tuple(stops), steps=(1,) * input.ndim)


def select(input, dim, index) -> Tensor:
    """The sub-tensor at ``index`` of dim ``dim``, with that dim removed (a view)."""
    d = normalize_dim(dim, input.ndim, "select")
    size = input.shape[d]
    if isinstance(size, int) and not -size <= index < size:
        from ..errors import FwIndexError
        raise FwIndexError(f"select: index {index} is out of bounds for dimension {d} with "
                           f"size {size}")
    if index < 0:
        index += size
    out = narrow(input, d, index, 1)
    return apply(RESHAPE, out, shape=input.shape[:d] + input.shape[d + 1:])


def cat(tensors, dim=0) -> Tensor:
    """Concatenate along an existing dim (dtypes are promoted)."""
    tensors = list(tensors)
    if not tensors:
        raise ArgumentError("cat: expected a non-empty list of Tensors")
    from .. import dtypes
    from .pointwise import cast
    dt = dtypes.result_type(*[t.dtype for t in tensors])
    tensors = [cast(t, dt) for t in tensors]
    # legacy behaviour kept by PyTorch: 1-D empty tensors are skipped
    ref = next((t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)), tensors[0])
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or [ref]
    d = normalize_dim(dim, ref.ndim, "cat")
    if len(tensors) == 1:
        return clone(tensors[0])
    return apply(CAT, *tensors, dim=d)


concat = concatenate = cat


def stack(tensors, dim=0) -> Tensor:
    """Join along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ArgumentError("stack: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: expects each tensor to be equal size, but got "
                             f"{list(tensors[0].shape)} at entry 0 and {list(t.shape)} at "
                             f"entry {i}")
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    """Concatenate along dim 1 (dim 0 for 1-D tensors)."""
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Stack as rows."""
    return cat([t.reshape(1, -1) if t.ndim == 1 else t for t in tensors], 0)


def split(input, split_size_or_sections, dim=0):
    """Split into chunks of a size, or of the listed sizes (views)."""
    d = normalize_dim(dim, input.ndim, "split")
    size = input.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size > 0:
            raise ArgumentError(f"split: split_size must be positive, got {step}")
        sections = [min(step, size - i) for i in range(0, size, step)] if size else [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise ShapeError(f"split: split_with_sizes expects split_sizes to sum exactly to "
                             f"{size} (input tensor's size at dimension {d}), but got "
                             f"split_sizes={sections}")
    out, offset = [], 0
    for s in sections:
        out.append(narrow(input, d, offset, s))
        offset += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """Split into ``chunks`` nearly equal pieces."""
    if chunks <= 0:
        raise ArgumentError(f"chunk: chunks must be positive, got {chunks}")
    d = normalize_dim(dim, input.ndim, "chunk")
    size = input.shape[d]
    step = -(-size // chunks) if size else 1
    return split(input, step, d)


def unbind(input, dim=0):
    """Views of every index along ``dim``."""
    d = normalize_dim(dim, input.ndim, "unbind")
    return tuple(select(input, d, i) for i in range(input.shape[d]))


def flip(input, dims) -> Tensor:
    """Reverse the order along ``dims`` (a copy)."""
    dims = normalize_dims(dims, input.ndim, "flip")
    return apply(FLIP, input, dims=dims) if dims else clone(input)


def fliplr(input):
    """Flip dim 1."""
    return flip(input, (1,))


def flipud(input):
    """Flip dim 0."""
    return flip(input, (0,))


def roll(input, shifts, dims=None) -> Tensor:
    """Rotate elements along ``dims`` by ``shifts``."""
    if dims is None:
        return roll(input.reshape(-1), shifts, 0).reshape(input.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ArgumentError(f"roll: shifts ({len(shifts)}) and dims ({len(dims)}) must have "
                            "the same length")
    out = input
    for s, d in zip(shifts, dims):
        d = normalize_dim(d, input.ndim, "roll")
        n = input.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            out = cat([narrow(out, d, n - s, s), narrow(out, d, 0, n - s)], d)
    return out if out is not input else clone(input)


def repeat(input, *sizes) -> Tensor:
    """Tile the tensor ``sizes`` times along each dim (a copy)."""
    sizes = as_shape(sizes, "repeat")
    if len(sizes) < input.ndim:
        raise ShapeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than "
                         f"number of dimensions of tensor ({input.ndim})")
    x = input.reshape((1,) * (len(sizes) - input.ndim) + input.shape)
    inter = []
    big = []
    for r, s in zip(sizes, x.shape):
        inter += [1, s]
        big += [r, s]
    out = expand(x.reshape(inter), big)
    return reshape(clone(out), [r * s for r, s in zip(sizes, x.shape)])


def tile(input, dims) -> Tensor:
    """Like repeat, padding ``dims`` with leading ones."""
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def tril(input, diagonal=0) -> Tensor:
    """Zero the elements above the ``diagonal``-th diagonal."""
    if input.ndim < 2:
        raise ShapeError(f"tril: input tensor must have at least 2 dimensions, got {input.ndim}")
    return apply(TRILU, input, k=diagonal, upper=False)


def triu(input, diagonal=0) -> Tensor:
    """Zero the elements below the ``diagonal``-th diagonal."""
    if input.ndim < 2:
        raise ShapeError(f"triu: input tensor must have at least 2 dimensions, got {input.ndim}")
    return apply(TRILU, input, k=diagonal, upper=True)


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """Pad the last ``len(pad)//2`` dims; ``pad`` lists (left, right) from the last dim.
    Modes: constant, reflect, replicate, circular."""
    pads = tuple(pad)
    if len(pads) % 2 or len(pads) // 2 > input.ndim:
        raise ShapeError(f"pad: padding length {len(pads)} must be even and at most twice the "
                         f"number of dims ({input.ndim})")
    if mode == "constant":
        if any(p < 0 for p in pads if isinstance(p, int)):
            out = input
            for i in range(len(pads) // 2):
                d = input.ndim - 1 - i
                lo, hi = pads[2 * i], pads[2 * i + 1]
                if lo < 0 or hi < 0:
                    out = narrow(out, d, max(-lo, 0), out.shape[d] - max(-lo, 0) - max(-hi, 0))
            pads = tuple(max(p, 0) for p in pads)
            input = out
        return apply(PAD, input, pads=pads, value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ArgumentError(f"pad: mode must be constant, reflect, replicate or circular, got "
                            f"{mode!r}")
    out = input
    for i in range(len(pads) // 2):
        d = input.ndim - 1 - i
        lo, hi = pads[2 * i], pads[2 * i + 1]
        n = out.shape[d]
        if mode == "reflect" and _is_symbolic(n) and (lo or hi):
            # a ShapeError: fw.compile then retries with the dim static
            raise ShapeError(f"pad: reflect padding needs a static size at dim {d}, got the "
                             f"dynamic (symbolic) size {n}; capture or export with that "
                             "dim static")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ShapeError(f"pad: padding ({lo}, {hi}) should be less than the input size {n} "
                             f"at dimension {d} in reflect mode")
        parts = []
        if lo:
            parts.append(_pad_piece(out, d, lo, n, mode, left=True))
        parts.append(out)
        if hi:
            parts.append(_pad_piece(out, d, hi, n, mode, left=False))
        out = cat(parts, d) if len(parts) > 1 else out
    return out


def _pad_piece(x, d, width, n, mode, left):
    if mode == "replicate":
        edge = narrow(x, d, 0 if left else n - 1, 1)
        shape = list(x.shape)
        shape[d] = width
        return expand(edge, shape)
    if mode == "circular":
        return narrow(x, d, n - width, width) if left else narrow(x, d, 0, width)
    piece = narrow(x, d, 1, width) if left else narrow(x, d, n - 1 - width, width)
    return flip(piece, (d,))
