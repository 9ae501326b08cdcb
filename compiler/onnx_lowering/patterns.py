"""Native ONNX ops recovered from the primitive subgraphs the nn layers trace into.

Linear layers, eval-mode batch norm, average pooling, RMS norm and attention are written
with primitives in ``framework/nn`` (so they differentiate and fuse), which leaves no
composite node to lower natively. Each pattern here recognises one such subgraph, ending
at a *head* node, whose interior values have no other reader, and emits the native op:

- ``[add(]matmul(x2d, permute(W))[, b)]``                  -> Gemm(transB=1)
- ``conv[_transpose](x, W) + reshape(b, (1, C, 1, ...))``  -> Conv / ConvTranspose with B
- ``(x - mean) * rsqrt(var + eps) [* w] [+ b]`` over dim 1  -> BatchNormalization
- ``conv(x, ones(1, 1, *k)) / prod(k)``                     -> AveragePool
- means over every spatial dim by constant matmuls          -> GlobalAveragePool
- ``x * rsqrt(mean(x*x) + eps) [* w]``                      -> RMSNormalization (23+)
- ``matmul(softmax(q @ k^T * s [+ mask]), v)``              -> Attention (23+)

Anything that does not match exactly is lowered node by node, so a miss costs only
readability, never correctness. One known difference: a query row whose keys are all
masked is NaN in eager (softmax of -inf, PyTorch's math semantics) and in the
MatMul/Softmax form, but 0 in onnxruntime's Attention kernel.
"""

from __future__ import annotations

import numpy as np

from .nn import float_compute

_CONST_KINDS = ("param", "buffer", "const")


class Match:
    """A recognised subgraph: its head node, every node it covers, and the emitter."""

    __slots__ = ("head", "nodes", "emit")

    def __init__(self, head, nodes, emit):
        self.head = head
        self.nodes = set(nodes) | {head}
        self.emit = emit


def find_matches(graph, opset):
    """({head node: Match}, set of interior nodes absorbed into a match)."""
    uses: dict = {}
    for n in graph.nodes:
        for x in n.inputs:
            if hasattr(x, "shape"):
                uses[x] = uses.get(x, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 2  # an output is never interior
    consts = {v: t for v, t in graph.constants.items()}
    claimed, heads = set(), {}
    for node in reversed(graph.nodes):
        if node in claimed:
            continue
        for min_opset, fn in _PATTERNS:
            if opset < min_opset:
                continue
            m = fn(node, _Ctx(uses, consts))
            if m is not None and not (m.nodes & claimed):
                heads[node] = m
                claimed |= m.nodes
                break
    return heads, claimed - set(heads)


class _Ctx:
    """Graph facts the matchers need: use counts and constant values."""

    def __init__(self, uses, consts):
        self.uses = uses
        self.consts = consts

    def only(self, v) -> bool:
        return self.uses.get(v, 0) == 1

    def node(self, v, op_name):
        """The producer of ``v`` if it is ``op_name`` and ``v`` has no other reader."""
        p = getattr(v, "producer", None)
        if p is not None and p.op.name == op_name and self.only(v):
            return p
        return None

    def const_value(self, v):
        """NumPy value of a constant Value (params, buffers, captured tensors), or None."""
        t = self.consts.get(v)
        if t is None or t.device.type not in ("cpu",) or t._data is None:
            return None
        return np.asarray(t._data)


def _is_float(v):
    return hasattr(v, "dtype") and v.dtype.is_floating_point


def _is_const(v):
    return getattr(v, "kind", None) in _CONST_KINDS


# ---------------------------------------------------------------------------------------
# Gemm
def _gemm(node, g):
    if node.op.name == "matmul":
        return _gemm_no_bias(node, g)
    if node.op.name != "add":
        return None
    for mm_v, b in (node.inputs, node.inputs[::-1]):
        mm = g.node(mm_v, "matmul")
        if mm is None or not _is_const(b) or len(b.shape) != 1:
            continue
        x, wt = mm.inputs
        tr = g.node(wt, "permute")
        if tr is None or len(x.shape) != 2 or not _is_float(x) or tr.attrs["dims"] != (1, 0):
            continue
        w = tr.inputs[0]
        if not _is_const(w) or b.dtype is not x.dtype or b.shape[0] != w.shape[0]:
            continue

        def emit(ctx, x=x, w=w, b=b):
            dt = x.dtype
            cd = float_compute(dt)
            names = [ctx.name_of(v) for v in (x, w, b)]
            if cd is not dt:
                names = [ctx.cast(n, cd) for n in names]
            out = ctx.emit("Gemm", names, transB=1)
            return [ctx.cast(out, dt) if cd is not dt else out]
        return Match(node, [mm, tr], emit)
    return None


def _gemm_no_bias(mm, g):
    x, wt = mm.inputs
    tr = g.node(wt, "permute")
    if tr is None or len(x.shape) != 2 or not _is_float(x) or tr.attrs["dims"] != (1, 0) or \
            not _is_const(tr.inputs[0]):
        return None
    w = tr.inputs[0]

    def emit(ctx, x=x, w=w):
        dt = x.dtype
        cd = float_compute(dt)
        names = [ctx.name_of(x), ctx.name_of(w)]
        if cd is not dt:
            names = [ctx.cast(n, cd) for n in names]
        out = ctx.emit("Gemm", names, transB=1)
        return [ctx.cast(out, dt) if cd is not dt else out]
    return Match(mm, [tr], emit)


# ---------------------------------------------------------------------------------------
# Conv / ConvTranspose with a bias (the layers add it as a broadcast (1, C, 1, ...) tensor)
def _conv_bias(node, g):
    if node.op.name != "add":
        return None
    for y, b in (node.inputs, node.inputs[::-1]):
        conv = g.node(y, "conv") or g.node(y, "conv_transpose")
        if conv is None or not _is_float(y) or len(y.shape) < 3:
            continue
        if conv.op.name == "conv_transpose" and any(
                lo < 0 or hi < 0 for lo, hi in conv.attrs["padding"]):
            continue  # lowered with a trailing Pad: the bias must not be inside it
        nodes = [conv]
        bias = _channel_param(b, g, y, nodes)
        if bias is None or bias.dtype is not y.dtype or tuple(node.outputs[0].shape) != \
                tuple(y.shape):
            continue

        def emit(ctx, conv=conv, bias=bias):
            from .nn import _conv, _conv_transpose
            lower = _conv if conv.op.name == "conv" else _conv_transpose
            return lower(ctx, conv, bias)
        return Match(node, nodes, emit)
    return None


# ---------------------------------------------------------------------------------------
# BatchNormalization (eval mode: running statistics)
def _channel_param(v, g, x, nodes):
    """``v`` = reshape(p, (1, C, 1, ...)) of a (C,) tensor p matching x's channels -> p."""
    r = g.node(v, "reshape")
    if r is None:
        return None
    p = r.inputs[0]
    c = x.shape[1]
    want = (1, c) + (1,) * (len(x.shape) - 2)
    if len(p.shape) != 1 or p.shape[0] != c or tuple(r.attrs["shape"]) != want:
        return None
    nodes.append(r)
    return p


def _bn_core(mul, g):
    """(x, mean, var, eps, nodes) when ``mul`` computes (x - mean) * rsqrt(var + eps)."""
    if mul is None or mul.op.name != "mul":
        return None
    for a, b in (mul.inputs, mul.inputs[::-1]):
        sub, rs = g.node(a, "sub"), g.node(b, "rsqrt")
        if sub is None or rs is None:
            continue
        x, m = sub.inputs
        if not _is_float(x) or len(x.shape) < 2:
            return None
        add = g.node(rs.inputs[0], "add")
        if add is None or not isinstance(add.inputs[1], float):
            return None
        nodes = [sub, rs, add]
        mean = _channel_param(m, g, x, nodes)
        var = _channel_param(add.inputs[0], g, x, nodes)
        if mean is None or var is None or mean.dtype is not x.dtype or \
                var.dtype is not x.dtype:
            return None
        return x, mean, var, add.inputs[1], nodes
    return None


def _batch_norm(node, g):
    nodes, bias_v, scale_v = [], None, None
    cur = node
    if node.op.name == "add":  # ... + bias.reshape(1, C, 1, 1)
        for a, b in (node.inputs, node.inputs[::-1]):
            inner = g.node(a, "mul")
            if inner is not None and hasattr(b, "shape"):
                cur, bias_v = inner, b
                nodes.append(inner)
                break
        else:
            return None
    elif node.op.name != "mul":
        return None
    core = _bn_core(cur, g)
    if core is None:  # ... * weight.reshape(1, C, 1, 1)
        for a, b in (cur.inputs, cur.inputs[::-1]):
            inner = g.node(a, "mul")
            core = _bn_core(inner, g)
            if core is not None and hasattr(b, "shape"):
                scale_v = b
                nodes.append(inner)
                break
            core = None
    if core is None:
        return None
    x, mean, var, eps, core_nodes = core
    nodes += core_nodes
    scale = bias = None
    if scale_v is not None:
        scale = _channel_param(scale_v, g, x, nodes)
        if scale is None or scale.dtype is not x.dtype:
            return None
    if bias_v is not None:
        bias = _channel_param(bias_v, g, x, nodes)
        if bias is None or bias.dtype is not x.dtype:
            return None

    def emit(ctx, x=x, mean=mean, var=var, eps=eps, scale=scale, bias=bias):
        c = x.shape[1]
        dt = x.dtype
        cd = float_compute(dt)
        names = []
        for v, fill in ((x, None), (scale, 1.0), (bias, 0.0), (mean, None), (var, None)):
            n = ctx.name_of(v) if v is not None else ctx.const(np.full((c,), fill, dt.np),
                                                                "ones" if fill else "zeros")
            names.append(ctx.cast(n, cd) if cd is not dt else n)
        out = ctx.emit("BatchNormalization", names, epsilon=float(eps))
        return [ctx.cast(out, dt) if cd is not dt else out]
    return Match(node, [n for n in nodes if n is not node], emit)


# ---------------------------------------------------------------------------------------
# AveragePool: a convolution with a ones kernel divided by the window size
def _avg_pool(node, g):
    if node.op.name != "div" or not isinstance(node.inputs[1], float):
        return None
    conv = g.node(node.inputs[0], "conv")
    if conv is None:
        return None
    x, ones = conv.inputs
    full = g.node(ones, "full")
    a = conv.attrs
    k = tuple(ones.shape[2:])
    if full is None or full.attrs["value"] != 1.0 or tuple(ones.shape[:2]) != (1, 1) or \
            a["groups"] != 1 or any(d != 1 for d in a["dilation"]) or \
            any(lo != hi or lo < 0 for lo, hi in a["padding"]) or \
            node.inputs[1] != float(np.prod(k)):
        return None

    def emit(ctx, x=x):
        dt = x.dtype
        cd = float_compute(dt)
        xn = ctx.name_of(x)
        xn = ctx.cast(xn, cd) if cd is not dt else xn
        out = ctx.emit("AveragePool", [xn], kernel_shape=list(k), strides=list(a["stride"]),
                       pads=[lo for lo, _ in a["padding"]] * 2, count_include_pad=1)
        return [ctx.cast(out, dt) if cd is not dt else out]
    return Match(node, [conv, full], emit)


# ---------------------------------------------------------------------------------------
# GlobalAveragePool: constant averaging matmuls (and the permutes around them) that take
# the mean over every spatial dim and leave the layout unchanged
def _mean_matmul(mm, g):
    """mm = matmul(a, permute(M)) with M a constant (1, n) row of 1/n -> a, [nodes]."""
    a, mt = mm.inputs
    tr = g.node(mt, "permute")
    if tr is None or tr.attrs["dims"] != (1, 0):
        return None
    vals = g.const_value(tr.inputs[0])
    if vals is None or vals.ndim != 2 or vals.shape[0] != 1:
        return None
    n = vals.shape[1]
    if not np.allclose(vals, 1.0 / n, rtol=1e-6, atol=0):
        return None
    return a, [tr]


def _global_avg_pool(node, g):
    if node.op.name not in ("permute", "matmul"):
        return None
    chain, v, nodes = [], node.outputs[0], []
    cur = node
    while cur is not None and cur.op.name in ("permute", "matmul"):
        if cur.op.name == "matmul":
            got = _mean_matmul(cur, g)
            if got is None:
                break
            chain.append(("mean", None))
            nodes += got[1]
            nxt = got[0]
        else:
            chain.append(("perm", cur.attrs["dims"]))
            nxt = cur.inputs[0]
        nodes.append(cur)
        v = nxt
        p = getattr(v, "producer", None)
        cur = p if p is not None and g.only(v) and p.op.name in ("permute", "matmul") else None
    x = v
    if not any(kind == "mean" for kind, _ in chain) or not _is_float(x) or len(x.shape) < 3:
        return None
    dims, reduced = list(range(len(x.shape))), set()
    for kind, perm in reversed(chain):  # replay forward from x
        if kind == "perm":
            dims = [dims[i] for i in perm]
        else:
            reduced.add(dims[-1])
    if dims != list(range(len(x.shape))) or reduced != set(range(2, len(x.shape))):
        return None
    if len(x.shape) - 2 != sum(1 for kind, _ in chain if kind == "mean"):
        return None

    def emit(ctx, x=x):
        dt = x.dtype
        cd = float_compute(dt)
        xn = ctx.name_of(x)
        xn = ctx.cast(xn, cd) if cd is not dt else xn
        out = ctx.emit("GlobalAveragePool", [xn])
        return [ctx.cast(out, dt) if cd is not dt else out]
    return Match(node, [n for n in nodes if n is not node], emit)


# ---------------------------------------------------------------------------------------
# RMSNormalization (opset 23)
def _rms_core(v, g, head=None):
    mul = head if head is not None else g.node(v, "mul")
    if mul is None:
        return None
    for x, r in (mul.inputs, mul.inputs[::-1]):
        rs = g.node(r, "rsqrt")
        if rs is None or not _is_float(x):
            continue
        add = g.node(rs.inputs[0], "add")
        if add is None or not isinstance(add.inputs[1], float):
            continue
        div = g.node(add.inputs[0], "div")
        if div is None or not isinstance(div.inputs[1], (int, float)):
            continue
        s = g.node(div.inputs[0], "sum")
        if s is None or not s.attrs["keepdim"]:
            continue
        sq = g.node(s.inputs[0], "mul")
        if sq is None or sq.inputs[0] is not x or sq.inputs[1] is not x:
            continue
        nd = len(x.shape)
        dims = tuple(s.attrs["dims"])
        k = len(dims)
        sizes = [d for d in x.shape[nd - k:]]
        if dims != tuple(range(nd - k, nd)) or not all(isinstance(d, int) for d in sizes) \
                or float(np.prod(sizes)) != float(div.inputs[1]):
            continue
        return x, add.inputs[1], k, [mul, rs, add, div, s, sq]
    return None


def _rms_norm(node, g):
    if node.op.name != "mul":
        return None
    core, w = None, None
    for a, b in (node.inputs, node.inputs[::-1]):
        core = _rms_core(a, g)
        if core is not None and hasattr(b, "shape") and tuple(b.shape) == tuple(
                core[0].shape[len(core[0].shape) - core[2]:]) and b.dtype is core[0].dtype:
            w = b
            break
        core = None
    if core is None:
        core = _rms_core(None, g, head=node)
    if core is None:
        return None
    x, eps, k, nodes = core

    def emit(ctx, x=x, w=w, eps=eps, k=k):
        dt = x.dtype
        cd = float_compute(dt)
        shape = tuple(x.shape[len(x.shape) - k:])
        wn = ctx.name_of(w) if w is not None else ctx.const(np.ones(shape, dt.np), "ones")
        xn = ctx.name_of(x)
        if cd is not dt:
            xn, wn = ctx.cast(xn, cd), ctx.cast(wn, cd)
        out = ctx.emit("RMSNormalization", [xn, wn], axis=-k, epsilon=float(eps))
        return [ctx.cast(out, dt) if cd is not dt else out]
    return Match(node, [n for n in nodes if n is not node], emit)


# ---------------------------------------------------------------------------------------
# Attention (opset 23)
def _attention(node, g):
    if node.op.name != "matmul":
        return None
    p, v = node.inputs
    sm = g.node(p, "softmax")
    if sm is None or not _is_float(v) or len(v.shape) not in (3, 4) or \
            sm.attrs["dim"] != len(p.shape) - 1:
        return None
    s = sm.inputs[0]
    nodes, mask = [sm], None
    add = g.node(s, "add")
    if add is not None:
        for a, b in (add.inputs, add.inputs[::-1]):
            if g.node(a, "mul") is not None and hasattr(b, "shape"):
                s, mask = a, b
                nodes.append(add)
                break
        else:
            return None
    mul = g.node(s, "mul")
    if mul is None or not isinstance(mul.inputs[1], float):
        return None
    qk = g.node(mul.inputs[0], "matmul")
    if qk is None:
        return None
    q, kt = qk.inputs
    tr = g.node(kt, "permute")
    nd = len(q.shape)
    swap = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    if tr is None or tr.attrs["dims"] != swap or len(tr.inputs[0].shape) != nd or \
            len(v.shape) != nd or q.dtype is not v.dtype:
        return None
    if not (tuple(q.shape[:-2]) == tuple(tr.inputs[0].shape[:-2]) == tuple(v.shape[:-2])):
        return None  # batch/head dims broadcast by matmul: Attention needs them equal
    if mask is not None and (mask.dtype is not q.dtype or len(mask.shape) > nd):
        return None
    k = tr.inputs[0]
    scale = mul.inputs[1]
    scores = tuple(mul.outputs[0].shape)
    nodes += [mul, qk, tr]

    def emit(ctx, q=q, k=k, v=v, mask=mask, scale=scale):
        names = [ctx.name_of(q), ctx.name_of(k), ctx.name_of(v)]
        attrs = {"scale": float(scale)}
        if nd == 3:  # (batch, seq, hidden) with one head
            attrs.update(q_num_heads=1, kv_num_heads=1)
        if mask is not None:
            m = ctx.name_of(mask)
            if tuple(mask.shape[-2:]) != scores[-2:]:
                # onnxruntime reads the mask as (..., L, S) rows: broadcast it there first
                full = (1,) * (len(mask.shape) - 2) + scores[-2:]
                m = ctx.emit("Expand", [m, ctx.shape_of(full)])
            if nd == 3 and len(mask.shape) == 3:  # (batch, L, S) -> (batch, 1, L, S)
                m = ctx.emit("Unsqueeze", [m, ctx.ints([1])])
            names.append(m)
        return [ctx.emit("Attention", names, **attrs)]
    return Match(node, nodes, emit)


# (first opset with the native op's form used here, matcher); Gemm, BatchNormalization
# (inference form), Conv with B, AveragePool and GlobalAveragePool predate every opset the
# exporter supports
_PATTERNS = [(1, _gemm), (1, _batch_norm), (1, _conv_bias), (1, _avg_pool),
             (1, _global_avg_pool), (23, _rms_norm), (23, _attention)]

__all__ = ["find_matches", "Match"]
