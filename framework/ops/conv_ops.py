"""Convolution and max-pooling primitives: ``conv``, ``conv_transpose``, ``max_pool``.

All three are N-d over the trailing spatial dims. Padding is an attribute of per-dim
``(lo, hi)`` pairs (asymmetric padding is what ``padding='same'`` with even kernels needs;
a negative entry crops). Bias is not part of the primitives: the functional layer adds it
with broadcasting, so fusion and ONNX see an ordinary add.

VJP rules are written with public ops only:

- ``conv``: input gradient = ``conv_transpose`` of the output gradient; weight gradient =
  a ``conv`` of the input with the output gradient as the kernel (stride and dilation
  swap roles), so both are differentiable again;
- ``conv_transpose``: input gradient = ``conv``; weight gradient = the same ``conv`` trick;
- ``max_pool``: ``scatter_add`` of the gradient at the argmax indices (second output).

Average pooling, adaptive pooling, unfold/fold and interpolation are compositions of these
and of matmul (``framework/nn/functional_conv.py``).
"""

from __future__ import annotations

from .. import dtypes
from ..errors import ArgumentError, AutogradError, DTypeError, ShapeError
from ..tensor import Tensor
from .registry import CONV as CONV_GROUP, apply, register
from .shapes import prod


# ---------------------------------------------------------------------------------------
# size arithmetic (ints or sympy expressions)
def _floordiv(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    import sympy
    return sympy.floor(a / b)


def conv_out_len(size, lo, hi, k, stride, dilation):
    """Output length of a convolution window sweep over one padded dim."""
    return _floordiv(size + lo + hi - dilation * (k - 1) - 1, stride) + 1


def conv_transpose_out_len(size, lo, hi, k, stride, dilation, output_padding):
    """Output length of a transposed convolution over one dim."""
    return (size - 1) * stride - lo - hi + dilation * (k - 1) + 1 + output_padding


def pool_out_len(size, k, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output length (``ceil_mode`` drops a window starting in padding)."""
    span = size + 2 * pad - dilation * (k - 1) - 1
    if not isinstance(span, int):
        import sympy
        return (sympy.ceiling(span / stride) if ceil_mode else sympy.floor(span / stride)) + 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _check_float(op, *ts):
    for t in ts:
        if not t.dtype.is_floating_point:
            raise DTypeError(f"{op}: expected floating-point tensors, got {t.dtype.name}")
    if len(ts) == 2 and ts[0].dtype is not ts[1].dtype:
        raise DTypeError(f"{op}: input and weight must share a dtype, got {ts[0].dtype.name} "
                         f"and {ts[1].dtype.name}")


def _check_conv_common(op, x, w, nd, groups, in_channels_of_weight):
    if x.ndim != nd + 2 or w.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-D input and weight for {nd} spatial dims, "
                         f"got input {list(x.shape)} and weight {list(w.shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise ArgumentError(f"{op}: groups must be a positive int, got {groups!r}")
    c = x.shape[1]
    if not isinstance(c, int) and isinstance(in_channels_of_weight, int):
        # a traced dynamic channel dim meets the weight's fixed one: the capture must keep
        # it static (fw.compile and ONNX export with dynamic=True then retry with it static)
        raise ShapeError(f"{op}: the input's channel dim {c} is dynamic but the weight "
                         f"{list(w.shape)} fixes it at {in_channels_of_weight}")
    if isinstance(c, int) and c % groups:
        raise ShapeError(f"{op}: input channels {c} are not divisible by groups={groups}")
    if isinstance(c, int) and in_channels_of_weight != c:
        raise ShapeError(f"{op}: input of shape {list(x.shape)} has {c} channels but weight "
                         f"{list(w.shape)} expects {in_channels_of_weight} (groups={groups})")


# ---------------------------------------------------------------------------------------
# meta rules
def _conv_meta(x, w, *, stride, padding, dilation, groups):
    nd = len(stride)
    _check_float("conv", x, w)
    _check_conv_common("conv", x, w, nd, groups, w.shape[1] * groups)
    cout = w.shape[0]
    if isinstance(cout, int) and cout % groups:
        raise ShapeError(f"conv: weight {list(w.shape)} has {cout} output channels, not "
                         f"divisible by groups={groups}")
    spatial = []
    for i in range(nd):
        n = conv_out_len(x.shape[2 + i], *padding[i], w.shape[2 + i], stride[i], dilation[i])
        if isinstance(n, int) and n < 1:
            raise ShapeError(f"conv: input {list(x.shape)} (padding {list(padding)}) is "
                             f"smaller than the dilated kernel {list(w.shape[2:])} "
                             f"(dilation {list(dilation)}): output size {n}")
        spatial.append(n)
    return (x.shape[0], cout, *spatial), x.dtype


def _conv_transpose_meta(x, w, *, stride, padding, dilation, groups, output_padding):
    nd = len(stride)
    _check_float("conv_transpose", x, w)
    _check_conv_common("conv_transpose", x, w, nd, groups, w.shape[0])
    spatial = []
    for i in range(nd):
        n = conv_transpose_out_len(x.shape[2 + i], *padding[i], w.shape[2 + i], stride[i],
                                   dilation[i], output_padding[i])
        if isinstance(n, int) and n < 1:
            raise ShapeError(f"conv_transpose: input {list(x.shape)} with weight "
                             f"{list(w.shape)} and padding {list(padding)} gives output size "
                             f"{n}")
        spatial.append(n)
    return (x.shape[0], w.shape[1] * groups, *spatial), x.dtype


def _max_pool_meta(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    nd = len(kernel_size)
    if x.ndim < nd + 1:
        raise ShapeError(f"max_pool{nd}d: expected at least {nd + 1} dims, got input of shape "
                         f"{list(x.shape)}")
    if x.dtype is dtypes.bool_:
        raise DTypeError("max_pool: bool tensors are not supported")
    spatial = []
    for i in range(nd):
        n = pool_out_len(x.shape[x.ndim - nd + i], kernel_size[i], stride[i], padding[i],
                         dilation[i], ceil_mode)
        if isinstance(n, int) and n < 1:
            raise ShapeError(f"max_pool{nd}d: input {list(x.shape)} is too small for kernel "
                             f"{list(kernel_size)} (padding {list(padding)}, dilation "
                             f"{list(dilation)}): output size {n}")
        spatial.append(n)
    shape = tuple(x.shape[:x.ndim - nd]) + tuple(spatial)
    return (shape, x.dtype), (shape, dtypes.int64)


# ---------------------------------------------------------------------------------------
# VJP rules (public ops only)
def conv_weight_grad(x, gout, weight_shape, stride, padding, dilation, groups):
    """Gradient of ``conv(x, w)`` with respect to ``w`` (shape ``weight_shape``), given the
    output gradient ``gout``: itself a ``conv`` with the batch as the reduction axis."""
    nd = len(stride)
    n, c = x.shape[0], x.shape[1]
    cg = c // groups
    cout = gout.shape[1]
    sp = tuple(x.shape[2:])
    # X'[ci, g*N + n] = x[n, g*cg + ci];  W'[g*coutg + co, n] = gout[n, g*coutg + co]
    xr = x.reshape(n, groups, cg, *sp).permute(2, 1, 0, *range(3, 3 + nd))
    xr = xr.reshape(cg, groups * n, *sp)
    wr = gout.transpose(0, 1)
    out = apply(CONV, xr, wr, stride=tuple(dilation), padding=tuple(padding),
                dilation=tuple(stride), groups=groups)          # (cg, cout, *K')
    out = out.transpose(0, 1)
    k = tuple(weight_shape[2:])
    if tuple(out.shape[2:]) != k:
        from .movement import SLICE
        out = apply(SLICE, out, starts=(0,) * (nd + 2), stops=(cout, cg) + k,
                    steps=(1,) * (nd + 2))
    return out


def _conv_vjp(g, args, out, stride, padding, dilation, groups):
    x, w = args
    gx = gw = None
    if x.requires_grad:
        op = tuple(x.shape[2 + i] - conv_transpose_out_len(g.shape[2 + i], *padding[i],
                                                             w.shape[2 + i], stride[i],
                                                             dilation[i], 0)
                   for i in range(len(stride)))
        gx = apply(CONV_TRANSPOSE, g, w, stride=stride, padding=padding, dilation=dilation,
                   groups=groups, output_padding=op)
    if w.requires_grad:
        gw = conv_weight_grad(x, g, w.shape, stride, padding, dilation, groups)
    return gx, gw


def _conv_transpose_vjp(g, args, out, stride, padding, dilation, groups, output_padding):
    x, w = args
    # conv_transpose is the adjoint of conv with the end padding reduced by output_padding
    adj_pad = tuple((lo, hi - o) for (lo, hi), o in zip(padding, output_padding))
    gx = gw = None
    if x.requires_grad:
        gx = apply(CONV, g, w, stride=stride, padding=adj_pad, dilation=dilation,
                   groups=groups)
    if w.requires_grad:
        gw = conv_weight_grad(g, x, w.shape, stride, adj_pad, dilation, groups)
    return gx, gw


def _max_pool_vjp(grads, args, out, kernel_size, stride, padding, dilation, ceil_mode):
    from .creation_ops import full
    from .indexing import SCATTER_ADD
    gv = grads[0]
    x = args[0]
    nd = len(kernel_size)
    lead = tuple(x.shape[:x.ndim - nd])
    indices = out[1] if isinstance(out, tuple) else None
    if indices is None:
        raise AutogradError("max_pool: indices were not saved for backward")
    flat_in = lead + (prod(x.shape[x.ndim - nd:]),)
    flat_out = lead + (prod(gv.shape[gv.ndim - nd:]),)
    zeros = full(flat_in, 0.0, dtype=gv.dtype, device=gv.device)
    gx = apply(SCATTER_ADD, zeros, indices.reshape(flat_out), gv.reshape(flat_out),
               dim=len(lead))
    return (gx.reshape(x.shape),)


CONV = register("conv", CONV_GROUP, _conv_meta, vjp=_conv_vjp)
CONV_TRANSPOSE = register("conv_transpose", CONV_GROUP, _conv_transpose_meta,
                          vjp=_conv_transpose_vjp)
MAX_POOL = register("max_pool", CONV_GROUP, _max_pool_meta, vjp=_max_pool_vjp, num_outputs=2,
                    saves_output=(1,), differentiable_args=(0,))  # reads only the indices


# ---------------------------------------------------------------------------------------
# public primitive entry points (argument normalisation lives in nn.functional)
def _tuple(v, nd, name, op):
    if isinstance(v, int):
        return (v,) * nd
    v = tuple(v)
    if len(v) != nd or not all(isinstance(i, int) for i in v):
        raise ArgumentError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {v!r}")
    return v


def _pairs(padding, nd, op):
    if isinstance(padding, int):
        return ((padding, padding),) * nd
    padding = tuple(padding)
    if len(padding) != nd:
        raise ArgumentError(f"{op}: padding must have {nd} entries, got {padding!r}")
    return tuple((p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding)


def _check_tensors(op, *ts):
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")


def conv(input, weight, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """N-d convolution (cross-correlation) of a batched ``(N, C, *spatial)`` input with a
    ``(C_out, C/groups, *kernel)`` weight. ``padding``: int, per-dim ints or (lo, hi) pairs."""
    _check_tensors("conv", input, weight)
    nd = weight.ndim - 2
    if nd < 1:
        raise ShapeError(f"conv: weight must have at least 3 dims, got {list(weight.shape)}")
    stride = _tuple(stride, nd, "stride", "conv")
    dilation = _tuple(dilation, nd, "dilation", "conv")
    if min(stride) < 1 or min(dilation) < 1:
        raise ArgumentError(f"conv: stride {stride} and dilation {dilation} must be positive")
    return apply(CONV, input, weight, stride=stride, padding=_pairs(padding, nd, "conv"),
                 dilation=dilation, groups=groups)


def conv_transpose(input, weight, stride=1, padding=0, output_padding=0, groups=1,
                   dilation=1) -> Tensor:
    """N-d transposed convolution (the adjoint of :func:`conv`); weight is
    ``(C_in, C_out/groups, *kernel)``."""
    _check_tensors("conv_transpose", input, weight)
    nd = weight.ndim - 2
    if nd < 1:
        raise ShapeError(f"conv_transpose: weight must have at least 3 dims, got "
                         f"{list(weight.shape)}")
    stride = _tuple(stride, nd, "stride", "conv_transpose")
    dilation = _tuple(dilation, nd, "dilation", "conv_transpose")
    output_padding = _tuple(output_padding, nd, "output_padding", "conv_transpose")
    for s, d, o in zip(stride, dilation, output_padding):
        if s < 1 or d < 1:
            raise ArgumentError(f"conv_transpose: stride {stride} and dilation {dilation} "
                                f"must be positive")
        if o < 0 or (o >= s and o >= d):
            raise ArgumentError(f"conv_transpose: output_padding {output_padding} must be "
                                f"smaller than either stride {stride} or dilation "
                                f"{dilation}")
    return apply(CONV_TRANSPOSE, input, weight, stride=stride,
                 padding=_pairs(padding, nd, "conv_transpose"), dilation=dilation,
                 groups=groups, output_padding=output_padding)


def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             nd=None):
    """Max pooling over the last ``nd`` dims: returns ``(values, indices)``, indices being
    flat positions in each input plane (PyTorch's convention)."""
    _check_tensors("max_pool", input)
    if nd is None:
        nd = len(kernel_size) if not isinstance(kernel_size, int) else 2
    name = f"max_pool{nd}d"
    kernel_size = _tuple(kernel_size, nd, "kernel_size", name)
    stride = kernel_size if stride is None or stride == () or stride == [] else \
        _tuple(stride, nd, "stride", name)
    padding = _tuple(padding, nd, "padding", name)
    dilation = _tuple(dilation, nd, "dilation", name)
    for k, s, p, d in zip(kernel_size, stride, padding, dilation):
        if k < 1 or s < 1 or d < 1:
            raise ArgumentError(f"{name}: kernel_size {kernel_size}, stride {stride} and "
                                f"dilation {dilation} must be positive")
        if p < 0 or p > k // 2:
            raise ArgumentError(f"{name}: pad should be at most half of effective kernel "
                                f"size, but got pad={p}, kernel_size={k}")
    return apply(MAX_POOL, input, kernel_size=kernel_size, stride=stride, padding=padding,
                 dilation=dilation, ceil_mode=bool(ceil_mode))
