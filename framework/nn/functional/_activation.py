"""Activation functions (``F.relu``, ``F.gelu``, ``F.softplus``, ...), written with framework
ops so autograd, tracing and export see ordinary op calls.

Branches that could overflow are computed on clamped inputs, so the branch ``where``
discards never sends ``0 * inf = nan`` into the gradient.
"""

from __future__ import annotations

from ... import ops
from ...amp.autocast import autocast_op
from ...errors import ArgumentError, ShapeError
from ...ops.inplace import commit, mark
from ...ops.nn_ops import gelu as _gelu_op
from ...ops.shapes import normalize_dim
from ...tensor import Tensor

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _run(input: Tensor, inplace: bool, name: str, compute) -> Tensor:
    """``compute(input)``, written into ``input`` when ``inplace`` (PyTorch's ``relu_``);
    the nodes computing the new value keep the old data they need for backward."""
    if not inplace:
        return compute(input)
    since = mark()
    return commit(input, compute(input), name + "_", since)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``."""
    return _run(input, inplace, "relu", ops.relu)


def relu_(input: Tensor) -> Tensor:
    """In-place ``relu``."""
    return relu(input, inplace=True)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """``clamp(x, min_val, max_val)``."""
    if min_val > max_val:
        raise ArgumentError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                            f"({max_val})")
    return _run(input, inplace, "hardtanh", lambda x: ops.clamp(x, min_val, max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return _run(input, inplace, "relu6", lambda x: ops.clamp(x, 0.0, 6.0))


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``negative_slope * x``."""
    return _run(input, inplace, "leaky_relu", lambda x: ops.where(x > 0, x, x * negative_slope))


@autocast_op("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """Leaky ReLU with a learnable slope per channel (dim 1) or one shared slope."""
    w = weight
    if weight.numel() != 1:
        if input.ndim < 2 or input.shape[1] != weight.numel():
            raise ShapeError(f"prelu: weight with {weight.numel()} elements does not match the "
                             f"channel dim of input shape {list(input.shape)}")
        w = weight.reshape((-1,) + (1,) * (input.ndim - 2))
    elif input.ndim:
        w = weight.reshape(())
    return ops.where(input > 0, input, input * w)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``."""
    return _run(input, inplace, "threshold", lambda x: ops.where(x > threshold, x, value))


_threshold = threshold  # ``threshold_``'s argument shadows the function


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return _run(input, inplace, "elu", lambda x: ops.where(
        x > 0, x, ops.expm1(ops.clamp(x, max=0.0)) * alpha))


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalizing constants."""
    return _run(input, inplace, "selu", lambda x: ops.where(
        x > 0, x, ops.expm1(ops.clamp(x, max=0.0)) * _SELU_ALPHA) * _SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise ArgumentError("celu: alpha must not be 0")
    return _run(input, inplace, "celu", lambda x: ops.where(
        x > 0, x, ops.expm1(ops.clamp(x, max=0.0) / alpha) * alpha))


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place ``hardtanh``."""
    return hardtanh(input, min_val, max_val, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place ``leaky_relu``."""
    return leaky_relu(input, negative_slope, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place ``threshold``."""
    return _threshold(input, threshold, value, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place ``elu``."""
    return elu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    """In-place ``selu``."""
    return selu(input, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place ``celu``."""
    return celu(input, alpha, inplace=True)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation."""
    return _gelu_op(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    return _run(input, inplace, "silu", lambda x: x * ops.sigmoid(x))


def _softplus1(t: Tensor) -> Tensor:
    # log(1 + exp(t)) = relu(t) + log1p(exp(-|t|)); -|t| written as a where so the
    # derivative at t = 0 is the correct 1/2.
    return ops.relu(t) + ops.log1p(ops.exp(ops.where(t > 0, -t, t)))


@autocast_op("softplus")
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    bx = input * beta if beta != 1 else input
    soft = _softplus1(bx) / beta if beta != 1 else _softplus1(bx)
    return ops.where(bx > threshold, input, soft)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return _run(input, inplace, "mish", lambda x: x * ops.tanh(_softplus1(x)))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``."""
    return _run(input, inplace, "hardsigmoid", lambda x: ops.clamp(x / 6.0 + 0.5, 0.0, 1.0))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``."""
    return _run(input, inplace, "hardswish", lambda x: x * ops.clamp(x / 6.0 + 0.5, 0.0, 1.0))


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return input / (ops.abs(input) + 1.0)


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, computed stably."""
    return -_softplus1(-input)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return input - ops.tanh(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    return ops.where(input > lambd, input - lambd,
                     ops.where(input < -lambd, input + lambd, 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    return ops.where(ops.abs(input) > lambd, input, 0.0)


def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    return ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return ops.tanh(input)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    return ops.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """``log(softmax(x))`` along ``dim``."""
    return ops.log_softmax(input, dim, dtype)


@autocast_op("softmin")
def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x)``."""
    return ops.softmax(-input, dim, dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``dim`` in halves ``a, b`` and return ``a * sigmoid(b)``."""
    if input.ndim == 0:
        raise ShapeError("glu: does not support scalars because halving size must be even")
    d = normalize_dim(dim, input.ndim, "glu")
    if input.shape[d] % 2:
        raise ShapeError(f"glu: halving dimension must be even, but dimension {d} is size "
                         f"{input.shape[d]}")
    a, b = ops.chunk(input, 2, d)
    return a * ops.sigmoid(b)


__all__ = ["relu", "relu_", "hardtanh", "relu6", "leaky_relu", "prelu", "threshold", "elu",
           "selu", "celu", "hardtanh_", "leaky_relu_", "threshold_", "elu_", "selu_", "celu_",
           "gelu", "silu", "softplus", "mish", "hardsigmoid", "hardswish",
           "softsign", "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "sigmoid",
           "tanh", "softmax", "log_softmax", "softmin", "glu"]
