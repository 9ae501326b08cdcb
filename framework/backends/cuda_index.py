"""CUDA implementations of matmul, einsum, gather/scatter and advanced indexing.

matmul on fp16/bf16/fp32 uses ``triton_kernels.matmul``; other dtypes and every einsum run
a generated contraction kernel: each operand is read through strides laid over the
(output letters + summed letters) iteration space and the product is summed over the
summed letters. Indexing kernels are generated with the shapes baked in and strides as
arguments; the index tensors are bounds-checked before launch. ``scatter_reduce`` is
computed on the host by the CPU kernel (see :func:`_scatter_reduce`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..errors import FwIndexError
from ..ops.indexing import TensorSlot, _key_shape
from .cuda import IMPLS, CudaBuffer, contiguous, empty, from_numpy, fw_dtype
from .cuda_ops import _alloc_like, _clone, _dev, _ev, _expand, _reshape, impl, view_strides

_TK = ("float16", "bfloat16", "float32")


def _cg():
    from compiler.codegen import triton as cg
    from compiler.codegen import triton_expr as tx
    from compiler.codegen import triton_index as ti
    return cg, tx, ti


# -- contraction (einsum, and matmul for other dtypes) -------------------------------------
def contraction(operands, terms, out_letters, alloc):
    """``einsum(",".join(terms) + "->" + out_letters, *operands)`` in one kernel."""
    cg, tx, ti = _cg()
    sizes = {}
    for term, buf in zip(terms, operands):
        for c, n in zip(term, buf.shape):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
    summed = "".join(c for c in dict.fromkeys("".join(terms)) if c not in out_letters)
    letters = out_letters + summed
    dt = fw_dtype(operands[0])
    out = alloc(tuple(sizes[c] for c in out_letters), dt.np)
    if math.prod(out.shape) == 0:
        return out
    key = ("contract", tuple(terms), out_letters, dt.name)

    def build():
        shape = tuple(ti.as_expr(f"n_{c}") for c in letters)
        leaves = [cg.Leaf(tx.Buf(f"in{i}", dt, shape, tuple(ti.as_expr(f"in{i}_st_{c}")
                                                            for c in letters)))
                  for i in range(len(operands))]
        prod = leaves[0]
        for lf in leaves[1:]:
            prod = cg.PNode("mul", [prod, lf], {}, shape, dt)
        if not summed:
            node = prod if isinstance(prod, cg.PNode) else cg.PNode("clone", [prod], {}, shape, dt)
            return cg.render_pointwise([node], label="einsum")
        dims = tuple(range(len(out_letters), len(letters)))
        node = cg.PNode("sum", [prod], {"dims": dims, "keepdim": False},
                        shape[:len(out_letters)], dt)
        return cg.render_reduction([node], shape, dims, label="contract")

    kernel = _ev().linear_index_kernel("contract", build, key)
    args = {f"n_{c}": sizes[c] for c in letters}
    bufs = {"out0": out}
    for i, (term, buf) in enumerate(zip(terms, operands)):
        bufs[f"in{i}"] = buf
        st = dict.fromkeys(letters, 0)
        for c, n, s in zip(term, buf.shape, buf.stride()):
            if n != 1:
                st[c] += s  # repeated letters read the diagonal
        for c in letters:
            args[f"in{i}_st_{c}"] = st[c]
    kernel(bufs, args)
    return out


@impl("einsum")
def _einsum(*ops, equation):
    from ..ops.linalg import _parse_einsum
    terms, rhs = _parse_einsum(equation, len(ops))
    return contraction(list(ops), terms, rhs, _alloc_like(ops[0]))


def _batch_view(buf, batch, rows, cols):
    """``buf`` expanded to batch + (rows, cols) and viewed as 3-D (copying if needed)."""
    full = tuple(batch) + (rows, cols)
    v = _expand(buf, full)
    st = view_strides(v.shape, v.stride(), (math.prod(batch), rows, cols))
    if st is None:
        v = contiguous(v)
        st = view_strides(v.shape, v.stride(), (math.prod(batch), rows, cols))
    return v.view((math.prod(batch), rows, cols), st, v.offset)


@impl("matmul")
def _matmul(a, b):
    return matmul(a, b)


def matmul(a, b, bias=None):
    """``a @ b`` (NumPy broadcasting, 1-D cases), ``+ bias`` ([N]) fused into the
    ``triton_kernels`` epilogue when given (fp16/bf16/fp32, ``b`` at least 2-D)."""
    a2 = _reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = _reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    final = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    if bias is not None and (a.dtype.name not in _TK or b.ndim < 2):
        raise ValueError("matmul: a fused bias needs fp16/bf16/fp32 operands and a 2-D b")
    if a.dtype.name not in _TK:
        letters = "abcdefghijklmnop"[:len(batch)]
        out = contraction([_expand(a2, batch + (m, k)), _expand(b2, batch + (k, n))],
                          [letters + "mk", letters + "kn"], letters + "mn", _alloc_like(a))
        return _reshape(out, final)
    from triton_kernels import matmul as tk
    from .. import _state
    tf32 = _state.float32_matmul_precision != "highest"
    if batch:
        out = tk.matmul(_batch_view(a2, batch, m, k), _batch_view(b2, batch, k, n),
                        bias=bias, empty=_alloc_like(a), allow_tf32=tf32)
    else:
        out = tk.matmul(a2, b2, bias=bias, empty=_alloc_like(a), allow_tf32=tf32)
    return _reshape(out, final)


# -- gather / scatter ----------------------------------------------------------------------
def _check_range(index: CudaBuffer, size: int, what: str, allow_negative: bool) -> None:
    if math.prod(index.shape) == 0:
        return
    alloc = _alloc_like(index)
    dims = tuple(range(index.ndim))
    lo = int(_ev().reduce("amin", index, dims, False, fw_dtype(index), alloc).to_numpy())
    hi = int(_ev().reduce("amax", index, dims, False, fw_dtype(index), alloc).to_numpy())
    low_ok = -size if allow_negative else 0
    if lo < low_ok or hi >= size:
        bad = hi if hi >= size else lo
        raise FwIndexError(f"{what}: index {bad} is out of bounds for dimension with size {size}")


@impl("gather")
def _gather(x, index, dim):
    if x.ndim == 0:  # one element along dim 0: the index must be 0
        _check_range(index, 1, "gather", False)
        return _clone(x)
    _check_range(index, x.shape[dim], "gather", False)
    return _ev().gather(x, index, dim, _alloc_like(x))


def _scratch_dtype(dt):
    if dt in (dtypes.float16, dtypes.bfloat16):
        return dtypes.float32
    if dt in (dtypes.bool_, dtypes.uint8, dtypes.int8, dtypes.int16):
        return dtypes.int32
    return dt


def _scatter_kernel(out, index, src, dim, mode):
    """out[p with dim -> index[p]] (=|+=) src[p] for every position p of ``index``."""
    cg, tx, ti = _cg()
    rank = index.ndim
    is_buf = isinstance(src, CudaBuffer)
    key = ("scatter", mode, dim, rank, fw_dtype(out).name, fw_dtype(index).name,
           fw_dtype(src).name if is_buf else type(src).__name__, tuple(index.shape),
           tuple(out.shape), tuple(src.shape) if is_buf else ())

    def build():
        kb = tx.KernelBuilder()
        dt = fw_dtype(out)
        ob = kb.add_buf(tx.Buf("out0", dt, out.shape,
                               [ti.as_expr(f"o_st{d}") for d in range(rank)]))
        ib = kb.add_buf(tx.Buf("in0", fw_dtype(index), index.shape,
                               [ti.as_expr(f"i_st{d}") for d in range(rank)]))
        p = ti.delinearize(tx.XSYM, index.shape)
        iv = kb.load(ib, ti.address(p, ib.strides))
        iv = kb.where(kb.op("lt", [iv, kb.literal(0, iv.dtype)], dtypes.bool_),
                      kb.op("add", [iv, kb.literal(out.shape[dim], iv.dtype)], iv.dtype), iv)
        if is_buf:
            sb = kb.add_buf(tx.Buf("in1", fw_dtype(src), src.shape,
                                   [ti.as_expr(f"s_st{d}") for d in range(rank)]))
            val = kb.cast(kb.load(sb, ti.address(p, sb.strides)), dt)
        else:
            val = kb.scalar(src, dt)
        items = list(p)
        items[dim] = kb.dyn(iv)
        kb.store(ob, ti.address(ti.Idx(items), ob.strides), val, mode=mode)
        return cg.TritonKernel(kb, math.prod(index.shape), None, f"scatter_{mode}")

    kernel = _ev().linear_index_kernel("scatter", build, key)
    sizes = {f"o_st{d}": s for d, s in enumerate(out.stride())}
    sizes.update({f"i_st{d}": s for d, s in enumerate(index.stride())})
    bufs = {"out0": out, "in0": index}
    if is_buf:
        bufs["in1"] = src
        sizes.update({f"s_st{d}": s for d, s in enumerate(src.stride())})
    scalars = {} if is_buf else {"sc0": int(src) if isinstance(src, bool) else src}
    kernel(bufs, sizes, scalars)


def _as_1d(b):
    return b.view((1,), (1,), b.offset) if isinstance(b, CudaBuffer) and b.ndim == 0 else b


def _scatter_common(x, index, src, dim, mode):
    if math.prod(index.shape) == 0:
        return _clone(x)
    if x.ndim == 0:  # one element along dim 0, as PyTorch treats 0-d tensors
        out = _scatter_common(_as_1d(x), _as_1d(index), _as_1d(src), 0, mode)
        return out.view((), (), out.offset)
    _check_range(index, x.shape[dim], "scatter", True)
    dt = fw_dtype(x)
    work_dt = _scratch_dtype(dt) if mode == "atomic_add" else dt
    out = empty(x.shape, work_dt.np, _dev(x))
    _ev().copy(x, out)
    _scatter_kernel(out, index, src, dim, mode)
    return out if work_dt is dt else out.astype(dt.np)


@impl("scatter")
def _scatter(x, index, src, dim):
    return _scatter_common(x, index, src, dim, "store")


@impl("scatter_add")
def _scatter_add(x, index, src, dim):
    return _scatter_common(x, index, src, dim, "atomic_add")


# -- advanced indexing ---------------------------------------------------------------------
def _key_layout(ndim, key, idx_shapes):
    """Per x dim: ("int", i) | ("slice", (start, step), out_dim) | ("tensor", k), the
    broadcast index shape and where its dims sit in the output."""
    key = list(key) + [slice(None)] * (ndim - len(key))
    has_t = any(isinstance(k, TensorSlot) for k in key)
    adv = [d for d, k in enumerate(key) if isinstance(k, TensorSlot) or
           (has_t and isinstance(k, (int, np.integer)))]
    bshape = tuple(np.broadcast_shapes(*[idx_shapes[k.i] for k in key
                                         if isinstance(k, TensorSlot)])) if has_t else ()
    adjacent = bool(adv) and adv == list(range(adv[0], adv[-1] + 1))
    return key, adv, bshape, adjacent


def _index_map(kb, tx, ti, x_shape, key, idx_bufs, idx_leaves, out_idx):
    """x's index (with dyn symbols for loaded indices) for the output index ``out_idx``."""
    key, adv, bshape, adjacent = _key_layout(len(x_shape), key, [b.shape for b in idx_bufs])
    nb = len(bshape)
    if adv:
        b_start = sum(1 for d, k in enumerate(key[:adv[0]]) if isinstance(k, slice)) \
            if adjacent else 0
    pos = 0
    items = []
    bidx = tuple(out_idx[b_start:b_start + nb]) if adv else ()
    for d, k in enumerate(key):
        if adv and pos == b_start:
            pos += nb
        if isinstance(k, TensorSlot):
            leaf = idx_leaves[k.i]
            lead = nb - len(leaf.shape)
            sub = [0 if leaf.shape[j] == 1 else bidx[lead + j] for j in range(len(leaf.shape))]
            iv = kb.load(leaf, ti.address(ti.Idx(sub), leaf.strides))
            iv = kb.where(kb.op("lt", [iv, kb.literal(0, iv.dtype)], dtypes.bool_),
                          kb.op("add", [iv, kb.literal(x_shape[d], iv.dtype)], iv.dtype), iv)
            items.append(kb.dyn(iv))
        elif isinstance(k, slice):
            start, _, step = k.indices(x_shape[d])
            items.append(start + out_idx[pos] * step)
            pos += 1
        else:
            items.append(int(k) + (x_shape[d] if k < 0 else 0))
    return ti.Idx(items)


def _index_kernel(label, x, idx, key, value=None, mode="load"):
    cg, tx, ti = _cg()
    res_shape = tuple(_key_shape(x.shape, key, [t.shape for t in idx]))
    v_is_buf = isinstance(value, CudaBuffer)
    ck = (label, mode, repr(key), tuple(x.shape), tuple(t.shape for t in idx),
          fw_dtype(x).name, tuple(fw_dtype(t).name for t in idx),
          (tuple(value.shape), fw_dtype(value).name) if v_is_buf else type(value).__name__)

    def build():
        kb = tx.KernelBuilder()
        dt = fw_dtype(x)
        xb = kb.add_buf(tx.Buf("in0", dt, x.shape, [ti.as_expr(f"x_st{d}") for d in range(x.ndim)]))
        leaves = [kb.add_buf(tx.Buf(f"idx{i}", fw_dtype(t), t.shape,
                                    [ti.as_expr(f"idx{i}_st{d}") for d in range(t.ndim)]))
                  for i, t in enumerate(idx)]
        p = ti.delinearize(tx.XSYM, res_shape)
        xi = _index_map(kb, tx, ti, x.shape, key, idx, leaves, p)
        if mode == "load":
            ob = kb.add_buf(tx.Buf("out0", dt, res_shape, ti.contiguous_strides(res_shape)))
            kb.store(ob, ti.address(p, ob.strides), kb.load(xb, ti.address(xi, xb.strides)))
        else:
            if v_is_buf:
                vb = kb.add_buf(tx.Buf("v0", fw_dtype(value), value.shape,
                                       [ti.as_expr(f"v_st{d}") for d in range(value.ndim)]))
                lead = len(res_shape) - value.ndim
                sub = [0 if value.shape[j] == 1 else p[lead + j] for j in range(value.ndim)]
                val = kb.cast(kb.load(vb, ti.address(ti.Idx(sub), vb.strides)), dt)
            else:
                val = kb.scalar(value, dt)
            kb.store(xb, ti.address(xi, xb.strides), val, mode=mode)
        return cg.TritonKernel(kb, max(math.prod(res_shape), 1) if res_shape else 1, None,
                               label)

    kernel = _ev().linear_index_kernel(label, build, ck)
    return kernel, res_shape


def _check_index_tensors(x, idx, key, what):
    key = list(key) + [slice(None)] * (x.ndim - len(key))
    for d, k in enumerate(key):
        if isinstance(k, TensorSlot):
            _check_range(idx[k.i], x.shape[d], what, True)


def _index_args(x, idx, value=None):
    sizes = {f"x_st{d}": s for d, s in enumerate(x.stride())}
    bufs = {"in0": x}
    for i, t in enumerate(idx):
        bufs[f"idx{i}"] = t
        sizes.update({f"idx{i}_st{d}": s for d, s in enumerate(t.stride())})
    if isinstance(value, CudaBuffer):
        bufs["v0"] = value
        sizes.update({f"v_st{d}": s for d, s in enumerate(value.stride())})
    return bufs, sizes


@impl("index")
def _index(x, *idx, key):
    _check_index_tensors(x, idx, key, "index")
    kernel, res_shape = _index_kernel("index", x, idx, key)
    out = empty(res_shape, x.dtype, _dev(x))
    if math.prod(res_shape) == 0:
        return out
    bufs, sizes = _index_args(x, idx)
    bufs["out0"] = out
    kernel(bufs, sizes)
    return out


@impl("index_put")
def _index_put(x, v, *idx, key, accumulate):
    _check_index_tensors(x, idx, key, "index_put")
    dt = fw_dtype(x)
    work_dt = _scratch_dtype(dt) if accumulate else dt
    out = empty(x.shape, work_dt.np, _dev(x))
    _ev().copy(x, out)
    mode = "atomic_add" if accumulate else "store"
    kernel, res_shape = _index_kernel("index_put", out, idx, key, v, mode)
    if math.prod(res_shape) != 0:
        bufs, sizes = _index_args(out, idx, v)
        kernel(bufs, sizes, {} if isinstance(v, CudaBuffer) else
               {"sc0": int(v) if isinstance(v, bool) else v})
    return out if work_dt is dt else out.astype(dt.np)


# -- scatter_reduce ------------------------------------------------------------------------
@impl("scatter_reduce")
def _scatter_reduce(x, index, src, dim, reduce, include_self):
    """``scatter_reduce`` computed on the host: ``x``, ``index`` and ``src`` are copied to
    host memory, reduced by the CPU kernel (``cpu_scatter_reduce.scatter_reduce_numpy``:
    ``ufunc.at``, NaN-propagating amax/amin, floor-division mean for integers, the same
    index range check) and the result is copied back to ``x``'s device. A device kernel
    (atomic add/mul/max/min per dtype, a count pass for mean) is future work; the op has a
    static output shape, so ``fw.compile`` still captures it whole (a backend step)."""
    from .cpu_scatter_reduce import scatter_reduce_numpy
    from .cuda import _DeviceIndex
    host = scatter_reduce_numpy(x.to_numpy(), index.to_numpy(), src.to_numpy(), dim, reduce,
                                include_self)
    return from_numpy(host, _DeviceIndex(_dev(x)))


__all__ = ["contraction", "IMPLS"]
