"""Eager GPU ops through the Triton renderer: each op becomes a one-node graph over
inputs with symbolic sizes and strides, so one generated kernel serves every shape and
layout of a given (op, attributes, dtypes, rank) and eager ops never recompile per call.

Dims are coalesced first (adjacent dims whose strides chain in every operand merge, as in
PyTorch's TensorIterator), so a contiguous or broadcast operation of any rank runs the
rank-1 or rank-2 kernel. Functions take device buffers (``shape``, ``dtype``, ``stride()``,
``data_ptr()``) and an ``empty(shape, dtype)`` allocator.
"""

from __future__ import annotations

import math

import numpy as np

from framework import dtypes

from .triton import Leaf, PNode, render_pointwise, render_reduction, render_scan
from .triton_expr import XSYM, Buf, KernelBuilder
from .triton_index import address, as_expr, delinearize
from .triton_launch import TritonKernel
from .triton_ops import PREDICATES, compute_dtype

_CACHE: dict = {}


def fw_dtype(buf):
    """The framework dtype of a device buffer."""
    return dtypes.from_numpy(buf.dtype)


def _sym_leaf(name, dtype, rank):
    shape = tuple(as_expr(f"{name}_s{d}") for d in range(rank))
    strides = tuple(as_expr(f"{name}_st{d}") for d in range(rank))
    return Leaf(Buf(name, dtype, shape, strides))


def _bind(sizes, name, shape, strides):
    for d, (n, s) in enumerate(zip(shape, strides)):
        sizes[f"{name}_s{d}"] = int(n)
        sizes[f"{name}_st{d}"] = int(s)


def _cached(key, build):
    k = _CACHE.get(key)
    if k is None:
        k = _CACHE[key] = build()
    return k


def coalesce(shape, stride_lists):
    """Merge adjacent dims that are contiguous with each other in every stride list and
    drop size-1 dims: returns (shape, [strides...]) of the smallest equivalent rank."""
    dims = [(n, [st[d] for st in stride_lists]) for d, n in enumerate(shape) if n != 1]
    out = []
    for n, sts in dims:
        if out and all(prev == cur * n for prev, cur in zip(out[-1][1], sts)):
            n0, _ = out.pop()
            out.append((n0 * n, sts))
        else:
            out.append((n, sts))
    if not out:
        return (), [() for _ in stride_lists]
    shape2 = tuple(n for n, _ in out)
    return shape2, [tuple(sts[i] for _, sts in out) for i in range(len(stride_lists))]


def _broadcast_strides(buf, shape):
    lead = len(shape) - len(buf.shape)
    st = buf.stride()
    return tuple(0 if (i < lead or buf.shape[i - lead] == 1) else st[i - lead]
                 for i in range(len(shape)))


def _contiguous(shape):
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= int(n)
    return tuple(reversed(st))


def broadcast_shape(shapes):
    """NumPy broadcast of several shapes."""
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _scalar_key(v, out_dtype):
    if compute_dtype(out_dtype) is dtypes.float64 and isinstance(v, (int, float)):
        return ("f64", float(v))  # baked into the source as a literal
    return type(v).__name__


# -- pointwise -----------------------------------------------------------------------------
def elementwise(op: str, operands, attrs: dict, out_dtype, empty, out=None):
    """Run an elementwise op (unary/binary/where/cast) over buffers and Python scalars with
    broadcasting; returns ``out`` or a new contiguous buffer."""
    tensors = [a for a in operands if hasattr(a, "data_ptr")]
    shape = broadcast_shape([t.shape for t in tensors])
    if out is None:
        out = empty(shape, out_dtype.np)
    if math.prod(shape) == 0:
        return out
    strides = [_broadcast_strides(t, shape) for t in tensors] + [_broadcast_strides(out, shape)]
    cshape, cstrides = coalesce(shape, strides)
    rank = len(cshape)
    in_dtypes = tuple(fw_dtype(t).name for t in tensors)
    akey = tuple(sorted((k, v if not hasattr(v, "name") else v.name) for k, v in attrs.items()))
    lit_dt = fw_dtype(tensors[-1]) if op != "cast" else out_dtype  # dtype scalars compute in
    scal = tuple(None if hasattr(a, "data_ptr") else _scalar_key(a, lit_dt) for a in operands)
    out_fw = fw_dtype(out)
    key = ("ew", op, akey, in_dtypes, out_fw.name, rank, scal)

    def build():
        ins, leaves = [], iter([_sym_leaf(f"in{i}", fw_dtype(t), rank)
                                for i, t in enumerate(tensors)])
        for a in operands:
            ins.append(next(leaves) if hasattr(a, "data_ptr") else a)
        res_dtype = dtypes.bool_ if op in PREDICATES else (
            attrs["dtype"] if op == "cast" else _value_dtype(ins, op))
        node = PNode(op, ins, attrs, tuple(as_expr(f"s{d}") for d in range(rank)), res_dtype)
        if res_dtype is not out_fw:
            node = PNode("cast", [node], {"dtype": out_fw}, node.shape, out_fw)
        obuf = Buf("out0", out_fw, node.shape, tuple(as_expr(f"ost{d}") for d in range(rank)))
        return render_pointwise([node], label=op, out_bufs={0: obuf})

    kernel = _cached(key, build)
    sizes, bufs, scalars = {}, {"out0": out}, {}
    for d, n in enumerate(cshape):
        sizes[f"s{d}"] = n
        sizes[f"ost{d}"] = cstrides[-1][d]
    for i, t in enumerate(tensors):
        bufs[f"in{i}"] = t
        _bind(sizes, f"in{i}", cshape, cstrides[i])
    k = 0
    for a in operands:
        if not hasattr(a, "data_ptr"):
            scalars[f"sc{k}"] = int(a) if isinstance(a, bool) else a
            k += 1
    kernel(bufs, sizes, scalars if kernel.kb.scalars else {})
    return out


def _value_dtype(ins, op):
    for i, a in enumerate(ins):
        if isinstance(a, Leaf) and not (op == "where" and i == 0):
            return a.dtype
    for a in ins:
        if isinstance(a, Leaf):
            return a.dtype
    raise ValueError(f"{op}: no tensor operand")


def copy(src, dst) -> None:
    """``dst[...] = src`` with broadcasting and dtype conversion (any strides)."""
    elementwise("cast", [src], {"dtype": fw_dtype(dst)}, fw_dtype(dst), None, out=dst)


# -- reductions and scans ---------------------------------------------------------------
def reduce(op: str, x, dims, keepdim, out_dtype, empty):
    """Reduce ``x`` over ``dims`` (``op`` in sum prod amax amin argmax argmin any all)."""
    dims = tuple(sorted(d % max(len(x.shape), 1) for d in dims)) if x.shape else ()
    out_shape = tuple(1 if i in dims else n for i, n in enumerate(x.shape)) if keepdim else \
        tuple(n for i, n in enumerate(x.shape) if i not in dims)
    out = empty(out_shape, out_dtype.np)
    if math.prod(out_shape) == 0:
        return out
    st = x.stride()
    kept = [i for i in range(len(x.shape)) if i not in dims]
    kshape, (kst, ost) = coalesce([x.shape[i] for i in kept],
                                  [[st[i] for i in kept], list(_contiguous([x.shape[i]
                                                                           for i in kept]))])
    rshape, (rst,) = coalesce([x.shape[i] for i in dims], [[st[i] for i in dims]])
    if op in ("argmax", "argmin") and len(rshape) > 1:
        raise ValueError(f"{op}: reduces one dim, got {dims}")
    a, b = len(kshape), len(rshape)
    xdt = fw_dtype(x)
    key = ("red", op, a, b, xdt.name, out_dtype.name)

    def build():
        leaf = _sym_leaf("in0", xdt, a + b)
        node = PNode(op, [leaf], {"dims": tuple(range(a, a + b)), "keepdim": False},
                     leaf.shape[:a], out_dtype if op not in PREDICATES else dtypes.bool_)
        return render_reduction([node], leaf.shape, tuple(range(a, a + b)), label=op)

    kernel = _cached(key, build)
    sizes = {}
    _bind(sizes, "in0", tuple(kshape) + tuple(rshape), tuple(kst) + tuple(rst))
    kernel({"in0": x, "out0": out}, sizes)
    return out


def scan(kind: str, x, dim: int, empty):
    """Inclusive ``cumsum``/``cumprod`` along ``dim``; returns a contiguous buffer."""
    out = empty(x.shape, x.dtype)
    if math.prod(x.shape) == 0:
        return out
    st, ost = x.stride(), _contiguous(x.shape)
    kept = [i for i in range(len(x.shape)) if i != dim]
    kshape, (kst, kost) = coalesce([x.shape[i] for i in kept],
                                   [[st[i] for i in kept], [ost[i] for i in kept]])
    a = len(kshape)
    xdt = fw_dtype(x)
    key = ("scan", kind, a, xdt.name)

    def build():
        leaf = _sym_leaf("in0", xdt, a + 1)
        obuf = Buf("out0", xdt, leaf.shape, tuple(as_expr(f"ost{d}") for d in range(a + 1)))
        return render_scan(kind, leaf, a, label=kind, out_buf=obuf)

    kernel = _cached(key, build)
    sizes = {}
    _bind(sizes, "in0", tuple(kshape) + (x.shape[dim],), tuple(kst) + (st[dim],))
    for d, s in enumerate(tuple(kost) + (ost[dim],)):
        sizes[f"ost{d}"] = s
    kernel({"in0": x, "out0": out}, sizes)
    return out


# -- movement that copies ------------------------------------------------------------------
def movement(op: str, inputs, attrs: dict, out_shape, empty):
    """pad / cat / flip / trilu into a new contiguous buffer (symbolic sizes)."""
    x0 = inputs[0]
    dt = fw_dtype(x0)
    out = empty(tuple(out_shape), x0.dtype)
    if math.prod(out_shape) == 0:
        return out
    rank = len(out_shape)
    akey = tuple(sorted((k, v) for k, v in attrs.items()))
    key = ("mv", op, akey, dt.name, rank, len(inputs))

    def build():
        leaves = [_sym_leaf(f"in{i}", dt, rank) for i in range(len(inputs))]
        shape = _movement_shape(op, leaves, attrs)
        node = PNode(op, leaves, attrs, shape, dt)
        return render_pointwise([node], label=op)

    kernel = _cached(key, build)
    sizes, bufs = {}, {"out0": out}
    for i, t in enumerate(inputs):
        bufs[f"in{i}"] = t
        _bind(sizes, f"in{i}", t.shape, t.stride())
    kernel(bufs, sizes)
    return out


def _movement_shape(op, leaves, attrs):
    shape = list(leaves[0].shape)
    if op == "pad":
        pads = attrs["pads"]
        for i in range(len(pads) // 2):
            d = len(shape) - 1 - i
            shape[d] = shape[d] + pads[2 * i] + pads[2 * i + 1]
    elif op == "cat":
        d = attrs["dim"]
        shape[d] = sum((lf.shape[d] for lf in leaves[1:]), leaves[0].shape[d])
    return tuple(shape)


def gather(x, index, dim: int, empty):
    """``out[i] = x[i with dim d replaced by index[i]]`` (out has ``index``'s shape)."""
    dt = fw_dtype(x)
    out = empty(tuple(index.shape), x.dtype)
    if math.prod(index.shape) == 0:
        return out
    rank = len(index.shape)
    key = ("gather", dim, dt.name, fw_dtype(index).name, rank)

    def build():
        lx = _sym_leaf("in0", dt, len(x.shape))
        li = _sym_leaf("in1", fw_dtype(index), rank)
        node = PNode("gather", [lx, li], {"dim": dim}, li.shape, dt)
        return render_pointwise([node], label="gather")

    kernel = _cached(key, build)
    sizes = {}
    _bind(sizes, "in0", x.shape, x.stride())
    _bind(sizes, "in1", index.shape, index.stride())
    kernel({"in0": x, "in1": index, "out0": out}, sizes)
    return out


# -- creation and random -------------------------------------------------------------------
def fill(out, value) -> None:
    """Set every element of the contiguous buffer ``out`` to ``value``."""
    dt = fw_dtype(out)
    n = math.prod(out.shape)
    if n == 0:
        return
    key = ("fill", dt.name, _scalar_key(value, dt))

    def build():
        node = PNode("full", [], {"value": value}, (as_expr("s0"),), dt)
        return render_pointwise([node], label="fill")

    kernel = _cached(key, build)
    kernel({"out0": out}, {"s0": n}, {"sc0": int(value) if isinstance(value, bool) else value}
           if kernel.kb.scalars else {})


def arange(out, start, step) -> None:
    """``out[i] = start + i * step`` (1-D, contiguous)."""
    dt = fw_dtype(out)
    n = out.shape[0]
    if n == 0:
        return
    ints = isinstance(start, int) and isinstance(step, int)
    # float64 ramps bake start/step into the source (Triton scalars are fp32)
    key = ("arange", dt.name, ints) + ((start, step) if dt is dtypes.float64 and not ints else ())

    def build():
        kb = KernelBuilder()
        obuf = kb.add_buf(Buf("out0", dt, (as_expr("s0"),), (1,)))
        if ints:
            i = kb.index_value(XSYM, dtypes.int64)
            v = kb.op("add", [kb.op("mul", [i, kb.scalar(0, dtypes.int64)], dtypes.int64),
                              kb.scalar(0, dtypes.int64)], dtypes.int64)
        else:
            wide = dtypes.float64 if dt is dtypes.float64 else dtypes.float32
            i = kb.index_value(XSYM, wide)
            v = kb.op("add", [kb.op("mul", [i, kb.scalar(float(step), wide)], wide),
                              kb.scalar(float(start), wide)], wide)
        kb.store(obuf, XSYM, kb.cast(v, dt))
        return TritonKernel(kb, as_expr("s0"), None, "arange")

    kernel = _cached(key, build)
    kernel({"out0": out}, {"s0": n}, {"sc0": step, "sc1": start} if kernel.kb.scalars else {})


def random(out, kind: str, a: float, b: float, seed: int, offset: int) -> None:
    """Fill ``out`` with uniform [a, b) (``kind="uniform"``) or normal(a, b) numbers from
    the Philox stream ``seed`` starting at counter ``offset``."""
    dt = fw_dtype(out)
    n = math.prod(out.shape)
    if n == 0:
        return
    key = ("rand", kind, dt.name)

    def build():
        kb = KernelBuilder()
        obuf = kb.add_buf(Buf("out0", dt, (as_expr("s0"),), (1,)))
        seed_e = kb.scalar(0, dtypes.int64)
        f32 = dtypes.float32
        r = kb.rand(seed_e, XSYM + as_expr("offset"), kind == "normal", f32)
        lo, width = kb.scalar(0.0, f32), kb.scalar(1.0, f32)
        if kind == "uniform":  # low + u * (high - low)
            v = kb.op("add", [lo, kb.op("mul", [r, width], f32)], f32)
        else:  # mean + z * std
            v = kb.op("add", [lo, kb.op("mul", [r, width], f32)], f32)
        kb.store(obuf, XSYM, kb.cast(v, dt))
        return TritonKernel(kb, as_expr("s0"), None, f"rand_{kind}")

    kernel = _cached(key, build)
    width = (b - a) if kind == "uniform" else b
    kernel({"out0": out}, {"s0": n, "offset": int(offset)},
           {"sc0": int(seed), "sc1": float(a), "sc2": float(width)})


def linear_index_kernel(label, build_fn, key):
    """A cached kernel built by ``build_fn(kb)`` (for the indexing ops in the backend)."""
    return _cached(("custom", label) + tuple(key), build_fn)


__all__ = ["elementwise", "fused_unary", "copy", "reduce", "scan", "movement", "gather", "fill",
           "arange", "random", "coalesce", "broadcast_shape", "fw_dtype", "linear_index_kernel",
           "address", "delinearize"]


def fused_unary(label: str, x, out_dtype, build, empty, key=()):
    """One kernel computing ``build(leaf) -> PNode`` elementwise over ``x`` (any layout):
    composites such as gelu run as a single kernel instead of their decomposition."""
    out = empty(tuple(x.shape), out_dtype.np)
    if math.prod(x.shape) == 0:
        return out
    cshape, (xst, ost) = coalesce(x.shape, [x.stride(), out.stride()])
    rank = len(cshape)
    xdt = fw_dtype(x)

    def make():
        leaf = _sym_leaf("in0", xdt, rank)
        node = build(leaf)
        obuf = Buf("out0", out_dtype, node.shape, tuple(as_expr(f"ost{d}") for d in range(rank)))
        return render_pointwise([node], label=label, out_bufs={0: obuf})

    kernel = _cached(("fused", label, tuple(key), xdt.name, out_dtype.name, rank), make)
    sizes = {}
    _bind(sizes, "in0", cshape, xst)
    for d, s in enumerate(ost):
        sizes[f"ost{d}"] = s
    kernel({"in0": x, "out0": out}, sizes)
    return out
