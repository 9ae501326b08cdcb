"""More of PyTorch's top level: ``gradient``, ``broadcast_shapes``, ``ger``, ``poisson``,
``can_cast``, and the memory-aware constructors ``empty_strided``, ``asarray`` and
``frombuffer``.

``gradient`` is a composite of slices, arithmetic and ``cat`` (so it differentiates,
compiles and exports to ONNX through its parts); ``ger`` is ``outer``. ``poisson`` draws
on the framework's RNG with the distributions' sampler (data-dependent loops: a graph
break under ``fw.compile``) and, as in PyTorch, passes a zero gradient to its rates.
``asarray``/``frombuffer`` share memory with their source the way PyTorch's do.
"""

from __future__ import annotations

import math
import warnings
from numbers import Number

import numpy as np

from .. import dtypes
from ..device import cpu, to_device
from ..errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from ..tensor import Size, Tensor
from .movement import cat, narrow, reshape
from .pointwise import where
from .shapes import normalize_dim

__all__ = ["gradient", "broadcast_shapes", "ger", "poisson", "can_cast", "empty_strided",
           "asarray", "frombuffer"]
METHODS = "ger"
INPLACE_METHODS = ""


def _tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise FwTypeError(f"{op}(): argument '{name}' must be a Tensor, not {type(x).__name__}")
    return x


# ---------------------------------------------------------------------------------------
# gradient
def _gradient_dims(input, dim):
    if dim is None:
        return list(range(input.ndim)), False
    raw = [dim] if isinstance(dim, int) else list(dim)
    if input.ndim == 0 and raw:
        raise ShapeError(f"gradient(): dim {dim} given for a 0-d input (it has no dims)")
    dims = [normalize_dim(d, input.ndim, "gradient") for d in raw]
    if len(set(dims)) != len(dims):
        raise ArgumentError(f"gradient(): dim {tuple(raw)} appears multiple times in the list "
                            "of dims")
    return dims, True


def _gradient_spacing(input, spacing, dims, dim_given):
    """-> a list with one spacing per dim: Python numbers or 1-D coordinate tensors."""
    if isinstance(spacing, Tensor):
        raise FwTypeError("gradient(): spacing must be a number, a list of numbers or a list "
                          "of 1-D coordinate tensors, got a Tensor (wrap it in a list)")
    if isinstance(spacing, Number) and not isinstance(spacing, bool):
        return [spacing] * len(dims)
    if not isinstance(spacing, (list, tuple)):
        raise FwTypeError(f"gradient(): spacing must be a number, a list of numbers or a list "
                          f"of 1-D coordinate tensors, got {type(spacing).__name__}")
    spacing = list(spacing)
    kinds = {isinstance(s, Tensor) for s in spacing}
    if len(kinds) > 1 or any(isinstance(s, bool) or not isinstance(s, (Number, Tensor))
                             for s in spacing):
        raise FwTypeError("gradient(): spacing must be all numbers or all tensors, got "
                          f"{[type(s).__name__ for s in spacing]}")
    if len(spacing) != len(dims):
        if dim_given:
            raise ArgumentError(f"gradient(): expected spacing to be unspecified, a scalar or "
                                f"its spacing and dim arguments to have the same length, but "
                                f"got a spacing argument of length {len(spacing)} and a dim "
                                f"argument of length {len(dims)}")
        raise ArgumentError(f"gradient(): expected spacing to be unspecified, a scalar, or a "
                            f"list of length equal to input.dim() = {input.ndim}, since dim "
                            f"argument was not given, but got a list of length {len(spacing)}")
    for s, d in zip(spacing, dims):
        if isinstance(s, Tensor):
            if s.ndim != 1 or s.shape[0] != input.shape[d]:
                raise ShapeError(f"gradient(): the coordinates for dim {d} must be a 1-D tensor "
                                 f"of size {input.shape[d]}, got shape {list(s.shape)}")
            if s.device != input.device:
                raise ArgumentError(f"gradient(): expected the coordinate tensors on the "
                                    f"input's device {input.device}, got {s.device}")
    return spacing


def _uniform_gradient(f, d, h, edge_order):
    n = f.shape[d]

    def sl(start, length):
        return narrow(f, d, start, length)

    if edge_order == 1:
        first = (sl(1, 1) - sl(0, 1)) / h
        last = (sl(n - 1, 1) - sl(n - 2, 1)) / h
    else:
        first = (sl(0, 1) * -1.5 + sl(1, 1) * 2 - sl(2, 1) * 0.5) / h
        last = (sl(n - 3, 1) * 0.5 + sl(n - 2, 1) * -2 + sl(n - 1, 1) * 1.5) / h
    if n == 2:
        return cat([first, last], d)
    center = (sl(2, n - 2) - sl(0, n - 2)) / h / 2
    return cat([first, center, last], d)


def _coordinate_gradient(f, d, x, edge_order):
    """Second-order differences on the non-uniform grid ``x`` (NumPy's/PyTorch's
    formulas)."""
    n = f.shape[d]
    dx = narrow(x, 0, 1, n - 1) - narrow(x, 0, 0, n - 1)

    def sl(start, length):
        return narrow(f, d, start, length)

    def h(i):  # dx[i] as a 0-d tensor
        return reshape(narrow(dx, 0, i % (n - 1), 1), ())

    if edge_order == 1:
        first = (sl(1, 1) - sl(0, 1)) / h(0)
        last = (sl(n - 1, 1) - sl(n - 2, 1)) / h(-1)
    else:
        h0, h1 = h(0), h(1)
        first = (sl(0, 1) * (-(2.0 * h0 + h1) / (h0 * (h0 + h1)))
                 + sl(1, 1) * ((h0 + h1) / (h0 * h1)) + sl(2, 1) * (-h0 / (h1 * (h0 + h1))))
        hl, hm = h(-1), h(-2)
        last = (sl(n - 3, 1) * (hl / (hm * (hl + hm))) + sl(n - 2, 1) * (-(hl + hm) / (hl * hm))
                + sl(n - 1, 1) * ((2 * hl + hm) / (hl * (hl + hm))))
    if n == 2:
        return cat([first, last], d)
    shape = [1] * f.ndim
    shape[d] = n - 2
    dx1, dx2 = narrow(dx, 0, 0, n - 2), narrow(dx, 0, 1, n - 2)
    a = reshape(-dx2 / (dx1 * (dx1 + dx2)), tuple(shape))
    b = reshape((dx2 - dx1) / (dx1 * dx2), tuple(shape))
    c = reshape(dx1 / (dx2 * (dx1 + dx2)), tuple(shape))
    center = a * sl(0, n - 2) + b * sl(1, n - 2) + c * sl(2, n - 2)
    return cat([first, center, last], d)


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """Estimate the gradient of ``input`` along each dim in ``dim`` (default: all), as
    ``torch.gradient``: second-order accurate central differences inside, first-
    (``edge_order=1``) or second-order (``edge_order=2``) one-sided differences at the
    ends. ``spacing`` is the sample distance (a number for every dim, or one per dim) or a
    list of 1-D coordinate tensors (a non-uniform grid). Returns a tuple of tensors, one per
    dim; integer inputs give floating results."""
    _tensor(input, "gradient")
    if input.dtype in (dtypes.uint8, dtypes.bool_):
        raise DTypeError(f"gradient(): does not support {input.dtype.name} input")
    if edge_order not in (1, 2) or isinstance(edge_order, bool):
        raise ArgumentError(f"gradient(): only supports edge_order=1 and edge_order=2, got "
                            f"{edge_order!r}")
    dims, dim_given = _gradient_dims(input, dim)
    spacing = _gradient_spacing(input, spacing, dims, dim_given)
    for d in dims:
        size = input.shape[d]
        if isinstance(size, int) and size < edge_order + 1:
            raise ShapeError(f"gradient(): expected each dimension size to be at least "
                             f"edge_order+1 = {edge_order + 1}, got size {size} at dim {d} of "
                             f"input shape {list(input.shape)}")
    out = []
    for d, s in zip(dims, spacing):
        if isinstance(s, Tensor):
            out.append(_coordinate_gradient(input, d, s, edge_order))
        else:
            out.append(_uniform_gradient(input, d, s, edge_order))
    return tuple(out)


# ---------------------------------------------------------------------------------------
# broadcast_shapes, ger, can_cast
def broadcast_shapes(*shapes) -> Size:
    """The shape that tensors of ``shapes`` broadcast to (``torch.broadcast_shapes``); an int
    is a 1-D shape. ShapeError naming the shapes when they do not broadcast."""
    norm = []
    for s in shapes:
        if isinstance(s, Tensor):
            raise FwTypeError("broadcast_shapes(): expected shapes (tuples of ints), got a "
                              "Tensor (use broadcast_tensors, or pass t.shape)")
        dims = (s,) if isinstance(s, int) else tuple(s)
        for v in dims:
            if isinstance(v, bool) or not isinstance(v, int):
                raise FwTypeError(f"broadcast_shapes(): expected shapes of ints, got {s!r}")
            if v < 0:
                raise ArgumentError(f"broadcast_shapes(): negative dimension {v} in shape "
                                    f"{list(dims)}")
        norm.append(dims)
    n = max((len(s) for s in norm), default=0)
    out = [1] * n
    for s in norm:
        for i, v in enumerate(s, n - len(s)):
            if v == out[i] or v == 1:
                continue
            if out[i] != 1:
                listed = ", ".join(str(list(t)) for t in norm)
                raise ShapeError(f"broadcast_shapes(): shapes {listed} cannot be broadcast to "
                                 f"a single shape (size {out[i]} vs {v} at dim {i - n})")
            out[i] = v
    return Size(out)


def ger(input, vec2) -> Tensor:
    """The outer product of two 1-D tensors: ``outer`` (deprecated in PyTorch in favour of
    ``outer``; kept for old code)."""
    from .linalg import outer
    _tensor(input, "ger")
    _tensor(vec2, "ger", "vec2")
    for name, t in (("input", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise ShapeError(f"ger(): expected 1-D argument {name}, but got {t.ndim}-D "
                             f"(shape {list(t.shape)})")
    return outer(input, vec2)


def can_cast(from_, to) -> bool:
    """True when PyTorch's casting rule allows ``from_`` -> ``to``: not float -> integer and
    not a non-bool -> bool (int -> float and bool -> anything are fine)."""
    for name, v in (("from_", from_), ("to", to)):
        if not isinstance(v, dtypes.DType):
            raise FwTypeError(f"can_cast(): argument '{name}' must be a dtype, not "
                              f"{type(v).__name__}")
    return dtypes.can_cast(from_, to)


# ---------------------------------------------------------------------------------------
# poisson
def poisson(input, generator=None) -> Tensor:
    """Samples of Poisson(rate=``input``), elementwise, as float counts of ``input``'s dtype,
    from ``generator`` (default: the framework's generator, seeded by ``fw.manual_seed``).
    Not differentiable in a useful way: as in PyTorch the rates get a zero gradient."""
    from ..autograd import is_grad_enabled
    from ..distributions.poisson import sample_poisson
    _tensor(input, "poisson")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"poisson(): expected a floating-point rate tensor, got "
                         f"{input.dtype.name}")
    rate = input.detach()
    if rate._data is not None and rate.numel() and bool(((rate >= 0).logical_not()).any()):
        raise ArgumentError("poisson(): invalid Poisson rate, expected rate to be "
                            "non-negative (and not NaN)")
    out = sample_poisson(rate, input.shape, generator)
    if input.requires_grad and is_grad_enabled():  # d(sample)/d(rate) = 0, as PyTorch
        from .creation_ops import full
        keep = full(input.shape, False, dtype=dtypes.bool_, device=input.device)
        out = where(keep, input, out)
    return out


# ---------------------------------------------------------------------------------------
# memory: empty_strided, asarray, frombuffer
def _factory_dtype(dtype):
    return dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised (here zero-filled) tensor of ``size`` whose elements are laid out
    with ``stride`` (in elements) in a fresh storage, as ``torch.empty_strided``; overlapping
    strides (0) are allowed. Meta tensors only have the shape."""
    from ..creation import zeros
    from ..tensor import meta_tensor
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise ArgumentError(f"empty_strided(): mismatch in length of strides and shape: size "
                            f"{list(size)} has {len(size)} dims, stride {list(stride)} has "
                            f"{len(stride)}")
    for name, vals in (("size", size), ("stride", stride)):
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, int):
                raise FwTypeError(f"empty_strided(): {name} must be ints, got {list(vals)}")
            if v < 0:
                raise ArgumentError(f"empty_strided(): negative {name} {v} in {list(vals)}")
    dt = _factory_dtype(dtype)
    dev = to_device(device)
    if dev.type == "meta":
        t = meta_tensor(size, dt, dev)
    else:
        numel = math.prod(size)
        storage = 0 if numel == 0 else 1 + sum((n - 1) * s for n, s in zip(size, stride))
        base = zeros(storage, dtype=dt, device=dev)
        if dev is cpu:
            arr = np.lib.stride_tricks.as_strided(
                base._data, size, tuple(s * dt.itemsize for s in stride), writeable=True)
            t = Tensor._wrap(arr, dt, dev, shape=size, storage=base._storage)
        else:
            t = Tensor._wrap(base._data.view(size, stride, 0), dt, dev, shape=size,
                             storage=base._storage)
        t._base = base
    if requires_grad:
        t.requires_grad_(True)
    return t


def _alias_tensor(obj, dt, dev, copy, requires_grad):
    wrong_dtype = dt is not None and dt is not obj.dtype
    wrong_device = dev is not None and dev != obj.device
    if copy is False and (wrong_dtype or wrong_device):
        what = (f"with dtype {obj.dtype.name} into dtype {dt.name}" if wrong_dtype else
                f"from device '{obj.device}' to '{dev}'")
        raise ArgumentError(f"asarray(): can't alias tensor {what} (copy=False)")
    if copy or wrong_dtype or wrong_device:
        out = obj.detach().to(device=dev or obj.device, dtype=dt or obj.dtype)
        if out._storage is obj._storage:  # .to() returned the same storage: copy for real
            out = out.clone()
    else:
        out = obj.detach()
    if requires_grad:
        out.requires_grad_(True)
    return out


def _buffer_like(obj) -> bool:
    if isinstance(obj, (np.ndarray, np.generic, str)):
        return False
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor:
    """``obj`` as a tensor, as ``torch.asarray``: a Tensor, a NumPy array, a DLPack provider
    or a buffer-protocol object is shared (no copy) when its dtype and device already fit and
    ``copy`` is not True; ``copy=False`` raises when a copy would be needed; numbers and
    sequences are copied (dtype inferred as ``tensor`` does). A tensor argument gives a
    detached alias (sharing storage), requiring grad only if ``requires_grad``."""
    from ..creation import from_numpy, tensor
    dt = dtypes.to_dtype(dtype) if dtype is not None else None
    dev = to_device(device) if device is not None else None
    if isinstance(obj, Tensor):
        return _alias_tensor(obj, dt, dev, copy, requires_grad)
    arr = None
    if isinstance(obj, np.ndarray):
        arr = obj
    elif hasattr(obj, "__dlpack__") and not isinstance(obj, np.generic):
        arr = np.from_dlpack(obj)
    elif _buffer_like(obj):
        t = frombuffer(obj, dtype=dt or dtypes.get_default_dtype())
        return _alias_tensor(t, None, dev, copy, requires_grad)
    if arr is not None:
        try:
            src = from_numpy(arr)
        except DTypeError as e:
            raise DTypeError(f"asarray(): {e}") from None
        return _alias_tensor(src, dt, dev, copy, requires_grad)
    if copy is False:
        raise ArgumentError(f"asarray(): can't alias a {type(obj).__name__} into a tensor "
                            "(copy=False): numbers and sequences are always copied")
    return tensor(obj, dtype=dt, device=dev, requires_grad=requires_grad)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False) -> Tensor:
    """A 1-D CPU tensor viewing ``count`` elements of ``dtype`` of a buffer-protocol object
    (``bytearray``, ``memoryview``, ``array.array``, ...) from byte ``offset`` on
    (``count=-1``: to the end), sharing its memory, as ``torch.frombuffer``. A read-only
    buffer (``bytes``) gives a read-only tensor, with a warning."""
    dt = dtypes.to_dtype(dtype)
    try:
        view = memoryview(buffer)
    except TypeError:
        raise FwTypeError(f"frombuffer(): object of type {type(buffer).__name__} does not "
                          "implement the buffer protocol") from None
    length = view.nbytes
    if length <= 0 or count == 0:
        raise ArgumentError(f"frombuffer(): both buffer length ({length}) and count ({count}) "
                            "must not be 0")
    if not 0 <= offset < length:
        raise ArgumentError(f"frombuffer(): offset ({offset} bytes) must be non-negative and "
                            f"no greater than buffer length ({length} bytes) minus 1")
    size = dt.itemsize
    if count < 0 and (length - offset) % size:
        raise ArgumentError(f"frombuffer(): buffer length ({length - offset} bytes) after "
                            f"offset ({offset} bytes) must be a multiple of element size "
                            f"({size})")
    n = (length - offset) // size if count < 0 else int(count)
    if offset + n * size > length:
        raise ArgumentError(f"frombuffer(): requested buffer length ({n} * {size} bytes) "
                            f"after offset ({offset} bytes) must not be greater than actual "
                            f"buffer length ({length} bytes)")
    if view.readonly:
        warnings.warn("frombuffer(): the given buffer is not writable; the tensor shares it "
                      "read-only (writing to it raises)", UserWarning, stacklevel=2)
    flat = view.cast("B") if view.ndim != 1 or view.format != "B" else view
    arr = np.frombuffer(flat, dtype=dt.np, count=n, offset=offset)
    t = Tensor._wrap(arr, dt, cpu)
    if requires_grad:
        t.requires_grad_(True)
    return t
