"""Dtypes, PyTorch's type promotion, and the NumPy / short names of each dtype.

A :class:`DType` is a singleton per kind (``fw.float32 is fw.float32``), so dtype checks
on the hot path are identity tests.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .errors import DTypeError

# Categories, ordered: a higher category wins in promotion across categories.
BOOL, INT, FLOAT, COMPLEX = 0, 1, 2, 3


class DType:
    """A tensor element type: its name, NumPy dtype and promotion category."""

    __slots__ = ("name", "np", "short", "category", "itemsize", "is_signed")

    def __init__(self, name: str, np_dtype, short: str, category: int, is_signed: bool):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.short = short
        self.category = category
        self.itemsize = self.np.itemsize
        self.is_signed = is_signed

    @property
    def is_floating_point(self) -> bool:
        """True for float16, bfloat16, float32 and float64."""
        return self.category == FLOAT

    @property
    def is_complex(self) -> bool:
        """True for complex64 and complex128."""
        return self.category == COMPLEX

    @property
    def is_differentiable(self) -> bool:
        """True for the dtypes autograd differentiates: floating point and complex."""
        return self.category >= FLOAT

    def to_real(self) -> DType:
        """The real counterpart (complex64 -> float32; real dtypes return themselves)."""
        return _TO_REAL.get(self, self)

    def to_complex(self) -> DType:
        """The complex counterpart (float32 -> complex64, float64 -> complex128)."""
        if self.category == COMPLEX:
            return self
        out = _TO_COMPLEX.get(self)
        if out is None:
            raise DTypeError(f"to_complex: there is no complex dtype for {self.name} "
                             "(complex64 and complex128 are supported)")
        mark_complex_used()
        return out

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


bool_ = DType("bool", np.bool_, "b8", BOOL, False)
uint8 = DType("uint8", np.uint8, "u8", INT, False)
int8 = DType("int8", np.int8, "i8", INT, True)
int16 = DType("int16", np.int16, "i16", INT, True)
int32 = DType("int32", np.int32, "i32", INT, True)
int64 = DType("int64", np.int64, "i64", INT, True)
float16 = DType("float16", np.float16, "f16", FLOAT, True)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, "bf16", FLOAT, True)
float32 = DType("float32", np.float32, "f32", FLOAT, True)
float64 = DType("float64", np.float64, "f64", FLOAT, True)
# Complex dtypes are kept out of ALL_DTYPES / FLOAT_DTYPES (dtype sweeps stay real).
complex64 = DType("complex64", np.complex64, "c64", COMPLEX, True)
complex128 = DType("complex128", np.complex128, "c128", COMPLEX, True)
COMPLEX_DTYPES = (complex64, complex128)
_TO_REAL = {complex64: float32, complex128: float64}
_TO_COMPLEX = {float32: complex64, float64: complex128}

# Set once the first complex dtype is resolved (a name, a NumPy dtype, a Python complex
# scalar, a promotion): the op registry only checks operands for complex dtypes after
# that, so the real-dtype hot path pays one flag test per op.
_complex_listeners: list = []
_complex_used = False


def mark_complex_used() -> None:
    """Record that complex dtypes are in use (turns on the registry's complex gate)."""
    global _complex_used
    if not _complex_used:
        _complex_used = True
        for fn in _complex_listeners:
            fn()

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
FLOAT_DTYPES = (float16, bfloat16, float32, float64)
INT_DTYPES = (uint8, int8, int16, int32, int64)

_BY_NAME = {d.name: d for d in ALL_DTYPES + COMPLEX_DTYPES}
_BY_NAME.update(half=float16, float=float32, double=float64, long=int64, int=int32,
                short=int16, bool=bool_, cfloat=complex64, cdouble=complex128)
_BY_NP = {d.np: d for d in ALL_DTYPES + COMPLEX_DTYPES}


def from_name(name: str) -> DType:
    """The dtype called ``name`` (``"float32"``, ``"half"``, ``"long"``, ...)."""
    try:
        dt = _BY_NAME[name]
    except KeyError:
        raise DTypeError(f"unknown dtype name {name!r}") from None
    return dt


def from_numpy(np_dtype) -> DType:
    """The dtype matching a NumPy dtype; raises DTypeError for unsupported ones."""
    try:
        dt = _BY_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise DTypeError(f"NumPy dtype {np_dtype} is not supported; supported: "
                         f"{', '.join(d.name for d in ALL_DTYPES + COMPLEX_DTYPES)}") from None
    if dt.category == COMPLEX:
        mark_complex_used()
    return dt


def to_dtype(value) -> DType:
    """Coerce a DType, a name, a NumPy dtype or a Python type to a DType."""
    if isinstance(value, DType):
        if value.category == COMPLEX:
            mark_complex_used()
        return value
    if isinstance(value, str):
        dt = from_name(value)
        if dt.category == COMPLEX:
            mark_complex_used()
        return dt
    if value is float:  # as PyTorch: dtype=float is double, whatever the default dtype
        return float64
    if value is int:
        return int64
    if value is bool:
        return bool_
    if value is complex:  # as PyTorch: dtype=complex is complex128
        mark_complex_used()
        return complex128
    if getattr(value, "is_quantized", False):  # fw.qint8 & co. (framework/ao/qtypes.py)
        raise DTypeError(value.tensor_dtype_error())
    return from_numpy(value)


_default_float = [float32]


def get_default_dtype() -> DType:
    """The dtype of Python floats turned into tensors (float32 unless changed)."""
    return _default_float[0]


def set_default_dtype(dtype) -> None:
    """Set the default floating dtype (one of float16, bfloat16, float32, float64)."""
    dtype = to_dtype(dtype)
    if not dtype.is_floating_point:
        raise DTypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype.name}")
    _default_float[0] = dtype


# Ranks inside a category, for promotion. Ints follow PyTorch's lattice (uint8 with a
# signed type widens to the next signed type that holds both).
_INT_RANK = {int8: 1, int16: 2, int32: 3, int64: 4}
_SIGNED_BY_RANK = {1: int8, 2: int16, 3: int32, 4: int64}


def _promote_pair(a: DType, b: DType) -> DType:
    if a is b:
        return a
    if a.category == COMPLEX or b.category == COMPLEX:
        mark_complex_used()
        if a.category != COMPLEX:
            a, b = b, a
        if b.category == COMPLEX:
            return a if a.itemsize > b.itemsize else b
        # a complex with a real: complex128 when the real part needs float64
        return complex128 if a is complex128 or b is float64 else complex64
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == FLOAT:
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.itemsize > b.itemsize else b
    if a.category == INT:
        if a is uint8:
            a, b = b, a
        if b is uint8:  # a is signed here
            return _SIGNED_BY_RANK[max(_INT_RANK[a], 2)]
        return a if _INT_RANK[a] > _INT_RANK[b] else b
    return a


_PROMOTE_CACHE: dict[tuple[DType, DType], DType] = {}


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both ``a`` and ``b`` convert to safely (torch.promote_types)."""
    key = (a, b)
    r = _PROMOTE_CACHE.get(key)
    if r is None:
        r = _PROMOTE_CACHE[key] = _promote_pair(a, b)
    return r


def scalar_dtype(value) -> DType:
    """The dtype a Python scalar would get as a tensor of its own."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, complex):
        return default_complex_dtype()
    return get_default_dtype()


def default_complex_dtype() -> DType:
    """The dtype of Python complex numbers turned into tensors: the complex counterpart of
    the default float dtype (complex64 unless the default is float64)."""
    mark_complex_used()
    return complex128 if _default_float[0] is float64 else complex64


def _combine_categories(higher: DType | None, lower: DType | None) -> DType | None:
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.category == COMPLEX:
        return higher
    if lower.category == COMPLEX:  # PyTorch: keep the value type of a floating higher
        return higher.to_complex() if higher.category == FLOAT and \
            higher in _TO_COMPLEX else lower
    if higher.category == FLOAT:
        return higher
    if higher is bool_ or lower.category == FLOAT:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> DType:
    """PyTorch's result type of an op over tensors and Python scalars.

    Tensors with dimensions outrank 0-d tensors, which outrank Python scalars, unless a
    lower-priority operand is of a higher category (e.g. an int tensor times 2.5 is float).
    """
    dim = zero = wrapped = None
    for x in operands:
        dt = getattr(x, "dtype", None)
        if isinstance(dt, DType):
            if x.ndim:
                dim = dt if dim is None else promote_types(dim, dt)
            else:
                zero = dt if zero is None else promote_types(zero, dt)
        elif isinstance(x, (bool, int, float, complex)):
            d = scalar_dtype(x)
            wrapped = d if wrapped is None else promote_types(wrapped, d)
        elif isinstance(x, DType):
            dim = x if dim is None else promote_types(dim, x)
        elif type(x).__module__.startswith("sympy"):  # a traced dynamic size: an int
            d = int64 if getattr(x, "is_integer", False) else get_default_dtype()
            wrapped = d if wrapped is None else promote_types(wrapped, d)
        else:
            raise DTypeError(f"result_type: unsupported operand of type {type(x).__name__}")
    return _combine_categories(dim, _combine_categories(zero, wrapped))


def can_cast(from_: DType, to: DType) -> bool:
    """PyTorch's ``can_cast``: no float to int and no to-bool narrowing of categories."""
    return from_.category <= to.category
