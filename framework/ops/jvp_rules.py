"""Explicit forward-mode (JVP) rules for the hot ops, keyed by op name.

Forward-mode AD (:mod:`framework.autograd.forward_ad`) pushes tangents through every op
that has a VJP rule with a generic rule (the VJP is linear in its cotangent, so its own
VJP at the tangents is the JVP); that costs about three times the op. The rules here give
the same result directly, written with public ops so that autograd records them (the
tangents of a forward-over-reverse computation are differentiable) and a trace captures
them.

A rule is ``rule(tangents, args, out, **attrs)``: ``tangents`` has one entry per
positional arg (None where that arg carries no tangent, and always for non-tensors),
``out`` is the op's output. It returns the output's tangent (a tuple for multi-output
ops), or ``NotImplemented`` to hand the call to the generic rule (e.g. a complex input
to a rule written for real ones). A rule may return one of its input tangents, or a view
of one: the caller copies it (only view ops give views of their input's tangent).
"""

from __future__ import annotations

import math

from ..dtypes import COMPLEX
from ..tensor import Tensor
from .registry import OPS, apply

JVP_RULES: dict = {}


def jvp_rule(*names):
    """Register the decorated function as the JVP rule of the ops ``names``."""
    def deco(fn):
        for n in names:
            JVP_RULES[n] = fn
        return fn
    return deco


def _fit(t: Tensor, shape) -> Tensor:
    """``t`` broadcast to the output's ``shape`` (a tangent always has its primal's shape)."""
    return t if t.shape == tuple(shape) else t.expand(shape)


def _plus(a, b):
    """a + b where either may be None (no contribution)."""
    if a is None:
        return b
    return a if b is None else a + b


def _is_complex(*xs) -> bool:
    return any(isinstance(x, Tensor) and x.dtype.category == COMPLEX for x in xs)


# ---------------------------------------------------------------------------------------
# linear ops: the tangent goes through the op itself
def _first_linear(name):
    """The op is linear in its first arg (the others are indices or sizes)."""
    def rule(ts, args, out, **attrs):
        if ts[0] is None:
            return NotImplemented
        return apply(OPS[name], ts[0], *args[1:], **attrs)
    return rule


for _n in ("permute", "expand", "slice", "flip", "trilu", "clone", "sum", "cumsum", "real",
           "imag", "conj", "view_as_real", "view_as_complex", "fft_c2c", "fft_r2c",
           "fft_c2r", "as_strided", "gather", "index", "embedding"):
    JVP_RULES[_n] = _first_linear(_n)


@jvp_rule("reshape")
def _reshape(ts, args, out, shape):
    from .movement import reshape
    return reshape(ts[0], shape)  # a view when the tangent's strides allow one, else a copy


@jvp_rule("pad")
def _pad(ts, args, out, pads, value):
    return apply(OPS["pad"], ts[0], pads=pads, value=0.0)


@jvp_rule("cat")
def _cat(ts, args, out, dim):
    from ..creation import zeros_like
    return apply(OPS["cat"], *[t if t is not None else zeros_like(a)
                               for t, a in zip(ts, args)], dim=dim)


@jvp_rule("cast")
def _cast(ts, args, out, dtype):
    from .pointwise import cast
    return cast(ts[0], dtype)


def _zeros_or(t, like):
    from ..creation import zeros_like
    return t if t is not None else zeros_like(like)


def _scatter_like(name):
    """scatter / scatter_add / index_put are linear in (input, source) together."""
    def rule(ts, args, out, **attrs):
        x, src = (args[0], args[1]) if name == "index_put" else (args[0], args[2])
        t_src = ts[1] if name == "index_put" else ts[2]
        if t_src is None:
            t_src = _zeros_or(None, src) if isinstance(src, Tensor) else 0.0
        rest = list(args)
        rest[0] = _zeros_or(ts[0], x)
        rest[1 if name == "index_put" else 2] = t_src
        return apply(OPS[name], *rest, **attrs)
    return rule


for _n in ("scatter", "scatter_add", "index_put"):
    JVP_RULES[_n] = _scatter_like(_n)


# ---------------------------------------------------------------------------------------
# elementwise
def _holomorphic(deriv):
    """A unary rule ``t * f'(x)`` valid for real and complex input."""
    def rule(ts, args, out):
        return ts[0] * deriv(args[0], out)
    return rule


for _n, _d in {
    "exp": lambda x, o: o,
    "log": lambda x, o: x.reciprocal(),
    "sqrt": lambda x, o: (o * 2).reciprocal(),
    "sin": lambda x, o: x.cos(),
    "cos": lambda x, o: -x.sin(),
    "tanh": lambda x, o: 1 - o * o,
    "sigmoid": lambda x, o: o * (1 - o),
    "reciprocal": lambda x, o: -(o * o),
}.items():
    JVP_RULES[_n] = _holomorphic(_d)


@jvp_rule("neg")
def _neg(ts, args, out):
    return -ts[0]


@jvp_rule("relu")
def _relu(ts, args, out):
    from .pointwise import where
    return where(out > 0, ts[0], 0.0)


def _real_unary(name):
    """A real elementwise op's Jacobian is diagonal, so its JVP is its VJP at the tangent."""
    def rule(ts, args, out, **attrs):
        if _is_complex(args[0]):
            return NotImplemented
        g = OPS[name].vjp(ts[0], args, out, **attrs)[0]
        if g is None:  # a piecewise-constant op (sign, floor, ...)
            from ..creation import zeros_like
            return zeros_like(out)
        return g
    return rule


_installed = [0]  # len(OPS) when install_unary_rules last ran (ops may register later)


def install_unary_rules():
    """Rules for the unary ops (and gelu, polygamma) that have no explicit one above."""
    if _installed[0] == len(OPS):
        return
    _installed[0] = len(OPS)
    for name, op in OPS.items():
        if name in JVP_RULES or op.vjp is None:
            continue
        if op.group == "unary" or name in ("gelu", "polygamma"):
            JVP_RULES[name] = _real_unary(name)


@jvp_rule("add")
def _add(ts, args, out):
    return _fit(_plus(ts[0], ts[1]), out.shape)


@jvp_rule("sub")
def _sub(ts, args, out):
    tb = -ts[1] if ts[1] is not None else None
    return _fit(_plus(ts[0], tb), out.shape)


@jvp_rule("mul")
def _mul(ts, args, out):
    a, b = args
    return _fit(_plus(ts[0] * b if ts[0] is not None else None,
                      a * ts[1] if ts[1] is not None else None), out.shape)


@jvp_rule("div")
def _div(ts, args, out):
    a, b = args
    num = _plus(ts[0], -ts[1] * out if ts[1] is not None else None)
    return _fit(num / b, out.shape)


@jvp_rule("pow")
def _pow(ts, args, out):
    from .pointwise import where
    a, b = args
    if _is_complex(a, b) or isinstance(a, complex) or isinstance(b, complex):
        return NotImplemented
    res = None
    if ts[0] is not None:
        res = ts[0] * 0.0 if (not isinstance(b, Tensor) and b == 0) else \
            ts[0] * (b * a.pow(b - 1))
    if ts[1] is not None:
        if isinstance(a, Tensor):
            tb = where((a == 0) & (b >= 0), 0.0, ts[1] * out * a.log())
        else:
            log_a = math.log(a) if a > 0 else float("nan")
            tb = ts[1] * out * log_a
        res = _plus(res, tb)
    return _fit(res, out.shape)


def _minmax(is_max):
    def rule(ts, args, out):
        a, b = args
        if _is_complex(a, b):
            return NotImplemented
        win = (a > b) if is_max else (a < b)
        share = win.to(out.dtype) + (a == b).to(out.dtype) * 0.5
        res = None
        if ts[0] is not None:
            res = ts[0] * share
        if ts[1] is not None:
            res = _plus(res, ts[1] * (1 - share))
        return _fit(res, out.shape)
    return rule


JVP_RULES["maximum"] = _minmax(True)
JVP_RULES["minimum"] = _minmax(False)


@jvp_rule("where")
def _where(ts, args, out):
    from .pointwise import where
    cond = args[0]
    ta = ts[1] if ts[1] is not None else 0.0
    tb = ts[2] if ts[2] is not None else 0.0
    return _fit(where(cond, ta, tb), out.shape)


# ---------------------------------------------------------------------------------------
# reductions, matmul, convolution
def _amaxmin(ts, args, out, dims, keepdim):
    x = args[0]
    o = out if keepdim or not dims else out.reshape(
        tuple(1 if i in dims else s for i, s in enumerate(x.shape)))
    mask = (x == o).to(out.dtype)
    t = (ts[0] * mask).sum(dim=dims, keepdim=keepdim) / mask.sum(dim=dims, keepdim=keepdim)
    return t


JVP_RULES["amax"] = JVP_RULES["amin"] = _amaxmin


@jvp_rule("matmul")
def _matmul(ts, args, out):
    a, b = args
    op = OPS["matmul"]
    return _plus(apply(op, ts[0], b) if ts[0] is not None else None,
                 apply(op, a, ts[1]) if ts[1] is not None else None)


@jvp_rule("einsum")
def _einsum(ts, args, out, equation):
    op = OPS["einsum"]
    res = None
    for i, t in enumerate(ts):
        if t is not None:
            res = _plus(res, apply(op, *args[:i], t, *args[i + 1:], equation=equation))
    return res


def _bilinear(name):
    def rule(ts, args, out, **attrs):
        x, w = args
        op = OPS[name]
        return _plus(apply(op, ts[0], w, **attrs) if ts[0] is not None else None,
                     apply(op, x, ts[1], **attrs) if ts[1] is not None else None)
    return rule


JVP_RULES["conv"] = _bilinear("conv")
JVP_RULES["conv_transpose"] = _bilinear("conv_transpose")


# ---------------------------------------------------------------------------------------
# composites
@jvp_rule("softmax")
def _softmax(ts, args, out, dim):
    t = ts[0]
    return out * (t - (out * t).sum(dim=dim, keepdim=True))


@jvp_rule("log_softmax")
def _log_softmax(ts, args, out, dim):
    t = ts[0]
    return t - (out.exp() * t).sum(dim=dim, keepdim=True)


@jvp_rule("layer_norm")
def _layer_norm(ts, args, out, normalized_ndim, eps):
    from .nn_ops import _ln_dims, _normalize
    x, w, b = args
    tx, tw, tb = ts
    res = None
    xhat = None
    if tx is not None or tw is not None:
        dims = _ln_dims(x, normalized_ndim)
        xhat, rstd = _normalize(x, dims, eps)
    if tx is not None:
        dxhat = (tx - tx.mean(dim=dims, keepdim=True)
                 - xhat * (tx * xhat).mean(dim=dims, keepdim=True)) * rstd
        res = dxhat * w
    if tw is not None:
        res = _plus(res, xhat * tw)
    if tb is not None:
        res = _plus(res, tb)
    return _fit(res, out.shape)
