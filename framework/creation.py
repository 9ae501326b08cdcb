"""Tensor creation: from data (``tensor``, ``as_tensor``, ``from_numpy``, ``from_dlpack``),
filled (``zeros``, ``ones``, ``full``, ``empty``, ``eye``, ranges) and random."""

from __future__ import annotations

import numpy as np

from . import dtypes
from ._state import tls
from .device import cpu, to_device
from .errors import ArgumentError, DTypeError
from .ops.creation_ops import arange, full as _full, normal_, randint_, randperm_, uniform
from .ops.shapes import as_shape
from .random import resolve as resolve_generator
from .tensor import Tensor


def _infer_dtype(array: np.ndarray, data) -> dtypes.DType:
    kind = array.dtype.kind
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        if kind == "f" and array.dtype.itemsize == 8:
            return dtypes.float64
        return dtypes.from_numpy(array.dtype)
    if kind == "b":
        return dtypes.bool_
    if kind in "iu":
        return dtypes.int64
    if kind == "f":
        return dtypes.get_default_dtype()
    if kind == "c":  # Python complex numbers: complex64 (float64 default: complex128)
        return dtypes.default_complex_dtype()
    raise DTypeError(f"tensor: could not infer a dtype for data of NumPy kind {array.dtype}")


def _to_array(data):
    if isinstance(data, Tensor):
        return data.detach()._host_array("tensor(tensor)")
    if isinstance(data, (list, tuple)) and data and any(isinstance(d, Tensor) for d in data):
        return np.stack([_to_array(d) for d in data])
    if hasattr(data, "__dlpack__") and not isinstance(data, np.ndarray):
        return np.from_dlpack(data)
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise ArgumentError(f"tensor: could not convert data of type {type(data).__name__}: {e}") \
            from None
    if arr.dtype == object:
        raise ArgumentError(f"tensor: could not convert data of type {type(data).__name__} "
                            "(ragged nested sequence, non-numeric elements, or integers "
                            "outside the int64 range)")
    if arr.dtype == np.uint64 and not isinstance(data, np.ndarray):  # Python ints >= 2**63
        raise ArgumentError("tensor: Overflow when unpacking long: integers must lie in the "
                            "int64 range [-2**63, 2**63)")
    return arr


def _check_int_range(arr, dt, op):
    """Python integers that do not fit an integer dtype raise (as PyTorch), not wrap."""
    if dt.category != dtypes.INT or arr.dtype.kind not in "iu" or not arr.size:
        return
    info = np.iinfo(dt.np)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < info.min or hi > info.max:
        raise ArgumentError(f"{op}: value {lo if lo < info.min else hi} cannot be converted "
                            f"to type {dt.name} without overflow")


def _place(t: Tensor, device) -> Tensor:
    dev = to_device(device)
    return t if dev is cpu else t.to(dev)


def _has_runtime_scalar(data) -> bool:
    """True when ``data`` holds a float that varies per call of a compiled function (the
    capture's ScalarProxy: a float subclass)."""
    if isinstance(data, float):
        return type(data) is not float
    if isinstance(data, (list, tuple)):
        return any(_has_runtime_scalar(d) for d in data)
    return False


def _has_tensor(data) -> bool:
    """True when ``data`` is or holds a tensor (``tensor([R])`` with a 0-d ``R``)."""
    if isinstance(data, Tensor):
        return True
    if isinstance(data, (list, tuple)):
        return any(_has_tensor(d) for d in data)
    return False


def _traced_dtype(data) -> dtypes.DType:
    """The dtype eager ``tensor(data)`` infers, read from the elements' dtypes and Python
    types instead of their (traced) values."""
    if isinstance(data, Tensor):
        return data.dtype
    cats = []

    def walk(d):
        if isinstance(d, (list, tuple)):
            for e in d:
                walk(e)
        elif isinstance(d, Tensor):
            cats.append(d.dtype.category)
        else:
            cats.append(_infer_dtype(np.asarray(_plain(d)), d).category)
    walk(data)
    top = max(cats, default=dtypes.FLOAT)
    return {dtypes.BOOL: dtypes.bool_, dtypes.INT: dtypes.int64,
            dtypes.FLOAT: dtypes.get_default_dtype()}.get(top) or dtypes.default_complex_dtype()


def _plain(data):
    """``data`` with runtime scalars read as plain floats (no guard: the values stay
    live through :func:`_traced_tensor`)."""
    if isinstance(data, float):
        return float.__float__(data)
    if isinstance(data, (list, tuple)):
        return [_plain(d) for d in data]
    return data


def _traced_tensor(data, dt, device) -> Tensor:
    """``data`` built from ``full`` and ``stack`` so that runtime scalars stay graph values
    instead of the capture's first values baked in as constants."""
    if isinstance(data, (list, tuple)):
        from .ops.movement import stack
        return stack([_traced_tensor(d, dt, device) for d in data])
    if isinstance(data, Tensor):  # a copy, cut from autograd, as eager tensor(t)
        out = data.detach().to(dt)
        out = out if device is None else out.to(to_device(device))
        return out.clone()
    return _full((), data, dtype=dt, device=to_device(device))


def tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, numbers, arrays, tensors)."""
    if tls.tracer is not None and (_has_runtime_scalar(data) or _has_tensor(data)):
        # values that vary per call stay graph values (not the capture's first values)
        dt = dtypes.to_dtype(dtype) if dtype is not None else _traced_dtype(data)
        t = _traced_tensor(data, dt, device)
        return t.requires_grad_(True) if requires_grad else t
    arr = _to_array(data)
    dt = dtypes.to_dtype(dtype) if dtype is not None else (
        data.dtype if isinstance(data, Tensor) else _infer_dtype(arr, data))
    if dtype is not None and not isinstance(data, (np.ndarray, Tensor)):
        _check_int_range(arr, dt, "tensor")
    arr = np.array(arr, dtype=dt.np, copy=True, order="C")
    t = _place(Tensor._wrap(arr, dt, cpu), device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory when it already is one (or a matching array)."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtypes.to_dtype(dtype))
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and dtype is None and to_device(device) is cpu:
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with ``array`` (writes are visible both ways)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array, dtypes.from_numpy(array.dtype), cpu)


def from_dlpack(ext) -> Tensor:
    """A tensor sharing memory with any object supporting ``__dlpack__``."""
    return from_numpy(np.from_dlpack(ext))


def _shape_dtype(size, dtype, fill):
    shape = as_shape(size, "creation")
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.scalar_dtype(fill)
    return shape, dt


def _size_arg(size, kw_size):
    """``f(2, 3)``, ``f((2, 3))`` or ``f(size=(2, 3))``."""
    if kw_size is not None:
        if size:
            raise ArgumentError("creation: size given both positionally and as size=")
        return (kw_size,)
    return size


def _pop_size(kw, name):
    size = kw.pop("size", None)
    if kw:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kw)}")
    return size


def zeros(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """A tensor of zeros (default float dtype)."""
    size = _size_arg(size, _pop_size(kw, "zeros"))
    shape, dt = _shape_dtype(size, dtype, 0.0)
    return _full(shape, 0, dtype=dt, device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """A tensor of ones."""
    size = _size_arg(size, _pop_size(kw, "ones"))
    shape, dt = _shape_dtype(size, dtype, 1.0)
    return _full(shape, 1, dtype=dt, device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False,
          memory_format=None, **kw) -> Tensor:
    """An uninitialised tensor (zero-filled here, which is a valid uninitialised value),
    laid out in ``memory_format`` (row-major by default)."""
    size = _size_arg(size, _pop_size(kw, "empty"))
    out = zeros(*size, dtype=dtype, device=device)
    if memory_format is not None:
        out = _in_format(out, memory_format, "empty")
    return out.requires_grad_(True) if requires_grad else out


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from the value)."""
    return _full(as_shape((size,), "full") if not isinstance(size, int) else (size,),
                 fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _like(x, dtype, device):
    return (x.shape, dtypes.to_dtype(dtype) if dtype is not None else x.dtype,
            x.device if device is None else to_device(device))


def _in_format(out, fmt, what, like=None):
    """``out`` laid out in memory format ``fmt``; ``preserve_format`` (None) takes the
    format of ``like`` (the ``*_like`` functions' input)."""
    from . import memory_formats as mf
    fmt = mf.check(fmt, what)
    if fmt is mf.preserve_format:
        if not isinstance(like, Tensor) or like.ndim not in (4, 5):
            return out
        fmt = mf.suggest(like)
    return mf.restride(out, fmt, what)


def _filled_like(input, fill_value, dtype, device, requires_grad, memory_format, what):
    shape, dt, dev = _like(input, dtype, device)
    out = _in_format(_full(shape, fill_value, dtype=dt, device=dev), memory_format, what,
                     like=input)
    return out.requires_grad_(True) if requires_grad else out


def zeros_like(input, *, dtype=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    """Zeros with ``input``'s shape, dtype, device and (by default) memory format."""
    return _filled_like(input, 0, dtype, device, requires_grad, memory_format, "zeros_like")


def ones_like(input, *, dtype=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    """Ones with ``input``'s shape, dtype, device and (by default) memory format."""
    return _filled_like(input, 1, dtype, device, requires_grad, memory_format, "ones_like")


def empty_like(input, *, dtype=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    """Like ``zeros_like``."""
    return _filled_like(input, 0, dtype, device, requires_grad, memory_format, "empty_like")


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    """``fill_value`` with ``input``'s shape, dtype, device and (by default) memory format."""
    return _filled_like(input, fill_value, dtype, device, requires_grad, memory_format,
                        "full_like")


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ArgumentError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    t = tensor(np.linspace(start, end, steps), dtype=dt, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    return tensor(np.logspace(start, end, steps, base=base), dtype=dt, device=device)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n x m`` identity matrix."""
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    t = tensor(np.eye(n, m), dtype=dt, device=device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """Uniform samples in [0, 1)."""
    size = _size_arg(size, _pop_size(kw, "rand"))
    return uniform(as_shape(size, "rand"), 0.0, 1.0, dtype=dtype, device=device,
                   generator=generator, requires_grad=requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    """Standard normal samples."""
    size = _size_arg(size, _pop_size(kw, "randn"))
    return normal_(as_shape(size, "randn"), 0.0, 1.0, dtype=dtype, device=device,
                   generator=generator, requires_grad=requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    """``rand`` with ``input``'s shape, dtype, device and (by default) memory format."""
    shape, dt, dev = _like(input, dtype, device)
    out = _in_format(uniform(shape, dtype=dt, device=dev), memory_format, "rand_like", input)
    return out.requires_grad_(True) if requires_grad else out


def randn_like(input, *, dtype=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    """``randn`` with ``input``'s shape, dtype, device and (by default) memory format."""
    shape, dt, dev = _like(input, dtype, device)
    out = _in_format(normal_(shape, dtype=dt, device=dev), memory_format, "randn_like", input)
    return out.requires_grad_(True) if requires_grad else out


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers uniformly from ``[low, high)`` (``randint(high, size)`` also works);
    ``dtype`` may be a floating dtype (integer values), which ``requires_grad`` needs."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise ArgumentError("randint: size is required, e.g. randint(0, 10, (3,))")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise ArgumentError(f"randint: expected low < high, got low={low}, high={high}")
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.int64
    # one random node: fw.compile re-draws it on every call instead of baking one draw in
    out = randint_(as_shape((size,), "randint"), low, high, dtype=dt, device=device,
                   generator=generator)
    return out.requires_grad_(True) if requires_grad else out


def randint_like(input, low=0, high=None, *, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
    """``randint`` with ``input``'s shape."""
    if high is None:
        low, high = 0, low
    shape, dt, dev = _like(input, dtype, device)
    return randint(low, high, shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of ``0..n-1``."""
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.int64
    return randperm_(n, dtype=dt, device=device, generator=generator)  # see randint


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal samples; ``mean``/``std`` may be tensors (broadcast) or numbers with ``size``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        from .ops.shapes import broadcast_shapes
        shape = broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()), "normal")
        z = normal_(shape, dtype=ref.dtype, device=ref.device, generator=generator)
        return z * std + mean
    if size is None:
        raise ArgumentError("normal: size is required when mean and std are numbers")
    return normal_(as_shape((size,), "normal"), mean, std, dtype=dtype, device=device,
                   generator=generator)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """Samples of 0/1 with probabilities ``input`` (or ``p``)."""
    probs = input if p is None else full_like(input, p)
    u = uniform(probs.shape, dtype=probs.dtype, device=probs.device, generator=generator)
    return (u < probs).to(probs.dtype)


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Indices sampled from the rows of ``input`` (non-negative weights)."""
    probs = input.detach()._host_array("multinomial()").astype(np.float64)
    rng = resolve_generator(generator).numpy
    rows = probs.reshape(-1, probs.shape[-1])
    out = []
    for row in rows:
        p = row / row.sum()
        out.append(rng.choice(len(p), size=num_samples, replace=replacement, p=p))
    arr = np.array(out, dtype=np.int64).reshape(probs.shape[:-1] + (num_samples,))
    return tensor(arr, device=input.device)


__all__ = ["tensor", "as_tensor", "from_numpy", "from_dlpack", "zeros", "ones", "empty",
           "full", "zeros_like", "ones_like", "empty_like", "full_like", "arange", "linspace",
           "logspace", "eye", "rand", "randn", "rand_like", "randn_like", "randint",
           "randint_like", "randperm", "normal", "bernoulli", "multinomial"]
