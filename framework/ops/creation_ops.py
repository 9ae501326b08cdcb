"""Creation and random primitives: ``full``, ``arange``, ``uniform``, ``normal``,
``randint``, ``randperm``.

They take no tensor inputs (shape, dtype and device are attributes), so a trace records
them and a compiled graph re-creates them per call, with symbolic sizes where needed.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..device import to_device
from ..errors import ArgumentError, DTypeError
from ..tensor import Tensor
from .registry import CREATION, RANDOM, apply, register
from .shapes import as_shape


def _creation_meta(*, shape, dtype, device, **_):
    for s in shape:
        if isinstance(s, int) and s < 0:
            raise ArgumentError(f"creation: negative dimension {s} in size {list(shape)}")
    return shape, dtype


FULL = register("full", CREATION, _creation_meta)
ARANGE = register("arange", CREATION, _creation_meta)
UNIFORM = register("uniform", RANDOM, _creation_meta)
NORMAL = register("normal", RANDOM, _creation_meta)
RANDINT = register("randint", RANDOM, _creation_meta)    # attrs low, high: [low, high)
RANDPERM = register("randperm", RANDOM, _creation_meta)  # a permutation of range(shape[0])


def _dtype_for_value(value, dtype):
    if dtype is not None:
        return dtypes.to_dtype(dtype)
    return dtypes.scalar_dtype(value)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value``."""
    shape = as_shape((size,) if not isinstance(size, (tuple, list)) else (size,), "full")
    if isinstance(fill_value, np.generic) or (isinstance(fill_value, Tensor) and
                                              fill_value.ndim == 0):
        # PyTorch takes a NumPy scalar or a 0-d tensor as the Python number it holds, and
        # infers the dtype from that (``full(s, torch.tensor(3))`` is int64, not float)
        fill_value = fill_value.item()
    dt = _dtype_for_value(fill_value, dtype)
    if dt.category == dtypes.INT and isinstance(fill_value, int) and not \
            isinstance(fill_value, bool):
        info = np.iinfo(dt.np)
        if not info.min <= fill_value <= info.max:
            raise ArgumentError(f"full: value {fill_value} cannot be converted to type "
                                f"{dt.name} without overflow")
    if type(fill_value) is not float and isinstance(fill_value, float):
        # fw.compile's runtime scalar (a float argument): an operand read per call, not an
        # attribute (which would be baked with a guard, recompiling for every value)
        t = apply(FULL, shape=shape, value=0, dtype=dt, device=to_device(device)) + fill_value
        t = t if t.dtype is dt else t.to(dt)
    else:
        t = apply(FULL, shape=shape, value=fill_value, dtype=dt, device=to_device(device))
    if requires_grad:
        t.requires_grad_(True)
    return t


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (exclusive) by ``step``."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ArgumentError("arange: step must be nonzero")
    import math
    if any(type(v).__module__.startswith("sympy") or hasattr(type(v), "_sympy_")
           for v in (start, end, step)):  # (``_sympy_``: a traced int, compiler/symints.py)
        import sympy  # a dynamic size while tracing, e.g. arange(x.shape[1])
        n = sympy.Max(0, sympy.ceiling(sympy.sympify(end - start) / step))
    else:
        n = max(0, math.ceil((end - start) / step))
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = dtypes.get_default_dtype() if is_float else dtypes.int64
    t = apply(ARANGE, shape=(n,), start=start, step=step, dtype=dtypes.to_dtype(dtype),
              device=to_device(device))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _complex_sample(fn, shape, params, dt, device, generator, requires_grad):
    from .complex_ops import complex as _complex
    parts = [fn(shape, *params, dtype=dt.to_real(), device=device, generator=generator)
             for _ in range(2)]
    t = _complex(*parts)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_sample_dtype(dtype, name):
    dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
    if dt.is_complex:
        return dt
    if not dt.is_floating_point:
        raise DTypeError(f"{name}: random samples need a floating point dtype, got {dt.name} "
                         "(use randint for integers)")
    return dt


def uniform(shape, low=0.0, high=1.0, *, dtype=None, device=None, generator=None,
            requires_grad=False):
    """Samples from U[low, high)."""
    dt = _float_sample_dtype(dtype, "uniform")
    if dt.is_complex:  # as PyTorch: real and imaginary parts each uniform
        return _complex_sample(uniform, shape, (low, high), dt, device, generator,
                               requires_grad)
    t = apply(UNIFORM, shape=tuple(shape), low=low, high=high, dtype=dt,
              device=to_device(device), generator=generator)
    if requires_grad:
        t.requires_grad_(True)
    return t


def normal_(shape, mean=0.0, std=1.0, *, dtype=None, device=None, generator=None,
            requires_grad=False):
    """Samples from N(mean, std^2)."""
    dt = _float_sample_dtype(dtype, "normal")
    if dt.is_complex:  # as PyTorch: real and imaginary parts each N(mean, std^2 / 2)
        s = std * 0.5 ** 0.5
        return _complex_sample(normal_, shape, (mean, s), dt, device, generator,
                               requires_grad)
    t = apply(NORMAL, shape=tuple(shape), mean=mean, std=std, dtype=dt,
              device=to_device(device), generator=generator)
    if requires_grad:
        t.requires_grad_(True)
    return t


def randint_(shape, low, high, *, dtype, device=None, generator=None):
    """Integers drawn uniformly from ``[low, high)`` as one random node (a compiled graph
    re-draws it on every call, from the stream eager draws from)."""
    return apply(RANDINT, shape=tuple(shape), low=low, high=high, dtype=dtype,
                 device=to_device(device), generator=generator)


def randperm_(n, *, dtype, device=None, generator=None):
    """A random permutation of ``0..n-1`` as one random node."""
    return apply(RANDPERM, shape=(n,), dtype=dtype, device=to_device(device),
                 generator=generator)
