"""CUDA implementations of the registered ops (filled into ``cuda.IMPLS``).

Each receives device buffers (or Python scalars) plus the op's attributes, exactly like the
CPU implementations, and returns buffers of the dtype the meta rule promised.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..ops.pointwise import BINARY_OPS, UNARY_OPS
from .cuda import IMPLS, CudaBuffer, contiguous, empty, from_numpy, fw_dtype
from .cuda_runtime import SIMULATED


def impl(*names):
    """Register the decorated function as the CUDA implementation of ``names``."""
    def deco(fn):
        for n in names:
            IMPLS[n] = fn
        return fn
    return deco


def _ev():
    from compiler.codegen import triton_eager
    return triton_eager


def _dev(buf):
    return buf.alloc.device


def _alloc_like(ref):
    def alloc(shape, dtype):
        return empty(shape, dtype, _dev(ref))
    return alloc


def _first_buf(args):
    return next(a for a in args if isinstance(a, CudaBuffer))


# -- elementwise ----------------------------------------------------------------------------
_PRED = {"isnan", "isinf", "isfinite", "logical_not", "eq", "ne", "lt", "le", "gt", "ge",
         "logical_and", "logical_or", "logical_xor"}


def _elementwise(name):
    def run(*args, **attrs):
        ref = _first_buf(args)
        if name in _PRED:
            out_dt = dtypes.bool_
        elif name == "cast":
            out_dt = attrs["dtype"]
        elif name == "where":
            out_dt = fw_dtype(next(a for a in args[1:] if isinstance(a, CudaBuffer)))
        else:
            out_dt = fw_dtype(ref)
        if name == "pow" and out_dt.category == dtypes.INT and isinstance(args[1], CudaBuffer):
            _check_int_pow(args[1])
        return _ev().elementwise(name, list(args), attrs, out_dt, _alloc_like(ref))
    run.__name__ = f"cuda_{name}"
    return run


def _check_int_pow(exponent):
    from ..errors import ArgumentError
    neg = _ev().reduce("any", _ev().elementwise("lt", [exponent, 0], {}, dtypes.bool_,
                                                _alloc_like(exponent)),
                       tuple(range(exponent.ndim)), False, dtypes.bool_, _alloc_like(exponent))
    if bool(neg.to_numpy()):
        raise ArgumentError("pow: integers to negative integer powers are not allowed")


for _n in list(UNARY_OPS) + list(BINARY_OPS) + ["where", "cast"]:
    IMPLS[_n] = _elementwise(_n)


# -- reductions and scans -------------------------------------------------------------------
def _reduction(name):
    def run(x, dims, keepdim):
        if name in ("argmax", "argmin"):
            out_dt = dtypes.int64
            if not dims:
                out = empty(x.shape, np.int64, _dev(x))
                _ev().fill(out, 0)
                return out
        elif name in ("any", "all"):
            out_dt = dtypes.bool_
        else:
            out_dt = fw_dtype(x)
        return _ev().reduce(name, x, tuple(dims), keepdim, out_dt, _alloc_like(x))
    run.__name__ = f"cuda_{name}"
    return run


for _n in ("sum", "prod", "amax", "amin", "argmax", "argmin", "any", "all"):
    IMPLS[_n] = _reduction(_n)


@impl("cumsum")
def _cumsum(x, dim):
    return _ev().scan("cumsum", x, dim, _alloc_like(x))


@impl("cumprod")
def _cumprod(x, dim):
    return _ev().scan("cumprod", x, dim, _alloc_like(x))


@impl("argsort")
def _argsort(x, dim, descending, stable):
    """Stable sort order along ``dim``: rows of values of at most 32 bits and up to
    ``triton_kernels.sort.MAX_SORT_N`` elements sort on the device (one program a row,
    a bitonic network over (value, column) keys); float64/int64 values and longer rows
    are copied to the host, sorted by the CPU kernel (``cpu_sort.argsort_numpy``: the same
    order) and the indices copied back. Every sort is stable, so ``stable`` changes
    nothing."""
    from triton_kernels import sort as tk_sort
    n = x.shape[dim] if x.ndim else 1
    if x.ndim == 0 or not tk_sort.supports(x.dtype, n):
        from .cpu_sort import argsort_numpy
        from .cuda import _DeviceIndex
        return from_numpy(argsort_numpy(x.to_numpy(), dim, descending), _DeviceIndex(_dev(x)))
    perm = [d for d in range(x.ndim) if d != dim] + [dim]
    rows = contiguous(_permute(x, perm))  # the sorted dim last, leading dims dense
    order = tk_sort.argsort(rows, descending=descending, empty=_alloc_like(x))
    back = [perm.index(d) for d in range(x.ndim)]
    return contiguous(_permute(order, back))


# -- views ----------------------------------------------------------------------------------
def view_strides(shape, strides, new_shape):
    """Strides of ``new_shape`` viewing memory laid out as (shape, strides), or None when
    the layout does not allow a view (PyTorch's computeStride)."""
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    new_st = [0] * len(new_shape)
    if math.prod(shape) == 0:
        return tuple(_contig(new_shape))
    oi, ni = 0, 0
    new_nz = [i for i, n in enumerate(new_shape) if n != 1]
    while ni < len(new_nz):
        if oi >= len(old):
            return None
        # take a chunk of old dims that are contiguous with each other
        chunk_n, chunk_st = old[oi][0], old[oi][1]
        oi += 1
        while oi < len(old) and old[oi - 1][1] == old[oi][0] * old[oi][1]:
            chunk_n *= old[oi][0]
            chunk_st = old[oi][1]
            oi += 1
        # split the chunk among the next new dims
        acc = 1
        group = []
        while ni < len(new_nz) and acc < chunk_n:
            acc *= new_shape[new_nz[ni]]
            group.append(new_nz[ni])
            ni += 1
        if acc != chunk_n:
            return None
        st = chunk_st
        for i in reversed(group):
            new_st[i] = st
            st *= new_shape[i]
    if oi != len(old):
        return None
    for i, n in enumerate(new_shape):
        if n == 1:
            new_st[i] = (new_st[i + 1] * new_shape[i + 1]) if i + 1 < len(new_shape) else 1
    return tuple(new_st)


def _contig(shape):
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= int(n)
    return list(reversed(st))


def can_view(buf, shape) -> bool:
    """True when ``buf`` can be reshaped to ``shape`` without a copy."""
    return view_strides(buf.shape, buf.stride(), tuple(shape)) is not None


@impl("reshape")
def _reshape(x, shape):
    st = view_strides(x.shape, x.stride(), tuple(shape))
    if st is None:  # callers make x viewable first (ops.movement.reshape); be safe anyway
        x = contiguous(x)
        st = tuple(_contig(shape))
    return x.view(shape, st, x.offset)


@impl("detach")
def _detach(x):
    return x.view(x.shape, x.stride(), x.offset)


@impl("permute")
def _permute(x, dims):
    st = x.stride()
    return x.view(tuple(x.shape[d] for d in dims), tuple(st[d] for d in dims), x.offset)


@impl("expand")
def _expand(x, shape):
    lead = len(shape) - x.ndim
    st = x.stride()
    new_st = [0] * lead + [0 if (x.shape[i] == 1 and shape[lead + i] != 1) else st[i]
                           for i in range(x.ndim)]
    return x.view(shape, new_st, x.offset)


@impl("slice")
def _slice(x, starts, stops, steps):
    st = x.stride()
    offset = x.offset
    shape, new_st = [], []
    for d, (a, b, c) in enumerate(zip(starts, stops, steps)):
        n = len(range(a, min(b, x.shape[d]), c))
        shape.append(n)
        new_st.append(st[d] * c)
        if n:
            offset += a * st[d]
    return x.view(shape, new_st, offset)


@impl("as_strided")
def _as_strided(x, size, stride, offset):
    x = contiguous(x)  # a no-op in eager mode: ops.strided picks a contiguous source
    return x.view(tuple(size), tuple(stride), x.offset + offset)


# -- copying movement ------------------------------------------------------------------------
@impl("clone")
def _clone(x):
    out = empty(x.shape, x.dtype, _dev(x))
    _ev().copy(x, out)
    return out


@impl("pad")
def _pad(x, pads, value):
    shape = list(x.shape)
    for i in range(len(pads) // 2):
        d = x.ndim - 1 - i
        shape[d] += pads[2 * i] + pads[2 * i + 1]
    return _ev().movement("pad", [x], {"pads": tuple(pads), "value": value}, shape,
                          _alloc_like(x))


@impl("cat")
def _cat(*xs, dim):
    shape = list(xs[0].shape)
    shape[dim] = sum(x.shape[dim] for x in xs)
    return _ev().movement("cat", list(xs), {"dim": dim}, shape, _alloc_like(xs[0]))


@impl("flip")
def _flip(x, dims):
    return _ev().movement("flip", [x], {"dims": tuple(dims)}, x.shape, _alloc_like(x))


@impl("trilu")
def _trilu(x, k, upper):
    return _ev().movement("trilu", [x], {"k": int(k), "upper": bool(upper)}, x.shape,
                          _alloc_like(x))


# -- creation and random ---------------------------------------------------------------------
def _index(device):
    return device.index or 0


@impl("full")
def _full(shape, value, dtype, device):
    out = empty(shape, dtype.np, _index(device))
    _ev().fill(out, value)
    return out


@impl("arange")
def _arange(shape, start, step, dtype, device):
    out = empty(shape, dtype.np, _index(device))
    _ev().arange(out, start, step)
    return out


def _random(out, kind, a, b, generator):
    from .. import cuda as fw_cuda
    seed, offset = fw_cuda.philox_state(generator, math.prod(out.shape))
    _ev().random(out, kind, float(a), float(b), seed, offset)
    return out


@impl("uniform")
def _uniform(shape, low, high, dtype, device, generator):
    return _random(empty(shape, dtype.np, _index(device)), "uniform", low, high, generator)


@impl("normal")
def _normal(shape, mean, std, dtype, device, generator):
    return _random(empty(shape, dtype.np, _index(device)), "normal", mean, std, generator)


def _host_from_uniform(shape, device, generator, fn, dtype):
    """Draw float64 U[0, 1) on the device (the generator's Philox stream), finish on the
    host with ``fn`` and copy back: randint / randperm are small index tensors."""
    u = _random(empty(shape, np.float64, _index(device)), "uniform", 0.0, 1.0, generator)
    return from_numpy(fn(u.to_numpy()).astype(dtype.np), device)


@impl("randint")
def _randint(shape, low, high, dtype, device, generator):
    return _host_from_uniform(shape, device, generator, lambda u: np.minimum(
        np.floor(low + u * (high - low)), high - 1), dtype)


@impl("randperm")
def _randperm(shape, dtype, device, generator):
    return _host_from_uniform(shape, device, generator,
                              lambda u: np.argsort(u, kind="stable"), dtype)


@impl("to_device")
def _to_device(x, device):
    if isinstance(x, CudaBuffer):
        out = empty(x.shape, x.dtype, _index(device))
        _ev().copy(x, out)
        return out
    return from_numpy(np.asarray(x), device)


# -- composites with hand-written kernels ----------------------------------------------------
_TK_FLOATS = ("float16", "bfloat16", "float32")


def _decomp(name, *args, **attrs):
    """The composite's decomposition run on device tensors (for cases without a kernel)."""
    from ..device import device as make_device
    from ..ops.registry import OPS, _run_decomposition
    from ..tensor import Tensor
    ref = _first_buf(args)
    dev = make_device("cuda", _dev(ref))
    wrapped = [Tensor._wrap(a, fw_dtype(a), dev) if isinstance(a, CudaBuffer) else a
               for a in args]
    return _run_decomposition(OPS[name], dev, wrapped, attrs)


def _softmax_impl(log):
    def run(x, dim):
        if x.dtype.name not in _TK_FLOATS or x.ndim == 0:
            return _decomp("log_softmax" if log else "softmax", x, dim=dim)
        from triton_kernels import softmax as tk
        out = empty(x.shape, x.dtype, _dev(x))
        perm = [d for d in range(x.ndim) if d != dim] + [dim]
        xv, ov = _permute(x, perm), _permute(out, perm)
        try:
            tk.softmax(xv, log=log, out=ov)
        except ValueError:  # leading dims not collapsible: work on a dense copy
            tk.softmax(contiguous(xv), log=log, out=ov)
        return out
    return run


IMPLS["softmax"] = _softmax_impl(False)
IMPLS["log_softmax"] = _softmax_impl(True)


@impl("gelu")
def _gelu(x, approximate):
    """gelu as one kernel (its decomposition would launch about eight)."""
    import math as _m
    from compiler.codegen.triton import PNode
    dt = fw_dtype(x)
    if not dt.is_floating_point:
        return _decomp("gelu", x, approximate=approximate)

    def build(leaf):
        s = leaf.shape

        def op(name, *args):
            return PNode(name, list(args), {}, s, dt)
        if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            inner = op("mul", op("add", leaf, op("mul", op("mul", op("mul", leaf, leaf), leaf),
                                                 0.044715)), _m.sqrt(2.0 / _m.pi))
            t = op("tanh", inner)
        else:  # 0.5 x (1 + erf(x / sqrt(2)))
            t = op("erf", op("mul", leaf, 1.0 / _m.sqrt(2.0)))
        return op("mul", op("mul", leaf, 0.5), op("add", t, 1.0))
    return _ev().fused_unary("gelu", x, dt, build, _alloc_like(x), key=(approximate,))


@impl("layer_norm")
def _layer_norm(x, weight, bias, normalized_ndim, eps):
    if x.dtype.name not in _TK_FLOATS or normalized_ndim != 1:
        return _decomp("layer_norm", x, weight, bias, normalized_ndim=normalized_ndim, eps=eps)
    from triton_kernels import layer_norm as tk
    try:
        y, _, _ = tk.layer_norm(x, contiguous(weight), contiguous(bias), eps=eps,
                                empty=_alloc_like(x))
    except ValueError:
        y, _, _ = tk.layer_norm(contiguous(x), contiguous(weight), contiguous(bias), eps=eps,
                                empty=_alloc_like(x))
    return y


@impl("cross_entropy")
def _cross_entropy(logits, target, ignore_index):
    if logits.dtype.name not in _TK_FLOATS:
        return _decomp("cross_entropy", logits, target, ignore_index=ignore_index)
    from triton_kernels import cross_entropy as tk
    loss, _ = tk.cross_entropy(logits, target, ignore_index=ignore_index, empty=_alloc_like(logits))
    if loss.dtype != logits.dtype:
        return loss.astype(logits.dtype)
    return loss


@impl("embedding")
def _embedding(weight, indices, padding_idx, **extra):
    if weight.dtype.name not in _TK_FLOATS or indices.dtype.name not in ("int32", "int64"):
        return _decomp("embedding", weight, indices, padding_idx=padding_idx, **extra)
    from triton_kernels import embedding as tk
    try:
        return tk.embedding(weight, indices, empty=_alloc_like(weight))
    except ValueError:
        return tk.embedding(weight, contiguous(indices), empty=_alloc_like(weight))


from . import cuda_conv, cuda_index  # noqa: E402,F401  (conv/pool, matmul, einsum, indexing)
from . import cuda_attention  # noqa: E402,F401  (flash_attention: triton_kernels.attention)

__all__ = ["impl", "view_strides", "can_view", "SIMULATED"]


# -- linalg (framework/ops/linalg_ops.py): LAPACK on a host copy ----------------------------
def _linalg_on_host(name):
    def run(*args, **attrs):
        """The CPU (NumPy/LAPACK) kernel on host copies of the buffers; the results are
        copied back to the device (device kernels are future work)."""
        from .cpu import IMPLS as CPU_IMPLS
        from .cuda import _DeviceIndex
        dev = _DeviceIndex(_dev(_first_buf(args)))
        res = CPU_IMPLS[name](*[a.to_numpy() if isinstance(a, CudaBuffer) else a
                                for a in args], **attrs)
        if isinstance(res, tuple):
            return tuple(from_numpy(np.array(r, order="C"), dev) for r in res)
        return from_numpy(np.array(res, order="C"), dev)
    run.__name__ = f"cuda_{name}"
    return run


for _n in ("linalg_det", "linalg_slogdet", "linalg_inv", "linalg_solve", "linalg_cholesky",
           "linalg_qr", "linalg_eigh", "linalg_svd", "linalg_solve_triangular",
           "linalg_lu_factor", "linalg_lu_permutation", "linalg_matrix_exp",
           "linalg_cholesky_ex", "linalg_inv_ex", "linalg_solve_ex"):
    IMPLS[_n] = _linalg_on_host(_n)


# -- complex ops: refused (apply() already refuses complex tensors on "cuda"; these rows
# keep the table complete and the refusal explicit) ----------------------------------------
def _complex_refused(*args, **attrs):
    raise NotImplementedError("complex dtypes are not supported on cuda; keep complex "
                              "tensors (and fw.fft) on the CPU")


for _name in ("real", "imag", "view_as_real", "view_as_complex", "conj", "complex_angle",
              "complex", "fft_c2c", "fft_r2c", "fft_c2r", "linalg_eig"):
    IMPLS[_name] = _complex_refused
