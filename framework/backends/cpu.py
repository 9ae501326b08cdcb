"""The CPU backend: one NumPy function per registered op.

Implementations receive NumPy arrays (or Python scalars) and the op's attributes, and
return arrays of the dtype the meta rule promised (``apply`` casts only if they differ).
"""

from __future__ import annotations

import numpy as np

from ..errors import FwIndexError, FwZeroDivisionError
from ..ops.indexing import TensorSlot
from ..ops.registry import OPS
from ..random import resolve as resolve_generator
from . import special_bessel, special_bessel_more, special_gamma, special_math, special_poly
from .erf import erf_f64

IMPLS: dict = {}


def impl(*names):
    """Register the decorated function as the CPU implementation of ``names``."""
    def deco(fn):
        for n in names:
            IMPLS[n] = fn
        return fn
    return deco


def _erf(x):
    return erf_f64(x).astype(x.dtype)


def _sigmoid(x):
    if x.dtype.kind == "c":
        return 1 / (1 + np.exp(-x))
    # exp of -|x| never overflows; same formula on both sides of 0.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _rsqrt(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 / np.sqrt(x)


def _relu(x):
    return np.maximum(x, x.dtype.type(0))


_UNARY_NP = {
    "neg": np.negative, "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2,
    "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt, "rsqrt": _rsqrt, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sigmoid": _sigmoid, "relu": _relu,
    "abs": np.abs, "sign": np.sign, "reciprocal": np.reciprocal, "floor": np.floor,
    "ceil": np.ceil, "round": np.round, "trunc": np.trunc, "erf": _erf,
    "bitwise_not": np.invert, "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
    "logical_not": np.logical_not,
}


def _special(name, fn=None):
    fn = fn or getattr(special_math, name)

    def run(x):
        return special_math.evaluate(fn, x)
    run.__name__ = f"_{name}"
    return run


for _name in ("lgamma", "digamma", "erfinv", "erfc", "i0", "i0e", "i1", "i1e"):
    _UNARY_NP[_name] = _special(_name)


def _polygamma(x, n):
    return special_math.evaluate(special_math.polygamma, x, n)


_UNARY_NP["polygamma"] = _polygamma


def _special2(name, fn):
    def run(a, b):
        return special_math.evaluate2(fn, a, b)
    run.__name__ = f"_{name}"
    return run


for _fn in (special_gamma.erfcx, special_bessel.bessel_j0, special_bessel.bessel_j1,
            special_bessel.spherical_bessel_j0, special_bessel.airy_ai):
    _UNARY_NP[_fn.__name__] = _special(_fn.__name__, _fn)
for _name, _fn in (("igamma", special_gamma.gammainc), ("igammac", special_gamma.gammaincc),
                   ("zeta", special_gamma.zeta)):
    IMPLS[_name] = _special2(_name, _fn)
for _name, _fn in special_bessel_more.UNARY.items():
    _UNARY_NP[_name] = _special(_name, _fn)
for _name in special_poly.BINARY:
    IMPLS[_name] = (lambda n: lambda x, order: special_poly.evaluate(n, x, order))(_name)

# Plain ufuncs: no np.errstate per call (it costs more than a small op). IEEE results
# (inf, nan) are the defined behaviour (integer division by zero raises, below), and
# install() filters NumPy's RuntimeWarnings raised from framework code.
IMPLS.update(_UNARY_NP)

_BINARY_NP = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "atan2": np.arctan2,
    "remainder": np.remainder, "floor_divide": np.floor_divide, "fmod": np.fmod,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
IMPLS.update(_BINARY_NP)


def _integer_division(name, ufunc):
    """Integer ``//``, ``%`` and ``fmod`` by zero raise, as PyTorch's CPU kernels do (NumPy
    would return 0 with a warning); floats keep their IEEE inf/nan results."""
    def run(a, b):
        if _is_integer(a) and _is_integer(b) and np.any(np.asarray(b) == 0):
            raise FwZeroDivisionError(f"{name}: integer division by zero")
        return ufunc(a, b)
    return run


def _is_integer(x):
    return x.dtype.kind in "iub" if isinstance(x, np.ndarray) else \
        isinstance(x, (int, np.integer))


for _name, _ufunc in (("floor_divide", np.floor_divide), ("remainder", np.remainder),
                      ("fmod", np.fmod)):
    IMPLS[_name] = _integer_division(_name, _ufunc)


@impl("pow")
def _pow(a, b):
    if isinstance(b, np.ndarray) and b.dtype.kind in "iu" and np.any(b < 0):
        from ..errors import ArgumentError
        raise ArgumentError("pow: integers to negative integer powers are not allowed")
    return np.power(a, b)


_SELECT_MIN = 4096   # below this np.where's call overhead is all there is


def _select_bits(cond, a, b):
    """``np.where(cond, a, b)`` as branch-free bit arithmetic (``b ^ ((a ^ b) & -cond)``
    on the unsigned view), or None where that does not apply.

    np.where branches per element, so a random mask (ReLU's backward) mispredicts about
    half the time: this is 5-10x faster on large arrays and bit-exact (NaNs, -0.0 and
    every other payload are copied as bits)."""
    if not (isinstance(cond, np.ndarray) and cond.dtype == np.bool_):
        return None
    try:
        dt = np.result_type(a, b)
        shape = np.broadcast_shapes(cond.shape, np.shape(a), np.shape(b))
    except (TypeError, ValueError):
        return None
    if (dt.itemsize not in (1, 2, 4, 8) or (dt.kind not in "biuf" and dt.name != "bfloat16")
            or any(isinstance(v, np.ndarray) and v.dtype != dt for v in (a, b))):
        return None
    if int(np.prod(shape)) < _SELECT_MIN:
        return None
    ui = np.dtype(f"u{dt.itemsize}")
    av, bv = (np.asarray(v, dt).view(ui) for v in (a, b))
    m = np.broadcast_to(cond, shape).astype(ui)
    np.negative(m, out=m)                  # 0 -> 0, 1 -> all ones
    if bv.ndim == 0 and not bv:            # where(c, a, 0): the ReLU-backward case
        np.bitwise_and(m, av, out=m)
    elif av.ndim == 0 and not av:
        np.invert(m, out=m)
        np.bitwise_and(m, bv, out=m)
    else:
        np.bitwise_and(m, np.bitwise_xor(av, bv), out=m)
        np.bitwise_xor(m, bv, out=m)
    return m.view(dt)


@impl("where")
def _where(cond, a, b):
    """Elementwise select (bit arithmetic on large arrays, see ``_select_bits``)."""
    out = _select_bits(cond, a, b)
    return np.where(cond, a, b) if out is None else out


def where_into(cond, a, b, out):
    """``np.where(cond, a, b)`` written into ``out`` (the compiled code's planned buffer)."""
    res = _select_bits(cond, a, b)
    if res is None:
        np.copyto(out, b)
        np.copyto(out, a, where=cond)
    else:
        np.copyto(out, res)
    return out


@impl("cast")
def _cast(x, dtype):
    return x.astype(dtype.np)


# -- reductions -------------------------------------------------------------------------
def _reduction(fn):
    def run(x, dims, keepdim):
        return np.asarray(fn(x, axis=dims, keepdims=keepdim))
    return run


def _accumulating(fn):
    """sum/prod of float16/bfloat16 accumulate in float32 and round once (as PyTorch does;
    NumPy would accumulate in the 2-byte type: 10000 x 0.1 in bfloat16 sums to 32)."""
    def run(x, dims, keepdim):
        if x.dtype.itemsize == 2 and x.dtype.kind in "fV":
            return np.asarray(fn(x, axis=dims, keepdims=keepdim, dtype=np.float32)
                              ).astype(x.dtype)
        return np.asarray(fn(x, axis=dims, keepdims=keepdim))
    return run


# ufunc.reduce called from here, not np.sum: NumPy's RuntimeWarnings (inf - inf in a sum)
# are then raised from framework code, which install()'s filter silences
IMPLS["sum"] = _accumulating(np.add.reduce)
IMPLS["prod"] = _accumulating(np.multiply.reduce)
IMPLS["amax"] = _reduction(np.maximum.reduce)
IMPLS["amin"] = _reduction(np.minimum.reduce)
IMPLS["any"] = _reduction(np.any)
IMPLS["all"] = _reduction(np.all)


def _arg_reduction(fn):
    def run(x, dims, keepdim):
        if not dims:
            return np.zeros(x.shape, np.int64)
        return np.asarray(fn(x, axis=dims[0], keepdims=keepdim)).astype(np.int64)
    return run


IMPLS["argmax"] = _arg_reduction(np.argmax)
IMPLS["argmin"] = _arg_reduction(np.argmin)


@impl("cumsum")
def _cumsum(x, dim):
    if x.dtype.itemsize == 2 and x.dtype.kind in "fV":  # accumulate in float32
        return np.cumsum(x, axis=dim, dtype=np.float32).astype(x.dtype)
    return np.cumsum(x, axis=dim, dtype=x.dtype)


@impl("cumprod")
def _cumprod(x, dim):
    if x.dtype.itemsize == 2 and x.dtype.kind in "fV":
        return np.cumprod(x, axis=dim, dtype=np.float32).astype(x.dtype)
    return np.cumprod(x, axis=dim, dtype=x.dtype)


# -- movement ---------------------------------------------------------------------------
@impl("reshape")
def _reshape(x, shape):
    v = x.view()
    v.shape = shape  # raises instead of copying; callers made x viewable first
    return v


@impl("permute")
def _permute(x, dims):
    return x.transpose(dims)


@impl("expand")
def _expand(x, shape):
    return np.broadcast_to(x, shape)


@impl("slice")
def _slice(x, starts, stops, steps):
    return x[tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))]


@impl("pad")
def _pad(x, pads, value):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pads) // 2):
        widths[x.ndim - 1 - i] = (pads[2 * i], pads[2 * i + 1])
    return np.pad(x, widths, constant_values=value)


@impl("cat")
def _cat(*xs, dim):
    return np.concatenate(xs, axis=dim)


@impl("flip")
def _flip(x, dims):
    return np.flip(x, dims).copy()


@impl("trilu")
def _trilu(x, k, upper):
    return np.triu(x, k) if upper else np.tril(x, k)


@impl("detach")
def _detach(x):
    return x.view()


@impl("as_strided")
def _as_strided(x, size, stride, offset):
    # x is contiguous in eager mode (ops.strided picks such a source), so this is a view
    flat = np.ascontiguousarray(x).reshape(-1)[offset:]
    # a zero stride over a size > 1 repeats an element: read-only, so in-place writes
    # raise PyTorch's "more than one element ... single memory location" (as for expand)
    repeats = any(s == 0 and n > 1 for n, s in zip(size, stride))
    return np.lib.stride_tricks.as_strided(flat, size, tuple(s * x.itemsize for s in stride),
                                           writeable=not repeats)


@impl("clone")
def _clone(x):
    return np.array(x, copy=True, order="C")


# -- indexing ---------------------------------------------------------------------------
def _np_key(key, idx):
    return tuple(idx[k.i] if isinstance(k, TensorSlot) else k for k in key)


def _check_index_range(op, index, size, dim):
    """PyTorch's bounds check: indices in ``[0, size)`` (NumPy would wrap negative ones)."""
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index[(index < 0) | (index >= size)].flat[0]
        raise FwIndexError(f"{op}: index {int(bad)} is out of bounds for dimension {dim} with "
                           f"size {size}")


@impl("gather")
def _gather(x, index, dim):
    _check_index_range("gather", index, x.shape[dim] if x.ndim else 1, dim)
    if not x.ndim:
        return x.copy()
    if x.shape[:dim] + x.shape[dim + 1:] != index.shape[:dim] + index.shape[dim + 1:]:
        # torch allows a smaller index in the other dims: read the matching corner of x
        x = x[tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(index.shape))]
    return np.take_along_axis(x, index, axis=dim)


def _scatter_positions(x, index, dim, op="scatter"):
    _check_index_range(op, index, x.shape[dim] if x.ndim else 1, dim)
    if x.ndim == 0:  # a 0-d tensor is one element along dim 0 (index checked to be 0)
        return ()
    grids = np.indices(index.shape, sparse=True)
    pos = list(grids)
    pos[dim] = index
    return tuple(pos)


@impl("scatter")
def _scatter(x, index, src, dim):
    out = x.copy()
    pos = _scatter_positions(x, index, dim)
    out[pos] = src[tuple(slice(0, s) for s in index.shape)] if isinstance(src, np.ndarray) \
        else src
    return out


def _add_at_flat(out, flat, vals):
    """``np.add.at`` on the flat view of the C-contiguous ``out`` at int64 positions
    ``flat`` (any shape). One 1-D integer index takes NumPy's fast ``ufunc.at`` path (about
    6x faster than a tuple of index arrays); the additions happen in the same order, so
    the result is bit-identical."""
    if isinstance(vals, np.ndarray):
        vals = np.broadcast_to(vals, flat.shape).reshape(-1)
    np.add.at(out.reshape(-1), flat.reshape(-1), vals)
    return out


@impl("scatter_add")
def _scatter_add(x, index, src, dim):
    """``out[..., index[i], ...] += src[i]`` along ``dim`` (duplicates accumulate)."""
    out = x.copy()
    pos = _scatter_positions(x, index, dim, "scatter_add")
    vals = src[tuple(slice(0, s) for s in index.shape)] if isinstance(src, np.ndarray) \
        else src
    if x.ndim == 0 or any(i > s for d, (i, s) in enumerate(zip(index.shape, x.shape))
                          if d != dim):
        np.add.at(out, pos, vals)           # (NumPy raises for an oversized index)
        return out
    strides = [int(np.prod(x.shape[d + 1:])) for d in range(x.ndim)]
    base = np.zeros((1,) * x.ndim, dtype=np.int64)   # the other dims' offsets, combined on
    for d, g in enumerate(pos):                       # the small broadcast grids first
        if d != dim and index.shape[d] > 1:
            base = base + g * strides[d]
    if strides[dim] != 1:
        flat = np.multiply(index, strides[dim], dtype=np.int64)
        flat += base
    else:
        flat = np.add(index, base, dtype=np.int64)
    return _add_at_flat(out, flat, vals)


@impl("index")
def _index(x, *idx, key):
    out = np.asarray(x[_np_key(key, idx)])  # (np.ascontiguousarray would make 0-d 1-d)
    # A key of slices and ints (an index_put VJP's) gives a NumPy view of x: `index` is no
    # view op, so its result must own its memory (the compiled code's buffer reuse and the
    # version counters assume it does).
    if out.flags.c_contiguous and not np.may_share_memory(out, x):
        return out
    return out.copy(order="C")


def _flat_positions(shape, k):
    """Flat C-order positions of ``x[k]`` (shape of the indexing result) for a key made of
    full slices and one run of adjacent integer arrays, all in bounds; else None."""
    if not isinstance(k, tuple) or len(k) > len(shape):
        return None
    k = k + (slice(None),) * (len(shape) - len(k))
    arrays = [d for d, e in enumerate(k) if isinstance(e, np.ndarray)]
    if not arrays or arrays != list(range(arrays[0], arrays[-1] + 1)) or any(
            not isinstance(e, np.ndarray) and e != slice(None) for e in k):
        return None
    strides = [int(np.prod(shape[d + 1:])) for d in range(len(shape))]
    grp = 0
    for d in arrays:
        a = k[d]
        if a.dtype.kind not in "iu":
            return None
        if a.size and (a.min() < -shape[d] or a.max() >= shape[d]):
            return None                    # let NumPy raise its own error
        a = a.astype(np.int64)
        if a.size and a.min() < 0:
            a = a + (a < 0) * shape[d]
        grp = grp + a * strides[d]
    grp = np.asarray(grp, np.int64)
    first, last = arrays[0], arrays[-1]
    pos = grp.reshape((1,) * first + grp.shape + (1,) * (len(shape) - last - 1))
    nb = grp.ndim
    for d in list(range(first)) + list(range(last + 1, len(shape))):
        axis = d if d < first else d - (last + 1 - first) + nb
        rng = np.arange(shape[d], dtype=np.int64) * strides[d]
        pos = pos + rng.reshape((1,) * axis + (-1,) + (1,) * (pos.ndim - axis - 1))
    return pos


@impl("index_put")
def _index_put(x, v, *idx, key, accumulate):
    """``out[key] = v`` (``+=`` with duplicates accumulating when ``accumulate``)."""
    out = x.copy()
    k = _np_key(key, idx)
    if accumulate:
        flat = _flat_positions(out.shape, k)
        if flat is None:
            np.add.at(out, k, v)
        else:
            _add_at_flat(out, flat, v)
    else:
        out[k] = v
    return out


# -- linear algebra ---------------------------------------------------------------------
@impl("matmul")
def _matmul(a, b):
    kind = a.dtype.kind
    if kind in "iub" or a.dtype.itemsize == 2:  # ints, bool, float16, bfloat16 ("V")
        # BLAS has no kernels for these; accumulate in a wider type, then round once.
        wide = np.int64 if kind in "iub" else np.float32
        return np.matmul(a.astype(wide), b.astype(wide)).astype(a.dtype)
    return np.matmul(a, b)


@impl("einsum")
def _einsum(*ops, equation):
    dt = ops[0].dtype
    if dt == np.float16 or dt.name == "bfloat16":  # no NumPy loops: accumulate in float32
        ops = [o.astype(np.float32) for o in ops]
        return np.einsum(equation, *ops, optimize=len(ops) > 2).astype(dt)
    out = np.einsum(equation, *ops, optimize=len(ops) > 2)
    # one operand ("ij->ji", "ii->i") comes back as a view of it; an op's result must own
    # its memory (in-place ops on the input, and the compiler's buffer reuse, assume so)
    return out.copy() if len(ops) == 1 and np.may_share_memory(out, ops[0]) else out


# -- creation and random ----------------------------------------------------------------
@impl("full")
def _full(shape, value, dtype, device):
    return np.full(shape, value, dtype=dtype.np)


@impl("arange")
def _arange(shape, start, step, dtype, device):
    return (start + step * np.arange(shape[0], dtype=np.float64)).astype(dtype.np) \
        if dtype.is_floating_point else np.arange(start, start + step * shape[0], step,
                                                  dtype=dtype.np)[:shape[0]]


@impl("uniform")
def _uniform(shape, low, high, dtype, device, generator):
    rng = resolve_generator(generator).numpy
    return rng.uniform(low, high, size=shape).astype(dtype.np)


@impl("normal")
def _normal(shape, mean, std, dtype, device, generator):
    rng = resolve_generator(generator).numpy
    return rng.normal(mean, std, size=shape).astype(dtype.np)


@impl("randint")
def _randint(shape, low, high, dtype, device, generator):
    rng = resolve_generator(generator).numpy
    return rng.integers(low, high, size=shape).astype(dtype.np)


@impl("randperm")
def _randperm(shape, dtype, device, generator):
    return resolve_generator(generator).numpy.permutation(shape[0]).astype(dtype.np)


# -- composites with a direct kernel (faster than their decomposition) -------------------
@impl("softmax")
def _softmax(x, dim):
    if x.ndim and x.shape[dim] == 0:  # nothing to normalize: an empty result, as PyTorch
        return x.copy()
    low = x.dtype.itemsize == 2 and x.dtype.kind in "fV"  # compute in float32
    xf = x.astype(np.float32) if low else x
    e = np.exp(xf - xf.max(axis=dim, keepdims=True))
    out = e / e.sum(axis=dim, keepdims=True)
    return out.astype(x.dtype) if low else out


@impl("log_softmax")
def _log_softmax(x, dim):
    if x.ndim and x.shape[dim] == 0:
        return x.copy()
    low = x.dtype.itemsize == 2 and x.dtype.kind in "fV"
    xf = x.astype(np.float32) if low else x
    s = xf - xf.max(axis=dim, keepdims=True)
    out = s - np.log(np.exp(s).sum(axis=dim, keepdims=True))
    return out.astype(x.dtype) if low else out


@impl("to_device")
def _to_host(x, device):
    if isinstance(x, np.ndarray):
        return x.copy()
    return x.to_numpy()  # a device buffer (see backends/cuda.py)


def install() -> None:
    """Attach every implementation to its op (``op.impls["cpu"]``).

    Also silences NumPy's floating-point RuntimeWarnings raised from framework code: IEEE
    results (inf, nan) are the defined behaviour, as in PyTorch, and a filter costs nothing
    on the hot path (``np.errstate`` per call would cost more than the op)."""
    import warnings
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"framework\.",
                            message=r"(invalid value|divide by zero|overflow) encountered")
    for name, fn in IMPLS.items():
        op = OPS.get(name)
        if op is not None:
            op.impls["cpu"] = fn


def to_numpy(buffer) -> np.ndarray:
    """The host array of a CPU buffer (itself)."""
    return buffer


def from_numpy(array: np.ndarray, device=None) -> np.ndarray:
    """A CPU buffer holding ``array`` (itself)."""
    return array
