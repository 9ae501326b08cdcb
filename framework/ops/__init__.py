"""The op registry and every public op function (``framework.ops`` is the functional
namespace used by methods, autograd rules and ``nn.functional``)."""

from __future__ import annotations

from . import composite, creation_ops, indexing, linalg, movement, pointwise, reduce  # noqa: F401
from . import nn_ops  # noqa: F401  (gelu, layer_norm, embedding, cross_entropy)
from .composite import log_softmax, softmax  # noqa: F401
from .indexing import (argwhere, gather, getitem, index_add, index_put, index_put_key,  # noqa: F401
                       index_select, masked_fill, masked_select, nonzero, one_hot, scatter,
                       scatter_add, take_along_dim)
from .linalg import bmm, dot, einsum, matmul, mm, mv, outer  # noqa: F401
from .movement import (broadcast_tensors, broadcast_to, cat, chunk, clone, concat,  # noqa: F401
                       concatenate, contiguous, expand, expand_as, flatten, flip, fliplr,
                       flipud, hstack, movedim, narrow, pad, permute, repeat, reshape, roll,
                       select, split, squeeze, stack, swapaxes, swapdims, t, tile, transpose,
                       tril, triu, unbind, unflatten, unsqueeze, view, vstack)
from .pointwise import (add, binary, cast, clamp, div, mul, nan_to_num, pow, sub,  # noqa: F401
                        unary, where)
from .pointwise import digamma, erfc, erfinv, i0, lgamma, polygamma, xlogy  # noqa: F401
from .reduce import (all, amax, amin, any, argmax, argmin, cumprod, cumsum,  # noqa: F401
                     logsumexp, max, mean, min, norm, prod, std, std_mean, sum, var,
                     var_mean)
from .registry import OPS, Op, apply, get_op, register  # noqa: F401
from .sort_ops import argsort, sort, topk  # noqa: F401
from .math_extra import *  # noqa: F401,F403,E402
from .linalg_extra_ops import *  # noqa: F401,F403,E402
from .order_stats import *  # noqa: F401,F403,E402
from .scatter_reduce_ops import *  # noqa: F401,F403,E402
from .torch_extra import *  # noqa: F401,F403,E402
from .torch_misc import *  # noqa: F401,F403,E402
from .torch_products import *  # noqa: F401,F403,E402
from .torch_gaps import *  # noqa: F401,F403,E402
from .tensor_extra import *  # noqa: F401,F403,E402
from .special_ops import *  # noqa: F401,F403,E402
from .complex_ops import *  # noqa: F401,F403,E402
from .spectral import *  # noqa: F401,F403,E402
from .windows import *  # noqa: F401,F403,E402
from .strided import *  # noqa: F401,F403,E402
from . import fft_ops  # noqa: F401,E402  (fw.fft's primitives; public functions: framework/fft.py)
from ..creation import *  # noqa: F401,F403,E402


def _make_unary(name):
    def fn(input):
        return unary(name, input)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return fn


def _make_binary(name):
    def fn(input, other):
        return binary(name, input, other)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name} with broadcasting and type promotion."
    return fn


for _n in ("neg", "exp", "exp2", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos",
           "tan", "tanh", "sigmoid", "relu", "abs", "sign", "reciprocal", "floor", "ceil",
           "trunc", "erf", "bitwise_not", "isnan", "isinf", "isfinite", "logical_not"):
    globals()[_n] = _make_unary(_n)
for _n in ("maximum", "minimum", "atan2", "remainder", "fmod", "bitwise_and", "bitwise_or",
           "bitwise_xor", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
           "logical_xor"):
    globals()[_n] = _make_binary(_n)

negative = neg  # noqa: F405
absolute = abs  # noqa: F405
greater, greater_equal, less, less_equal = gt, ge, lt, le  # noqa: F405
not_equal = ne  # noqa: F405
clip = clamp
true_divide = divide = div
multiply = mul
subtract = sub


def round(input, decimals=0):
    """Round half to even (optionally at ``decimals`` decimal places)."""
    if decimals:
        scale = 10.0 ** decimals
        return unary("round", input * scale) / scale
    return unary("round", input)


def floor_divide(input, other):
    """Floor division."""
    return binary("floor_divide", input, other)


def square(input):
    """``input * input``."""
    return mul(input, input)


def clamp_min(input, min):  # noqa: F811
    """Clamp from below."""
    return clamp(input, min=min)


def clamp_max(input, max):  # noqa: F811
    """Clamp from above."""
    return clamp(input, max=max)


def lerp(input, end, weight):
    """``input + weight * (end - input)``, evaluated as PyTorch does: from ``end`` when
    ``|weight| >= 0.5`` (``end - (end - input) * (1 - weight)``), so weight 1 gives ``end``
    exactly."""
    from ..tensor import Tensor
    diff = end - input
    if isinstance(weight, Tensor):  # the branch per element
        return where(weight.abs() < 0.5, input + weight * diff, end - diff * (1 - weight))
    if -0.5 < weight < 0.5:  # (``abs`` here is the op)
        return input + weight * diff
    return end - diff * (1 - weight)


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    return input + tensor1 * tensor2 * value


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    return input + tensor1 / tensor2 * value


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    close = (input - other).abs() <= atol + rtol * other.abs()
    close = close | (input == other)
    if equal_nan:
        close = close | (input.isnan() & other.isnan())
    return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """True when every element is close."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other) -> bool:
    """True when shapes and all elements are equal."""
    return input.shape == other.shape and bool((input == other).all())


def numel(input) -> int:
    """Number of elements."""
    return input.numel()
from .quant_ops import *  # noqa: F401,F403,E402  (fake quantization; framework/ao/quantization)
from . import quant_dynamic_ops  # noqa: F401,E402  (dynamic_quantize_linear, matmul_integer)
from . import attention_ops  # noqa: F401,E402  (flash_attention: sdpa's fused op on cuda)


def __getattr__(name):  # fw.ops.<namespace>: the custom ops of fw.library
    if name.startswith("__"):
        raise AttributeError(name)
    from ..library import namespace
    return namespace(name)
