"""Triton code generation: one generated kernel per fusion group (or per eager op).

The renderer consumes a small op graph (:class:`PNode` over :class:`Leaf` inputs) and
derives, for every value, the index it is read at from the index of the output being
computed: broadcasting drops or zeroes dims, permutes reorder them, slices scale and
shift them, reshapes re-split the linear index (free over contiguous data), pads and
concatenations add bounds conditions. No view is ever materialised; loads happen straight
from the inputs at the derived addresses.

* :func:`render_pointwise` — any number of inputs and outputs over one iteration space;
* :func:`render_reduction` — reductions over the same (kept, reduced) split with their
  pointwise prologues and epilogues, e.g. softmax, layer norm or cross-entropy in one
  persistent-row kernel (looped when the row does not fit a block);
* :func:`render_scan` — cumulative sums/products along one axis.

Eager ops build one-node graphs (``compiler/codegen/triton_eager.py``); compiled graphs
give their fusion groups (``compiler/codegen/triton_group.py``).
"""

from __future__ import annotations

import sympy

from framework import dtypes

from .triton_expr import RSYM, XSYM, Buf, KernelBuilder, UnsupportedError
from .triton_index import Idx, address, as_expr, delinearize, is_zero, linearize, product
from .triton_launch import TritonKernel
from .triton_ops import BINARY, UNARY, compute_dtype

__all__ = ["Leaf", "PNode", "RuntimeScalar", "Buf", "UnsupportedError", "render_pointwise",
           "render_reduction", "render_scan", "TritonKernel", "REDUCTIONS", "SUPPORTED"]

REDUCTIONS = frozenset({"sum", "prod", "amax", "amin", "argmax", "argmin", "any", "all"})
_VIEWS = frozenset({"reshape", "permute", "expand", "slice", "clone", "pad", "cat", "flip",
                    "trilu"})
SUPPORTED = frozenset(UNARY) | frozenset(BINARY) | _VIEWS | REDUCTIONS | {
    "where", "cast", "full", "arange", "gather"}


class Leaf:
    """A kernel input: a buffer read at addresses derived from its strides."""

    def __init__(self, buf: Buf):
        self.buf = buf
        self.shape = buf.shape
        self.dtype = buf.dtype


class RuntimeScalar:
    """A Python number known only at call time (a graph's scalar input)."""

    def __init__(self, value):
        self.value = value
        self.argname = None


class PNode:
    """One op of the graph being rendered (inputs: PNode, Leaf or Python scalars)."""

    def __init__(self, op: str, inputs, attrs, shape, dtype):
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs)
        self.shape = tuple(as_expr(s) for s in shape)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"PNode({self.op}, {self.shape})"


def _broadcast_idx(idx, out_shape, in_shape) -> Idx:
    lead = len(out_shape) - len(in_shape)
    items = [sympy.Integer(0) if (s == 1 and out_shape[lead + i] != 1) else idx[lead + i]
             for i, s in enumerate(in_shape)]
    if lead == 0 and all(s == o for s, o in zip(in_shape, out_shape)):
        return idx
    return Idx(items)


class _Builder:
    """Index propagation: the value of a graph node at an index, as kernel E nodes."""

    def __init__(self, kb: KernelBuilder, reduce_ctx=None):
        self.kb = kb
        self.reduce_ctx = reduce_ctx  # (in_shape, dims) of the kernel's reductions

    def value(self, ref, idx, conds=()):
        if isinstance(ref, Leaf):
            return self.kb.load(ref.buf, address(idx, ref.buf.strides), conds)
        if not isinstance(ref, PNode):
            raise UnsupportedError(f"unexpected operand {ref!r}")
        op = ref.op
        if op in UNARY or op in BINARY or op == "where":
            return self._elementwise(ref, idx, conds)
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise UnsupportedError(f"op {op!r} cannot be rendered inside a Triton kernel")
        return handler(ref, idx, conds)

    def _operand(self, ref, node, idx, conds):
        if isinstance(ref, RuntimeScalar):
            dt = _operand_dtype(node)
            if ref.argname is not None:  # one kernel argument however often it is read
                return self.kb._node("scalar", (), (ref.argname,), dt)
            e = self.kb.scalar(0.0 if dt.is_floating_point else 0, dt, force_arg=True)
            ref.argname = e.data[0]
            return e
        if isinstance(ref, (PNode, Leaf)):
            return self.value(ref, _broadcast_idx(idx, node.shape, ref.shape), conds)
        return self.kb.scalar(ref, _operand_dtype(node))

    def _elementwise(self, node, idx, conds):
        args = [self._operand(a, node, idx, conds) for a in node.inputs]
        if node.op == "where":
            return self.kb.where(args[0], args[1], args[2])
        return self.kb.op(node.op, args, node.dtype)

    def _op_cast(self, node, idx, conds):
        return self.kb.cast(self.value(node.inputs[0], idx, conds), node.dtype)

    def _op_clone(self, node, idx, conds):
        return self.value(node.inputs[0], idx, conds)

    def _op_reshape(self, node, idx, conds):
        src = node.inputs[0]
        return self.value(src, delinearize(linearize(idx, node.shape), src.shape), conds)

    def _op_permute(self, node, idx, conds):
        items = [None] * len(idx)
        for k, d in enumerate(node.attrs["dims"]):
            items[d] = idx[k]
        return self.value(node.inputs[0], Idx(items), conds)

    def _op_expand(self, node, idx, conds):
        src = node.inputs[0]
        return self.value(src, _broadcast_idx(idx, node.shape, src.shape), conds)

    def _op_slice(self, node, idx, conds):
        a = node.attrs
        items = [as_expr(s) + i * as_expr(st) for i, s, st in zip(idx, a["starts"], a["steps"])]
        return self.value(node.inputs[0], Idx(items), conds)

    def _op_flip(self, node, idx, conds):
        src = node.inputs[0]
        items = [src.shape[d] - 1 - i if d in node.attrs["dims"] else i
                 for d, i in enumerate(idx)]
        return self.value(src, Idx(items), conds)

    def _op_pad(self, node, idx, conds):
        src = node.inputs[0]
        pads = node.attrs["pads"]
        items, bounds = list(idx), []
        for i in range(len(pads) // 2):
            d = len(idx) - 1 - i
            lo = pads[2 * i]
            if lo or pads[2 * i + 1]:
                items[d] = idx[d] - lo
                bounds.append((items[d], 0, src.shape[d]))
        if not bounds:
            return self.value(src, Idx(items), conds)
        inside = self.kb.cond(bounds)
        val = self.value(src, Idx(items), tuple(conds) + (inside,))
        return self.kb.where(inside, val, self.kb.scalar(node.attrs["value"], node.dtype))

    def _op_cat(self, node, idx, conds):
        d = node.attrs["dim"]
        pieces, offset = [], sympy.Integer(0)
        for src in node.inputs:
            size = src.shape[d]
            inside = self.kb.cond([(idx[d], offset, offset + size)])
            items = list(idx)
            items[d] = idx[d] - offset
            pieces.append((inside, self.value(src, Idx(items), tuple(conds) + (inside,))))
            offset = offset + size
        out = pieces[-1][1]
        for inside, val in reversed(pieces[:-1]):
            out = self.kb.where(inside, val, out)
        return out

    def _op_trilu(self, node, idx, conds):
        val = self.value(node.inputs[0], idx, conds)
        k, upper = node.attrs["k"], node.attrs["upper"]
        row, col = idx[-2], idx[-1]
        # upper keeps col - row >= k; lower keeps col - row <= k
        keep = self.kb.cond([(col - row, k, None)]) if upper else \
            self.kb.cond([(col - row, None, k + 1)])
        return self.kb.where(keep, val, self.kb.literal(0, node.dtype))

    def _op_full(self, node, idx, conds):
        return self.kb.scalar(node.attrs["value"], node.dtype)

    def _op_arange(self, node, idx, conds):
        a = node.attrs
        start, step = a["start"], a["step"]
        if isinstance(start, int) and isinstance(step, int):
            return self.kb.index_value(start + step * idx[0], node.dtype)
        i = self.kb.index_value(idx[0], dtypes.float64 if node.dtype is dtypes.float64
                                else dtypes.float32)
        v = self.kb.op("add", [self.kb.op("mul", [i, self.kb.scalar(float(step), i.dtype)],
                                          i.dtype), self.kb.scalar(float(start), i.dtype)],
                       i.dtype)
        return self.kb.cast(v, node.dtype)

    def _op_gather(self, node, idx, conds):
        x, index = node.inputs
        d = node.attrs["dim"]
        iv = self.value(index, idx, conds)
        items = list(idx)
        if x.shape:
            items[d] = self.kb.dyn(iv)
        return self.value(x, Idx(items), conds)

    def _reduction(self, node, idx, conds):
        if self.reduce_ctx is None:
            raise UnsupportedError(f"{node.op}: a reduction inside a pointwise kernel")
        in_shape, dims = self.reduce_ctx
        src = node.inputs[0]
        if tuple(src.shape) != tuple(in_shape) or tuple(node.attrs["dims"]) != tuple(dims):
            raise UnsupportedError(f"{node.op}: reduction over {node.attrs['dims']} of "
                              f"{src.shape} differs from the kernel's {dims} of {in_shape}")
        kept = [s for i, s in enumerate(in_shape) if i not in dims]
        kept_idx = idx if not node.attrs["keepdim"] else \
            Idx([i for k, i in enumerate(idx) if k not in dims])
        same_row = tuple(kept_idx) == tuple(delinearize(XSYM, kept)) or \
            is_zero(linearize(kept_idx, kept) - XSYM)
        if any(idx[k] != 0 for k in dims if node.attrs["keepdim"]) or not same_row:
            raise UnsupportedError(f"{node.op}: result read at an index other than its row")
        v = self.value(src, _row_index(in_shape, dims), ())
        kind = node.op
        return self.kb.reduce(kind, v, node.dtype)


for _name in REDUCTIONS:
    setattr(_Builder, f"_op_{_name}", _Builder._reduction)


def _operand_dtype(node):
    for a in node.inputs:
        if isinstance(a, (PNode, Leaf)) and (node.op != "where" or a is not node.inputs[0]):
            return a.dtype
    return node.dtype


def _row_index(in_shape, dims) -> Idx:
    """The index into the reduction input at tile position (xindex, rindex)."""
    kept = [s for i, s in enumerate(in_shape) if i not in dims]
    red = [s for i, s in enumerate(in_shape) if i in dims]
    kx, kr = iter(delinearize(XSYM, kept)), iter(delinearize(RSYM, red))
    items = [next(kr) if i in dims else next(kx) for i in range(len(in_shape))]
    r_lin = RSYM if product(red) != 1 else sympy.Integer(0)
    if all(i in dims for i in range(len(in_shape) - len(red), len(in_shape))):
        return Idx(items, linear=(XSYM * product(red) + r_lin, tuple(as_expr(s)
                                                                      for s in in_shape)))
    return Idx(items)


def _out_buf(kb, name, node, out_dtype=None):
    from .triton_index import contiguous_strides
    return kb.add_buf(Buf(name, out_dtype or node.dtype, node.shape,
                          contiguous_strides(node.shape)))


def _register_leaves(kb, roots):
    seen = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, Leaf):
            kb.add_buf(n.buf)
        elif isinstance(n, PNode):
            stack.extend(n.inputs)


def render_pointwise(outputs, label="pointwise", out_bufs=None,
                     fixed_constants=False) -> TritonKernel:
    """A kernel computing every node in ``outputs`` (same numel, or broadcastable to the
    largest output's shape) into new contiguous buffers ``out0, out1, ...``.
    ``fixed_constants``: every launch passes the scalars their built values (equal
    constants then share one argument; see :class:`KernelBuilder`)."""
    kb = KernelBuilder(reduction=False, fixed_constants=fixed_constants)
    _register_leaves(kb, outputs)
    sizes = [product(n.shape) for n in outputs]
    big = outputs[max(range(len(outputs)),
                      key=lambda i: (len(sizes[i].free_symbols), _numel_key(sizes[i])))]
    numel = product(big.shape)
    it = delinearize(XSYM, big.shape)
    b = _Builder(kb)
    for k, node in enumerate(outputs):
        buf = (out_bufs or {}).get(k) or _out_buf(kb, f"out{k}", node)
        kb.add_buf(buf)
        n = product(node.shape)
        if is_zero(n - numel):
            idx = it if node.shape == big.shape else delinearize(XSYM, node.shape)
            conds = ()
        else:
            lead = len(big.shape) - len(node.shape)
            if lead < 0 or any(s != 1 and not is_zero(s - big.shape[lead + i])
                               for i, s in enumerate(node.shape)):
                raise UnsupportedError(f"outputs of shapes {node.shape} and {big.shape} do not "
                                       "share an iteration space")
            idx = _broadcast_idx(it, big.shape, node.shape)
            zero = [(it[len(big.shape) - len(node.shape) + i], 0, 1)
                    for i, s in enumerate(node.shape) if s == 1 and
                    big.shape[len(big.shape) - len(node.shape) + i] != 1]
            zero += [(it[i], 0, 1) for i in range(len(big.shape) - len(node.shape))]
            conds = (kb.cond(zero),) if zero else ()
        kb.store(buf, address(idx, buf.strides), b.value(node, idx), conds)
    return TritonKernel(kb, numel, None, label)


def _numel_key(n):
    return int(n) if not n.free_symbols else 0


def render_reduction(outputs, in_shape, dims, label="reduction", out_bufs=None,
                     fixed_constants=False) -> TritonKernel:
    """A kernel for reductions of ``in_shape`` over ``dims`` and the pointwise work around
    them; every output has the kept numel (one value per row) or the full numel
    (``fixed_constants`` as in :func:`render_pointwise`)."""
    kb = KernelBuilder(reduction=True, fixed_constants=fixed_constants)
    _register_leaves(kb, outputs)
    in_shape = tuple(as_expr(s) for s in in_shape)
    dims = tuple(dims)
    kept = [s for i, s in enumerate(in_shape) if i not in dims]
    red = [s for i, s in enumerate(in_shape) if i in dims]
    xnumel, rnumel = product(kept), product(red)
    full = _row_index(in_shape, dims)
    b = _Builder(kb, (in_shape, dims))
    for k, node in enumerate(outputs):
        buf = (out_bufs or {}).get(k) or _out_buf(kb, f"out{k}", node)
        kb.add_buf(buf)
        n = product(node.shape)
        if is_zero(n - xnumel):
            idx = delinearize(XSYM, node.shape)
        elif is_zero(n - xnumel * rnumel):
            idx = full if node.shape == in_shape else \
                delinearize(linearize(full, in_shape), node.shape)
        else:
            raise UnsupportedError(f"output of shape {node.shape} is neither one value per row nor "
                              f"one per element of {in_shape}")
        kb.store(buf, address(idx, buf.strides), b.value(node, idx))
    return TritonKernel(kb, xnumel, rnumel, label)


def render_scan(kind: str, src: Leaf, dim: int, label="scan", out_buf=None) -> TritonKernel:
    """Inclusive ``cumsum``/``cumprod`` of ``src`` along ``dim``."""
    kb = KernelBuilder(reduction=True)
    kb.add_buf(src.buf)
    shape = src.shape
    kept = [s for i, s in enumerate(shape) if i != dim]
    idx = _row_index(shape, (dim,))
    v = kb.load(src.buf, address(idx, src.buf.strides))
    out = out_buf or Buf("out0", src.dtype, shape, _contig(shape))
    kb.add_buf(out)
    kb.store(out, address(idx, out.strides), kb.scan(kind, v))
    return TritonKernel(kb, product(kept), shape[dim], label)


def _contig(shape):
    from .triton_index import contiguous_strides
    return contiguous_strides(shape)


def compute_dtype_of(node) -> object:
    """The dtype a node's arithmetic happens in."""
    return compute_dtype(node.dtype)
