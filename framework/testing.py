"""``fw.testing``: :func:`assert_close` and :func:`make_tensor`, as in ``torch.testing``.

``assert_close`` compares tensors (and NumPy arrays, Python numbers, and sequences or
mappings of them, recursively) with tolerances chosen by dtype: ``|actual - expected| <=
atol + rtol * |expected|`` elementwise, after checking shape, dtype and device. A mismatch
raises ``AssertionError`` saying how many elements differ and where the greatest absolute
and relative differences are.
"""

from __future__ import annotations

import collections.abc
import math

import numpy as np

from . import dtypes
from .errors import ArgumentError, FwTypeError

__all__ = ["assert_close", "make_tensor"]

# (rtol, atol) by dtype, PyTorch's defaults; exact comparison for the rest
_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
               "float64": (1e-7, 1e-7)}


def _tolerances(*dts) -> tuple[float, float]:
    # complex dtypes: their float parts' tolerances (as torch.testing)
    pairs = [_TOLERANCES.get(d.to_real().name, (0.0, 0.0)) for d in dts]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _is_tensor_like(x) -> bool:
    from .tensor import Tensor
    return isinstance(x, (Tensor, np.ndarray))


def _as_array(x):
    """(float64-or-exact NumPy array, DType, device string) of a tensor-like."""
    from .tensor import Tensor
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy(), x.dtype, str(x.device)
    return np.asarray(x), dtypes.from_numpy(x.dtype), "cpu"


def _fail(msg, path, custom):
    where = f"\n\nThe failure occurred for item {path}" if path else ""
    raise AssertionError((custom or msg) + where)


def _fmt_index(flat: int, shape) -> str:
    if not shape:
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(flat, shape)))


def _compare_arrays(a, e, rtol, atol, equal_nan, path, msg, what="Tensor-likes"):
    if a.dtype == np.bool_ or e.dtype == np.bool_ or (
            a.dtype.kind in "iu" and e.dtype.kind in "iu"):
        bad = a != e
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        rel = diff / np.where(e != 0, np.abs(e.astype(np.float64)), np.inf)
    else:
        wide = np.complex128 if "c" in (a.dtype.kind, e.dtype.kind) else np.float64
        a64, e64 = a.astype(wide), e.astype(wide)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a64 - e64)
            close = diff <= atol + rtol * np.abs(e64)
            close |= a64 == e64  # equal infinities
            if equal_nan:
                close |= np.isnan(a64) & np.isnan(e64)
            bad = ~close
            rel = diff / np.abs(e64)
    if not bad.any():
        return
    n_bad, total = int(bad.sum()), bad.size
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = np.where(np.isnan(rel), np.inf, rel)
    i_abs, i_rel = int(np.argmax(np.where(bad, diff, -1))), int(np.argmax(np.where(bad, rel, -1)))
    if a.ndim == 0:
        text = (f"Scalars are not close!\n\nExpected {e.item()} but got {a.item()}.\n"
                f"Absolute difference: {diff.item()} (up to {atol} allowed)\n"
                f"Relative difference: {rel.item()} (up to {rtol} allowed)")
    else:
        text = (f"{what} are not close!\n\nMismatched elements: {n_bad} / {total} "
                f"({100 * n_bad / total:.1f}%)\n"
                f"Greatest absolute difference: {diff.flat[i_abs]} at index "
                f"{_fmt_index(i_abs, a.shape)} (up to {atol} allowed)\n"
                f"Greatest relative difference: {rel.flat[i_rel]} at index "
                f"{_fmt_index(i_rel, a.shape)} (up to {rtol} allowed)")
    _fail(text, path, msg)


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype,
                     path, msg):
    a, adt, adev = _as_array(actual)
    e, edt, edev = _as_array(expected)
    if a.shape != e.shape:
        _fail(f"The values for attribute 'shape' do not match: {tuple(a.shape)} != "
              f"{tuple(e.shape)}.", path, msg)
    if check_device and adev != edev:
        _fail(f"The values for attribute 'device' do not match: {adev} != {edev}.", path, msg)
    if check_dtype and adt is not edt:
        _fail(f"The values for attribute 'dtype' do not match: {adt.name} != {edt.name}.",
              path, msg)
    if rtol is None:
        rtol, atol = _tolerances(adt, edt)
    _compare_arrays(a, e, rtol, atol, equal_nan, path, msg)


def _compare_numbers(actual, expected, rtol, atol, equal_nan, check_dtype, path, msg):
    if check_dtype and type(actual) is not type(expected):
        _fail(f"The values for attribute 'dtype' do not match: {type(actual).__name__} != "
              f"{type(expected).__name__}.", path, msg)
    if rtol is None:
        kinds = {type(actual), type(expected)}
        rtol, atol = _tolerances(dtypes.float64) if kinds & {float, complex} else (0.0, 0.0)
    _compare_arrays(np.asarray(actual), np.asarray(expected), rtol, atol, equal_nan, path, msg,
                    what="Scalars")


def _compare(actual, expected, path, kw):
    if _is_tensor_like(actual) and _is_tensor_like(expected):
        return _compare_tensors(actual, expected, kw["rtol"], kw["atol"], kw["equal_nan"],
                                kw["check_device"], kw["check_dtype"], path, kw["msg"])
    numbers = (bool, int, float, complex)
    if isinstance(actual, numbers) and isinstance(expected, numbers):
        return _compare_numbers(actual, expected, kw["rtol"], kw["atol"], kw["equal_nan"],
                                kw["check_dtype"], path, kw["msg"])
    if isinstance(actual, collections.abc.Mapping) and \
            isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            _fail(f"The keys of the mappings do not match: {sorted(map(str, actual))} != "
                  f"{sorted(map(str, expected))}", path, kw["msg"])
        for k in actual:
            _compare(actual[k], expected[k], f"{path}[{k!r}]", kw)
        return None
    seq = (list, tuple)
    if isinstance(actual, seq) and isinstance(expected, seq):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}",
                  path, kw["msg"])
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, f"{path}[{i}]", kw)
        return None
    raise FwTypeError(f"assert_close: no comparison for inputs of type "
                      f"{type(actual).__name__} and {type(expected).__name__}"
                      + (f" (item {path})" if path else ""))


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None) -> None:
    """Raise ``AssertionError`` unless ``actual`` and ``expected`` are close.

    Tensors (or NumPy arrays) must match in shape, and unless disabled in device and
    dtype; their values must satisfy ``|actual - expected| <= atol + rtol * |expected|``
    (NaN equal only with ``equal_nan``). Default tolerances follow the dtype (float32:
    rtol 1.3e-6, atol 1e-5; float64: 1e-7, 1e-7; float16: 1e-3, 1e-5; bfloat16:
    1.6e-2, 1e-5; integers and bool: exact); with different dtypes the looser applies.
    Sequences and mappings are compared item by item. ``msg`` replaces the message.
    """
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ArgumentError(f"assert_close: both 'rtol' and 'atol' must be either specified "
                            f"or omitted, but got no {missing}.")
    if rtol is not None and (rtol < 0 or atol < 0 or math.isnan(rtol) or math.isnan(atol)):
        raise ArgumentError(f"assert_close: rtol and atol must be non-negative, got "
                            f"rtol={rtol}, atol={atol}")
    kw = dict(rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=check_device,
              check_dtype=check_dtype, msg=msg)
    _compare(actual, expected, "", kw)


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad=False,
                noncontiguous=False, exclude_zero=False, memory_format=None):
    """A tensor of ``shape`` filled with random values in ``[low, high)``, as
    ``torch.testing.make_tensor``: floating defaults ``[-9, 9)``, integers ``[-9, 10)``
    (``[0, 10)`` unsigned), booleans at random. ``noncontiguous`` returns a strided view
    with the same values; ``exclude_zero`` replaces zeros with a small non-zero value."""
    from .creation import tensor as make
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    dt = dtypes.to_dtype(dtype)
    rng = np.random.default_rng()
    if dt is dtypes.bool_:
        values = rng.integers(0, 2, size=shape).astype(bool)
    elif dt.is_floating_point:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        if lo > hi:
            raise ArgumentError(f"make_tensor: low ({lo}) must not exceed high ({hi})")
        values = rng.uniform(lo, hi, size=shape) if lo < hi else np.full(shape, lo)
        if exclude_zero:
            values[values == 0] = np.finfo(np.float16 if dt.itemsize == 2 else dt.np).tiny
    else:
        lo = (0 if not dt.is_signed else -9) if low is None else math.ceil(low)
        hi = 10 if high is None else math.ceil(high)
        if hi <= lo:
            raise ArgumentError(f"make_tensor: low ({low}) must be below high ({high})")
        values = rng.integers(lo, hi, size=shape)
        if exclude_zero:
            values[values == 0] = 1 if hi > 1 else -1
    out = make(values, dtype=dt, device=device)
    if noncontiguous and out.numel() > 1:
        doubled = make(np.repeat(values[..., None], 2, axis=-1), dtype=dt, device=device)
        out = doubled[..., 0]
    if requires_grad:
        out.requires_grad_(True)
    return out
