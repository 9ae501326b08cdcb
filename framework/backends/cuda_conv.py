"""CUDA convolution, transposed convolution and max pooling as generated reduction
kernels: one program row per output element, the reduction over (input channels of the
group x kernel taps), input positions computed by index arithmetic with the padding as a
load mask (no im2col buffer). Shapes are baked into each kernel; strides are arguments.

These are direct kernels (no tensor cores): correct for every configuration the CPU
supports, but not tuned; a matmul-based implicit GEMM template is the next step.
"""

from __future__ import annotations

import math

from .. import dtypes
from .cuda import IMPLS, empty, fw_dtype
from .cuda_ops import _dev, _ev


def _cg():
    from compiler.codegen import triton_expr as tx
    from compiler.codegen import triton_index as ti
    from compiler.codegen.triton import _row_index
    from compiler.codegen.triton_launch import TritonKernel
    return tx, ti, _row_index, TritonKernel


def _strides(prefix, rank, ti):
    return [ti.as_expr(f"{prefix}{d}") for d in range(rank)]


def _launch(kernel, bufs, strided):
    sizes = {}
    for prefix, buf in strided:
        sizes.update({f"{prefix}{d}": s for d, s in enumerate(buf.stride())})
    kernel(bufs, sizes)


def conv(x, w, stride, padding, dilation, groups):
    """``conv`` (N-d): out[n, co, o] = sum_{c, k} x[n, g*cg + c, o*s - lo + k*d] w[co, c, k]."""
    tx, ti, row_index, TritonKernel = _cg()
    nd = len(stride)
    n, c = x.shape[:2]
    cout, cg = w.shape[0], w.shape[1]
    kern = w.shape[2:]
    coutg = cout // groups
    o = tuple((x.shape[2 + i] + padding[i][0] + padding[i][1] - dilation[i] * (kern[i] - 1)
               - 1) // stride[i] + 1 for i in range(nd))
    out = empty((n, cout) + o, x.dtype, _dev(x))
    if math.prod(out.shape) == 0:
        return out
    dt = fw_dtype(x)
    key = ("conv", tuple(x.shape), tuple(w.shape), tuple(stride), tuple(padding),
           tuple(dilation), groups, dt.name)

    def build():
        kb = tx.KernelBuilder(reduction=True)
        xb = kb.add_buf(tx.Buf("in0", dt, x.shape, _strides("xs", x.ndim, ti)))
        wb = kb.add_buf(tx.Buf("in1", dt, w.shape, _strides("ws", w.ndim, ti)))
        ob = kb.add_buf(tx.Buf("out0", dt, out.shape, ti.contiguous_strides(out.shape)))
        shape = (n, cout) + o + (cg,) + tuple(kern)
        dims = tuple(range(2 + nd, 3 + 2 * nd))
        idx = row_index(shape, dims)
        bn, co, oo, ci, kk = idx[0], idx[1], idx[2:2 + nd], idx[2 + nd], idx[3 + nd:]
        g = ti.FloorDiv(co, coutg)
        pos = [oo[i] * stride[i] - padding[i][0] + kk[i] * dilation[i] for i in range(nd)]
        inside = kb.cond([(pos[i], 0, x.shape[2 + i]) for i in range(nd)])
        xi = ti.Idx([bn, g * cg + ci] + pos)
        xv = kb.load(xb, ti.address(xi, xb.strides), (inside,))
        wv = kb.load(wb, ti.address(ti.Idx([co, ci] + list(kk)), wb.strides))
        cd = dtypes.float32 if dt in (dtypes.float16, dtypes.bfloat16) else dt
        prod = kb.op("mul", [kb.cast(xv, cd), kb.cast(wv, cd)], cd)
        kb.store(ob, tx.XSYM, kb.cast(kb.reduce("sum", prod, cd), dt))
        return TritonKernel(kb, math.prod(out.shape), cg * math.prod(kern), "conv")

    kernel = _ev().linear_index_kernel("conv", build, key)
    _launch(kernel, {"in0": x, "in1": w, "out0": out}, [("xs", x), ("ws", w)])
    return out


def conv_transpose(x, w, stride, padding, dilation, groups, output_padding):
    """``conv_transpose``: out[n, g*coutg + co, p] = sum_{c, k} x[n, g*cing + c, i]
    w[g*cing + c, co, k] over the taps where p = i*s - lo + k*d for an integer i in range."""
    tx, ti, row_index, TritonKernel = _cg()
    nd = len(stride)
    n, cin = x.shape[:2]
    coutg = w.shape[1]
    kern = w.shape[2:]
    cing = cin // groups
    o = tuple((x.shape[2 + i] - 1) * stride[i] - padding[i][0] - padding[i][1] +
              dilation[i] * (kern[i] - 1) + 1 + output_padding[i] for i in range(nd))
    out = empty((n, coutg * groups) + o, x.dtype, _dev(x))
    if math.prod(out.shape) == 0:
        return out
    dt = fw_dtype(x)
    key = ("convT", tuple(x.shape), tuple(w.shape), tuple(stride), tuple(padding),
           tuple(dilation), groups, tuple(output_padding), dt.name)

    def build():
        kb = tx.KernelBuilder(reduction=True)
        xb = kb.add_buf(tx.Buf("in0", dt, x.shape, _strides("xs", x.ndim, ti)))
        wb = kb.add_buf(tx.Buf("in1", dt, w.shape, _strides("ws", w.ndim, ti)))
        ob = kb.add_buf(tx.Buf("out0", dt, out.shape, ti.contiguous_strides(out.shape)))
        shape = (n, coutg * groups) + o + (cing,) + tuple(kern)
        dims = tuple(range(2 + nd, 3 + 2 * nd))
        idx = row_index(shape, dims)
        bn, cot, pp, ci, kk = idx[0], idx[1], idx[2:2 + nd], idx[2 + nd], idx[3 + nd:]
        g, co = ti.FloorDiv(cot, coutg), ti.ModularIndexing(cot, 1, coutg)
        conds, items = [], []
        i64 = dtypes.int64
        for i in range(nd):
            t = pp[i] + padding[i][0] - kk[i] * dilation[i]
            conds.append(kb.cond([(t, 0, x.shape[2 + i] * stride[i])]))
            if stride[i] != 1:
                rem = kb.op("fmod", [kb.index_value(t, i64), kb.literal(stride[i], i64)], i64)
                conds.append(kb.op("eq", [rem, kb.literal(0, i64)], dtypes.bool_))
            items.append(ti.FloorDiv(t, stride[i]))
        xi = ti.Idx([bn, g * cing + ci] + items)
        xv = kb.load(xb, ti.address(xi, xb.strides), tuple(conds))
        wv = kb.load(wb, ti.address(ti.Idx([g * cing + ci, co] + list(kk)), wb.strides))
        cd = dtypes.float32 if dt in (dtypes.float16, dtypes.bfloat16) else dt
        prod = kb.op("mul", [kb.cast(xv, cd), kb.cast(wv, cd)], cd)
        kb.store(ob, tx.XSYM, kb.cast(kb.reduce("sum", prod, cd), dt))
        return TritonKernel(kb, math.prod(out.shape), cing * math.prod(kern), "conv_transpose")

    kernel = _ev().linear_index_kernel("conv_transpose", build, key)
    _launch(kernel, {"in0": x, "in1": w, "out0": out}, [("xs", x), ("ws", w)])
    return out


def max_pool(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(values, flat per-plane argmax positions) of each pooling window (-inf padding)."""
    from ..ops.conv_ops import pool_out_len
    tx, ti, row_index, TritonKernel = _cg()
    nd = len(kernel_size)
    lead = tuple(x.shape[:x.ndim - nd])
    sp = tuple(x.shape[x.ndim - nd:])
    o = tuple(pool_out_len(s_, k, st, p, d, ceil_mode)
              for s_, k, st, p, d in zip(sp, kernel_size, stride, padding, dilation))
    values = empty(lead + o, x.dtype, _dev(x))
    indices = empty(lead + o, "int64", _dev(x))
    if math.prod(values.shape) == 0:
        return values, indices
    dt = fw_dtype(x)
    key = ("maxpool", tuple(x.shape), tuple(kernel_size), tuple(stride), tuple(padding),
           tuple(dilation), bool(ceil_mode), dt.name)

    def build():
        kb = tx.KernelBuilder(reduction=True)
        xb = kb.add_buf(tx.Buf("in0", dt, x.shape, _strides("xs", x.ndim, ti)))
        vb = kb.add_buf(tx.Buf("out0", dt, values.shape, ti.contiguous_strides(values.shape)))
        ib = kb.add_buf(tx.Buf("out1", dtypes.int64, values.shape,
                               ti.contiguous_strides(values.shape)))
        nl = len(lead)
        shape = lead + o + tuple(kernel_size)
        dims = tuple(range(nl + nd, nl + 2 * nd))
        idx = row_index(shape, dims)
        oo, kk = idx[nl:nl + nd], idx[nl + nd:]
        pos = [oo[i] * stride[i] - padding[i] + kk[i] * dilation[i] for i in range(nd)]
        inside = kb.cond([(pos[i], 0, sp[i]) for i in range(nd)])
        low = kb.literal(float("-inf") if dt.is_floating_point else
                         int(__import__("numpy").iinfo(dt.np).min), dt)
        xv = kb.where(inside, kb.load(xb, ti.address(ti.Idx(list(idx[:nl]) + pos),
                                                     xb.strides), (inside,)), low)
        kb.store(vb, tx.XSYM, kb.reduce("amax", xv, dt))
        # flat position of the winning tap: sum_i (o_i*s_i - p_i + k_i*d_i) * plane_stride_i
        i64 = dtypes.int64
        best = kb.reduce("argmax", xv, i64)
        plane = ti.contiguous_strides(sp)
        flat = kb.index_value(sum((oo[i] * stride[i] - padding[i]) * plane[i]
                                  for i in range(nd)), i64)
        ktaps = ti.contiguous_strides(kernel_size)
        for i in range(nd):
            ki = kb.op("floor_divide", [best, kb.literal(int(ktaps[i]), i64)], i64)
            ki = kb.op("remainder", [ki, kb.literal(kernel_size[i], i64)], i64)
            term = kb.op("mul", [ki, kb.literal(dilation[i] * int(plane[i]), i64)], i64)
            flat = kb.op("add", [flat, term], i64)
        kb.store(ib, tx.XSYM, flat)
        return TritonKernel(kb, math.prod(values.shape), math.prod(kernel_size), "max_pool")

    kernel = _ev().linear_index_kernel("max_pool", build, key)
    _launch(kernel, {"in0": x, "out0": values, "out1": indices}, [("xs", x)])
    return values, indices


def _conv_impl(x, w, *, stride, padding, dilation, groups):
    return conv(x, w, stride, padding, dilation, groups)


def _conv_transpose_impl(x, w, *, stride, padding, dilation, groups, output_padding):
    return conv_transpose(x, w, stride, padding, dilation, groups, output_padding)


def _max_pool_impl(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    return max_pool(x, kernel_size, stride, padding, dilation, ceil_mode)


IMPLS["conv"] = _conv_impl
IMPLS["conv_transpose"] = _conv_transpose_impl
IMPLS["max_pool"] = _max_pool_impl
