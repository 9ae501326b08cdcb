"""Complex numbers: ``real``/``imag``/``view_as_real``/``view_as_complex`` (views),
``conj``, ``angle`` of complex input, ``complex(real, imag)``, ``polar``, and the allow-list
of ops that accept complex operands (every other op raises a DTypeError naming itself and
the dtype, from the registry's complex gate).

Gradients follow PyTorch's convention: the gradient of a real loss ``L`` with respect to
``z = x + iy`` is ``dL/dx + i dL/dy`` (the conjugate Wirtinger derivative, times 2), so a
VJP multiplies the incoming gradient by the *conjugate* of the derivative, and a real input
of a complex value receives the real part of its gradient.
"""

from __future__ import annotations

from .. import dtypes
from ..dtypes import COMPLEX, FLOAT
from ..errors import ArgumentError, DTypeError, ShapeError
from ..tensor import Tensor
from .pointwise import cast, where
from .registry import OPS, apply, register

COMPLEX_GROUP = "complex"  # opaque to fusion: each op runs its own kernel


def _is_complex(x) -> bool:
    return isinstance(x, Tensor) and x.dtype.category == COMPLEX


def _tensor_arg(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(x).__name__}")


# ---------------------------------------------------------------------------------------
# real / imag views
def _real_meta(x):
    if x.dtype.category != COMPLEX:
        raise DTypeError(f"real: expected a complex tensor, got {x.dtype.name}")
    return x.shape, x.dtype.to_real()


def _imag_meta(x):
    if x.dtype.category != COMPLEX:
        raise DTypeError(f"imag is not implemented for tensors with non-complex dtypes "
                         f"(got {x.dtype.name})")
    return x.shape, x.dtype.to_real()


def _real_vjp(g, args, out):
    return (complex(g, g * 0.0),)


def _imag_vjp(g, args, out):
    return (complex(g * 0.0, g),)


REAL = register("real", COMPLEX_GROUP, _real_meta, vjp=_real_vjp, is_view=True,
                saves_args=(), complex_ok=True)
IMAG = register("imag", COMPLEX_GROUP, _imag_meta, vjp=_imag_vjp, is_view=True,
                saves_args=(), complex_ok=True)


def real(input) -> Tensor:
    """The real part: a real view of a complex tensor (writes go through to ``input``);
    a real tensor is returned as is."""
    _tensor_arg(input, "real")
    if input.dtype.category != COMPLEX:
        return input
    return apply(REAL, input)


def imag(input) -> Tensor:
    """The imaginary part: a real view of a complex tensor (an error for real tensors, as
    in PyTorch)."""
    _tensor_arg(input, "imag")
    return apply(IMAG, input)


# ---------------------------------------------------------------------------------------
# view_as_real / view_as_complex
def _view_as_real_meta(x):
    if x.dtype.category != COMPLEX:
        raise DTypeError(f"view_as_real is only supported for complex tensors, got "
                         f"{x.dtype.name}")
    return tuple(x.shape) + (2,), x.dtype.to_real()


def _view_as_complex_meta(x):
    if x.dtype not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"view_as_complex is only supported for float32 and float64 tensors, "
                         f"but got a tensor of scalar type: {x.dtype.name}")
    if not x.shape or x.shape[-1] != 2:
        raise ShapeError(f"view_as_complex: Tensor must have a last dimension of size 2, got "
                         f"shape {list(x.shape)}")
    return tuple(x.shape[:-1]), x.dtype.to_complex()


VIEW_AS_REAL = register("view_as_real", COMPLEX_GROUP, _view_as_real_meta,
                        vjp=lambda g, args, out: (view_as_complex(g.contiguous()),),
                        is_view=True, saves_args=(), complex_ok=True)
VIEW_AS_COMPLEX = register("view_as_complex", COMPLEX_GROUP, _view_as_complex_meta,
                           vjp=lambda g, args, out: (view_as_real(g),), is_view=True,
                           saves_args=())


def view_as_real(input) -> Tensor:
    """A real view of a complex tensor with a trailing dimension of size 2 (real, imag)."""
    _tensor_arg(input, "view_as_real")
    return apply(VIEW_AS_REAL, input)


def view_as_complex(input) -> Tensor:
    """A complex view of a float32/float64 tensor whose last dimension has size 2 and
    stride 1 (the other strides even), as ``torch.view_as_complex``."""
    _tensor_arg(input, "view_as_complex")
    data = input._data
    if data is not None and input.device.type == "cpu" and input.shape and \
            input.shape[-1] == 2:
        item = data.dtype.itemsize
        if data.strides[-1] != item:
            raise ArgumentError("view_as_complex: Tensor must have a last dimension with "
                                "stride 1")
        if any(st % (2 * item) for st, n in zip(data.strides[:-1], data.shape[:-1]) if n > 1):
            raise ArgumentError("view_as_complex: Tensor must have a stride divisible by 2 "
                                "for all but last dimension")
    return apply(VIEW_AS_COMPLEX, input)


# ---------------------------------------------------------------------------------------
# conj, angle, complex(), polar
def _same_meta(x):
    return x.shape, x.dtype


CONJ = register("conj", COMPLEX_GROUP, _same_meta,
                vjp=lambda g, args, out: (conj(g),), saves_args=(), complex_ok=True)


def conj(input) -> Tensor:
    """The complex conjugate (computed eagerly here: ``is_conj()`` is always False); a real
    tensor is returned as is."""
    _tensor_arg(input, "conj")
    if input.dtype.category != COMPLEX:
        return input
    return apply(CONJ, input)


def conj_physical(input) -> Tensor:
    """The complex conjugate, materialized (the same as :func:`conj` here)."""
    return conj(input)


def resolve_conj(input) -> Tensor:
    """``input`` itself: conjugation is never lazy here, so there is nothing to resolve."""
    _tensor_arg(input, "resolve_conj")
    return input


def resolve_neg(input) -> Tensor:
    """``input`` itself: negation is never lazy here, so there is nothing to resolve."""
    _tensor_arg(input, "resolve_neg")
    return input


def is_conj(input) -> bool:
    """Always False: conjugation is computed eagerly (no conjugate bit)."""
    _tensor_arg(input, "is_conj")
    return False


def is_neg(input) -> bool:
    """Always False: negation is computed eagerly (no negative bit)."""
    _tensor_arg(input, "is_neg")
    return False


def _angle_meta(x):
    return x.shape, x.dtype.to_real()


def _angle_vjp(g, args, out):
    # angle = atan2(y, x): d/dx = -y/|z|^2, d/dy = x/|z|^2, so the gradient is
    # g * (-y + ix) / |z|^2 = g * i z / |z|^2 (0 at z = 0, as PyTorch).
    z = args[0]
    a2 = real(z) * real(z) + imag(z) * imag(z)
    safe = where(a2 == 0, 1.0, a2)
    return (where(a2 == 0, 0.0, complex(-imag(z) * g, real(z) * g) / safe),)


ANGLE = register("complex_angle", COMPLEX_GROUP, _angle_meta, vjp=_angle_vjp,
                 complex_ok=True)


def complex_angle(input) -> Tensor:
    """The argument of each element of a complex tensor, in (-pi, pi] (``fw.angle`` calls
    this for complex input)."""
    _tensor_arg(input, "angle")
    if input.dtype.category != COMPLEX:
        raise DTypeError(f"complex_angle: expected a complex tensor, got {input.dtype.name}")
    return apply(ANGLE, input)


def _complex_meta(re, im):
    if re.dtype is not im.dtype:
        raise DTypeError(f"complex: Expected object of scalar type {re.dtype.name} but got "
                         f"scalar type {im.dtype.name} for second argument")
    if re.dtype not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"complex: expected both inputs to be float32 or float64 (half is "
                         f"not supported), got {re.dtype.name}")
    from .shapes import broadcast_shapes
    shape = re.shape if re.shape == im.shape else broadcast_shapes(re.shape, im.shape,
                                                                   "complex")
    return shape, re.dtype.to_complex()


def _complex_vjp(g, args, out):
    from .pointwise import sum_to_shape
    re, im = args
    return (sum_to_shape(real(g), re.shape), sum_to_shape(imag(g), im.shape))


COMPLEX_OP = register("complex", COMPLEX_GROUP, _complex_meta, vjp=_complex_vjp,
                      saves_args=())


def complex(real, imag) -> Tensor:  # noqa: A001  (torch.complex)
    """A complex tensor ``real + i * imag`` from two float32 (or two float64) tensors."""
    if not isinstance(real, Tensor) or not isinstance(imag, Tensor):
        raise TypeError("complex(): arguments 'real' and 'imag' must be Tensors")
    return apply(COMPLEX_OP, real, imag)


def polar(abs, angle) -> Tensor:  # noqa: A002  (torch.polar's argument names)
    """The complex tensor ``abs * (cos(angle) + i sin(angle))``."""
    if not isinstance(abs, Tensor) or not isinstance(angle, Tensor):
        raise TypeError("polar(): arguments 'abs' and 'angle' must be Tensors")
    if abs.dtype is not angle.dtype or abs.dtype not in (dtypes.float32, dtypes.float64):
        raise DTypeError(f"polar: expected abs and angle of one dtype, float32 or float64, "
                         f"got {abs.dtype.name} and {angle.dtype.name}")
    return complex(abs * angle.cos(), abs * angle.sin())


def to_complex_input(x: Tensor, name: str) -> Tensor:
    """``x`` as a complex tensor (real floats promote: float32 -> complex64; ints and bools
    go through the default float dtype), for ops that compute in complex (fft)."""
    _tensor_arg(x, name)
    if x.dtype.category == COMPLEX:
        return x
    if x.dtype.category < FLOAT:
        x = cast(x, dtypes.get_default_dtype())
    if x.dtype not in (dtypes.float32, dtypes.float64):
        x = cast(x, dtypes.float32)
    return cast(x, x.dtype.to_complex())


# ---------------------------------------------------------------------------------------
# the allow-list: registered ops that take complex operands (see module docstring)
COMPLEX_OPS = frozenset({
    # elementwise (unary ones not in pointwise.COMPLEX_UNARY are refused there first)
    "neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "abs", "reciprocal",
    "isnan", "isinf", "isfinite", "add", "sub", "mul", "div", "pow", "eq", "ne", "where",
    "cast",
    # reductions, scans, products
    "sum", "prod", "cumsum", "cumprod", "matmul", "einsum",
    # movement and indexing (linear: their gradients need no conjugation)
    "reshape", "permute", "expand", "slice", "pad", "cat", "flip", "trilu", "clone",
    "detach", "gather", "index", "index_put", "scatter", "scatter_add", "to_device",
    "full",
})


def enable_complex_ops() -> None:
    """Mark the allow-listed registered ops as taking complex operands."""
    for name in COMPLEX_OPS:
        op = OPS.get(name)
        if op is not None:
            op.complex_ok = True


enable_complex_ops()

def _set_real(self, value):
    real(self).copy_(value)


def _set_imag(self, value):
    imag(self).copy_(value)


# Tensor.real / Tensor.imag are properties (views), as in PyTorch
Tensor.real = property(real, _set_real, doc="The real part (a view for complex tensors).")
Tensor.imag = property(imag, _set_imag, doc="The imaginary part (a view; complex only).")
METHODS = "conj conj_physical resolve_conj resolve_neg is_conj is_neg"
INPLACE_METHODS = "conj_physical"

__all__ = ["real", "imag", "view_as_real", "view_as_complex", "conj", "conj_physical",
           "resolve_conj", "resolve_neg", "is_conj", "is_neg", "complex", "polar"]
