"""The Triton ops handler: how each elementwise op renders as Triton source text.

Values are computed in a *compute dtype* (fp16/bf16 in fp32, everything else in its own
dtype) and rounded to the storage dtype on store. Everything here must run in Triton's
interpreter too, so there is no libdevice: tanh, expm1, log1p, atan2, pow and round are
written with interpreter-safe primitives.
"""

from __future__ import annotations

from framework import dtypes

TL_TYPES = {
    "bool": "tl.int1", "uint8": "tl.uint8", "int8": "tl.int8", "int16": "tl.int16",
    "int32": "tl.int32", "int64": "tl.int64", "float16": "tl.float16",
    "bfloat16": "tl.bfloat16", "float32": "tl.float32", "float64": "tl.float64",
}


def tl_type(dtype) -> str:
    """The ``tl.*`` type of a framework dtype."""
    return TL_TYPES[dtype.name]


def compute_dtype(dtype):
    """The dtype arithmetic happens in: fp32 for fp16/bf16, the dtype itself otherwise."""
    if dtype is dtypes.float16 or dtype is dtypes.bfloat16:
        return dtypes.float32
    return dtype


def is_float(dtype) -> bool:
    """True for floating dtypes."""
    return dtype.category == dtypes.FLOAT


def _lit(value, dtype) -> str:
    return f"tl.full([], {float(value)!r}, {tl_type(dtype)})" if is_float(dtype) else \
        f"tl.full([], {int(value)}, {tl_type(dtype)})"


# -- unary ---------------------------------------------------------------------------------
def _expm1(x, c):
    # Kahan: exp(x) - 1 computed as (u - 1) * x / log(u), exact where u rounds to 1
    u = f"tl.exp({x})"
    return (f"tl.where({u} == 1.0, {x}, tl.where(({u} - 1.0 == -1.0) | ({u} == float('inf')), "
            f"{u} - 1.0, ({u} - 1.0) * {x} / tl.log({u})))")


def _log1p(x, c):
    u = f"(1.0 + {x})"
    return (f"tl.where({u} == 1.0, {x}, tl.where({u} == float('inf'), {u}, "
            f"tl.log({u}) * {x} / ({u} - 1.0)))")


def _tanh(x, c):
    # tanh(|x|) = -expm1(-2|x|) / (2 + expm1(-2|x|)); no tl tanh in the interpreter
    e = _expm1(f"(-2.0 * tl.abs({x}))", c)
    return f"tl.where({x} < 0, 1.0, -1.0) * ({e}) / (2.0 + {e})"


def _sigmoid(x, c):
    # PyTorch's formula: exp(-x) overflows to inf for x < -88 (fp32) and 1 / inf is 0
    return f"1.0 / (1.0 + tl.exp(-({x})))"


def _round(x, c):
    big = 4503599627370496.0 if c is dtypes.float64 else 8388608.0
    r = f"tl.floor({x} + 0.5)"
    odd = f"({r} - 2.0 * tl.floor({r} * 0.5) != 0.0)"
    even = f"tl.where(({r} - {x} == 0.5) & {odd}, {r} - 1.0, {r})"
    return f"tl.where(tl.abs({x}) >= {big}, {x}, {even})"


def _sign(x, c):
    if c is dtypes.bool_:
        return x
    s = f"({x} > 0).to({tl_type(c)}) - ({x} < 0).to({tl_type(c)})"
    return f"tl.where({x} != {x}, {x}, {s})" if is_float(c) else s


def _float_or_same(expr_float):
    def render(x, c):
        return expr_float(x, c) if is_float(c) else x
    return render


UNARY = {
    "neg": lambda x, c: f"(-{x})",
    "exp": lambda x, c: f"tl.exp({x})",
    "exp2": lambda x, c: f"tl.exp2({x})",
    "log": lambda x, c: f"tl.log({x})",
    "log2": lambda x, c: f"tl.log2({x})",
    "log1p": _log1p,
    "expm1": _expm1,
    "sqrt": lambda x, c: f"tl.sqrt({x})",
    "rsqrt": lambda x, c: f"(1.0 / tl.sqrt({x}))",
    "sin": lambda x, c: f"tl.sin({x})",
    "cos": lambda x, c: f"tl.cos({x})",
    "tan": lambda x, c: f"(tl.sin({x}) / tl.cos({x}))",
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x, c: f"tl.where({x} < 0, 0, {x})",
    "abs": lambda x, c: x if c is dtypes.bool_ else f"tl.abs({x})",
    "sign": _sign,
    "reciprocal": lambda x, c: f"(1.0 / {x})",
    "floor": _float_or_same(lambda x, c: f"tl.floor({x})"),
    "ceil": _float_or_same(lambda x, c: f"tl.ceil({x})"),
    "round": _float_or_same(_round),
    "trunc": _float_or_same(lambda x, c: f"tl.where({x} < 0, tl.ceil({x}), tl.floor({x}))"),
    "erf": lambda x, c: f"tl.math.erf({x})",
    "bitwise_not": lambda x, c: f"(~{x})",
    "isnan": lambda x, c: f"({x} != {x})" if is_float(c) else f"({x} != {x})",
    "isinf": lambda x, c: f"(tl.abs({x}) == float('inf'))",
    "isfinite": lambda x, c: f"(tl.abs({x}) < float('inf'))",
    "logical_not": lambda x, c: f"({x} == 0)",
}


# -- special functions: backends/special_math.py's algorithms rendered as @triton.jit helpers
def _kit_bin(op):
    return lambda self, a, b: self._emit(f"{self._v(a)} {op} {self._v(b)}")


def _kit_fn(fn):
    return lambda self, a: self._emit(f"{fn}({self._v(a)})")


class _TritonKit:
    """special_math's kit emitting one Triton statement per operation (constants in the
    argument's dtype, so fp64 kernels keep fp64 coefficients); ``loop`` is a ``for`` loop
    whose carried values start as blocks (``_z + init``: a loop-carried variable must keep
    its type in compiled Triton)."""

    def __init__(self):
        self.lines: list[str] = []
        self.depth = 1
        self.count = 0

    def _v(self, a):
        if isinstance(a, str):
            return a
        text = repr(float(a)) if a == a and abs(a) != float("inf") else f"float('{a}')"
        return f"tl.full([], {text}, x.dtype)"

    def _emit(self, expr):
        name = f"v{self.count}"
        self.count += 1
        self._line(f"{name} = {expr}")
        return name

    def _line(self, text):
        self.lines.append("    " * self.depth + text)

    def trips(self, v, cap):
        """A data-dependent trip count: ``min(max(v), cap)`` over the block (int32)."""
        return self._emit(f"tl.max(tl.minimum({v}, {self._v(cap)}), axis=None).to(tl.int32)")

    def loop(self, n, body, *carry):
        names = [self._emit(f"_z + {self._v(c)}") for c in carry]
        self._line(f"for _ in range({n if isinstance(n, str) else int(n)}):")
        self.depth += 1
        for name, value in zip(names, body(*names)):
            if value != name:
                self._line(f"{name} = {self._v(value)}")
        self.depth -= 1
        return tuple(names)


    add, sub, mul, div = _kit_bin("+"), _kit_bin("-"), _kit_bin("*"), _kit_bin("/")
    lt, le, eq = _kit_bin("<"), _kit_bin("<="), _kit_bin("==")
    and_, or_ = _kit_bin("&"), _kit_bin("|")
    exp, log, sqrt = _kit_fn("tl.exp"), _kit_fn("tl.log"), _kit_fn("tl.sqrt")
    sin, cos = _kit_fn("tl.sin"), _kit_fn("tl.cos")
    floor, abs = _kit_fn("tl.floor"), _kit_fn("tl.abs")

    def neg(self, a):
        return self._emit(f"-{self._v(a)}")

    def where(self, c, a, b):
        return self._emit(f"tl.where({c}, {self._v(a)}, {self._v(b)})")


def _special_helper(name: str, fn=None, binary: bool = False) -> str:
    """The ``@triton.jit`` helper ``_fw_<name>`` rendered from a special_math-style
    algorithm; binary helpers broadcast their operands to one block first. The helpers in
    ``special_gamma.FLOAT64_COMPUTE`` compute in float64 whatever the operand dtype (their
    float32 results then match the CPU kernels, which compute in float64, to rounding);
    the caller casts the result to its compute dtype."""
    from framework.backends import special_math
    from framework.backends.special_gamma import FLOAT64_COMPUTE
    kit = _TritonKit()
    fn = fn or getattr(special_math, name)
    wide = ".to(tl.float64)" if name in FLOAT64_COMPUTE else ""
    if binary:
        kit._line("_z = tl.zeros_like(a + x)")
        kit._line(f"a = (a + _z){wide}")
        kit._line(f"x = (x + _z){wide}")
        out = fn(kit, "a", "x")
    else:
        if wide:
            kit._line(f"x = x{wide}")
        out = fn(kit, "x")
    body = "\n".join(kit.lines)
    args = "a, x" if binary else "x"
    return f"\n@triton.jit\ndef _fw_{name}({args}):\n{body}\n    return {out}\n"


def _special_tables():
    from framework.backends import special_bessel, special_bessel_more, special_gamma, special_poly
    unary = {n: None for n in ("lgamma", "digamma", "erfinv", "erfc", "i0", "i0e", "i1", "i1e")}
    unary.update(erfcx=special_gamma.erfcx, bessel_j0=special_bessel.bessel_j0,
                 bessel_j1=special_bessel.bessel_j1, airy_ai=special_bessel.airy_ai,
                 spherical_bessel_j0=special_bessel.spherical_bessel_j0)
    unary.update(special_bessel_more.UNARY)
    binary = {"igamma": special_gamma.gammainc, "igammac": special_gamma.gammaincc,
              "zeta": special_gamma.zeta, **special_poly.BINARY}
    return unary, binary


_SPECIAL, _SPECIAL2 = _special_tables()
# Elements a thread for kernels calling the new special-function helpers (the default is
# four; triton_launch.TritonKernel.geometry takes the smallest a kernel's helpers ask for).
# Their float64 code keeps many values live, and ptxas picks a register target (80 or 128)
# and spills rather than exceed it: the sm_80/sm_90 resource gate passes with these. The
# looping helpers compute in float64 always, the others ask only on float64 data (a fused
# float64 abs + add + digamma spilled 8 bytes on sm_90 at four).
HELPER_ELEMENTS = {"_fw_igamma": 2, "_fw_igammac": 1, "_fw_zeta": 2}
HELPER_ELEMENTS_F64 = {f"_fw_{n}": 2 for n in _SPECIAL}
# the orthogonal polynomials (a data-dependent loop next to the trigonometric forms) spilled
# at four elements a thread in float32, and at two in float64 (2-d strided operands)
HELPER_ELEMENTS.update({f"_fw_{n}": 1 for n in _SPECIAL2 if "polynomial" in n})
# Bessel Y (two Chebyshev series on (0, 8] and Hankel's two beyond): a fused float32 Y0
# spilled 8 bytes on sm_90 at four
HELPER_ELEMENTS.update({"_fw_bessel_y0": 2, "_fw_bessel_y1": 2})
for _name in _SPECIAL:
    UNARY[_name] = (lambda n: lambda x, c: f"_fw_{n}({x})")(_name)


# -- binary --------------------------------------------------------------------------------
def _maxmin(op):
    def render(a, b, c):
        if is_float(c):  # NaN-propagating, as torch.maximum
            return f"tl.where(({a} {op} {b}) | ({a} != {a}), {a}, {b})"
        return f"tl.where({a} {op} {b}, {a}, {b})"
    return render


def _remainder(a, b, c):
    if is_float(c):
        r = f"({a} % {b})"
        return f"tl.where(({r} != 0) & (({r} < 0) != ({b} < 0)), {r} + {b}, {r})"
    r = f"({a} % tl.where({b} == 0, 1, {b}))"
    return f"tl.where({b} == 0, 0, tl.where(({r} != 0) & (({r} < 0) != ({b} < 0)), {r} + {b}, {r}))"


def _fmod(a, b, c):
    if is_float(c):
        return f"({a} % {b})"
    return f"tl.where({b} == 0, 0, {a} % tl.where({b} == 0, 1, {b}))"


def _floor_divide(a, b, c):
    if is_float(c):
        return f"_floordiv_f({a}, {b})"
    safe = f"tl.where({b} == 0, 1, {b})"
    q = f"({a} // {safe})"
    fix = f"(({a} % {safe} != 0) & (({a} < 0) != ({b} < 0)))"
    return f"tl.where({b} == 0, 0, tl.where({fix}, {q} - 1, {q}))"


def _pow(a, b, c):
    if not is_float(c):
        return f"_int_pow({a}, {b})"
    return f"_float_pow({a}, {b})"


def _atan2(a, b, c):
    return f"_atan2({a}, {b})"


BINARY = {
    "add": lambda a, b, c: f"({a} | {b})" if c is dtypes.bool_ else f"({a} + {b})",
    "sub": lambda a, b, c: f"({a} - {b})",
    "mul": lambda a, b, c: f"({a} & {b})" if c is dtypes.bool_ else f"({a} * {b})",
    "div": lambda a, b, c: f"({a} / {b})",
    "pow": _pow,
    "maximum": _maxmin(">"),
    "minimum": _maxmin("<"),
    "atan2": _atan2,
    "remainder": _remainder,
    "floor_divide": _floor_divide,
    "fmod": _fmod,
    "bitwise_and": lambda a, b, c: f"({a} & {b})",
    "bitwise_or": lambda a, b, c: f"({a} | {b})",
    "bitwise_xor": lambda a, b, c: f"({a} ^ {b})",
    "eq": lambda a, b, c: f"({a} == {b})",
    "ne": lambda a, b, c: f"({a} != {b})",
    "lt": lambda a, b, c: f"({a} < {b})",
    "le": lambda a, b, c: f"({a} <= {b})",
    "gt": lambda a, b, c: f"({a} > {b})",
    "ge": lambda a, b, c: f"({a} >= {b})",
    "logical_and": lambda a, b, c: f"(({a} != 0) & ({b} != 0))",
    "logical_or": lambda a, b, c: f"(({a} != 0) | ({b} != 0))",
    "logical_xor": lambda a, b, c: f"(({a} != 0) ^ ({b} != 0))",
}
for _name in _SPECIAL2:  # igamma, igammac, zeta: _fw_<name>(a, x)
    BINARY[_name] = (lambda n: lambda a, b, c: f"_fw_{n}({a}, {b})")(_name)

# Ops whose result is bool whatever the operand dtype.
PREDICATES = frozenset({"isnan", "isinf", "isfinite", "logical_not", "eq", "ne", "lt", "le",
                        "gt", "ge", "logical_and", "logical_or", "logical_xor"})


def cast(x: str, src, dst) -> str:
    """Convert a value computed in ``compute_dtype(src)`` to ``compute_dtype(dst)``."""
    cs, cd = compute_dtype(src), compute_dtype(dst)
    if dst is dtypes.bool_:
        return f"({x} != 0)"
    if src is not cs and dst is not cd and src is not dst:
        # fp16 <-> bf16 goes through the storage type so the value is rounded like a store
        return f"{x}.to({tl_type(dst)}).to({tl_type(cd)})"
    if src is cs and dst is not cd and is_float(src):  # e.g. f32 -> f16: round now
        via = ".to(tl.float32)" if src is dtypes.float64 else ""  # (interpreter f64->bf16)
        return f"{x}{via}.to({tl_type(dst)}).to({tl_type(cd)})"
    if cs is cd:
        return x
    return f"{x}.to({tl_type(cd)})"


# Helper @triton.jit functions included in every generated module that uses them.
HELPERS = {
    "_int_pow": '''
@triton.jit
def _int_pow(a, b):
    # Broadcast everything to the common shape first: a loop-carried variable must keep its
    # type, which a scalar base and a block exponent would change (the interpreter allows it,
    # the compiler does not).
    result = a * 0 + b * 0 + 1
    base = a + b * 0
    e = b + a * 0
    for _ in range(0, 63):
        result = tl.where((e & 1) != 0, result * base, result)
        base = base * base
        e = e >> 1
    return tl.where(b < 0, tl.where(a == 1, 1, tl.where(a == -1, tl.where((b & 1) != 0, -1, 1), 0)),
                    result)
''',
    "_float_pow": '''
@triton.jit
def _float_pow(a, b):
    mag = tl.exp2(b * tl.log2(tl.abs(a)))
    b_int = tl.floor(b) == b
    b_odd = b_int & (tl.floor(b * 0.5) * 2.0 != b)
    neg = tl.where(b_odd, -mag, mag)
    r = tl.where(a < 0, tl.where(b_int, neg, float('nan')), mag)
    r = tl.where(b == 0, 1.0, r)
    return tl.where(a == 1, 1.0, r)
''',
    "_atan2": '''
@triton.jit
def _atan(x):
    # Cephes atanf: range reduction + minimax polynomial (fp32 accuracy)
    ax = tl.abs(x)
    big = ax > 2.414213562373095
    mid = (ax > 0.4142135623730950) & (~big)
    t = tl.where(big, -1.0 / tl.where(big, ax, 1.0), tl.where(mid, (ax - 1.0) / (ax + 1.0), ax))
    base = tl.where(big, 1.5707963267948966, tl.where(mid, 0.7853981633974483, 0.0))
    z = t * t
    p = ((((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
          - 3.33329491539e-1) * z * t + t)
    r = base + p
    # one Newton step on tan(r) = |x| brings fp32-accurate r to fp64 accuracy
    cr = tl.cos(r)
    r = r - (tl.sin(r) - ax * cr) * cr
    r = tl.where(ax == float('inf'), tl.full([1], 1.5707963267948966, r.dtype), r)
    return tl.where(x < 0, -r, r)


@triton.jit
def _atan2(y, x):
    safe_x = tl.where(x == 0, 1.0, x)
    a = _atan(y / safe_x)
    pi = tl.full([1], 3.141592653589793, a.dtype)  # a bare literal would be fp32
    neg_y = (y < 0) | ((y == 0) & (1.0 / tl.where(y == 0, y, 1.0) < 0))
    r = tl.where(x > 0, a, tl.where(neg_y, a - pi, a + pi))
    r = tl.where(x == 0, tl.where(y > 0, pi / 2, tl.where(y < 0, -pi / 2, 0.0)), r)
    neg_x = 1.0 / tl.where(x == 0, x, 1.0) < 0  # x is -0.0
    neg_y = 1.0 / tl.where(y == 0, y, 1.0) < 0
    return tl.where((x == 0) & (y == 0), tl.where(neg_x, tl.where(neg_y, -pi, pi), y), r)
''',
    "_floordiv_f": '''
@triton.jit
def _floordiv_f(a, b):
    # NumPy's npy_floor_divide: through fmod, so inf // x is nan and x // inf is 0 or -1
    mod = a % b
    div = (a - mod) / b
    div = tl.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1.0, div)
    fl = tl.floor(div)
    fl = tl.where(div - fl > 0.5, fl + 1.0, fl)
    res = tl.where(div != 0, fl, (a / b) * 0.0)
    return tl.where(b == 0, a / b, res)
''',
    "_max_nan": '''
@triton.jit
def _max_nan(a, b):
    return tl.where((a > b) | (a != a), a, b)
''',
    "_min_nan": '''
@triton.jit
def _min_nan(a, b):
    return tl.where((a < b) | (a != a), a, b)
''',
    "_mul": '''
@triton.jit
def _mul(a, b):
    return a * b
''',
    "_argmax": '''
@triton.jit
def _argmax(v1, i1, v2, i2):
    gt = (v2 > v1) | ((v2 != v2) & (v1 == v1))
    eq = (v2 == v1) | ((v2 != v2) & (v1 != v1))
    take = gt | (eq & (i2 < i1))
    return tl.where(take, v2, v1), tl.where(take, i2, i1)
''',
    "_argmin": '''
@triton.jit
def _argmin(v1, i1, v2, i2):
    lt = (v2 < v1) | ((v2 != v2) & (v1 == v1))
    eq = (v2 == v1) | ((v2 != v2) & (v1 != v1))
    take = lt | (eq & (i2 < i1))
    return tl.where(take, v2, v1), tl.where(take, i2, i1)
''',
}


HELPERS.update({f"_fw_{n}": _special_helper(n, fn) for n, fn in _SPECIAL.items()})
HELPERS.update({f"_fw_{n}": _special_helper(n, fn, True) for n, fn in _SPECIAL2.items()})


def helpers_used(source: str) -> list[str]:
    """Names of the helper functions a kernel body calls."""
    import re
    return [name for name in HELPERS if re.search(rf"\b{name}\b", source)]


__all__ = ["TL_TYPES", "tl_type", "compute_dtype", "UNARY", "BINARY", "PREDICATES", "cast",
           "HELPERS", "HELPER_ELEMENTS", "HELPER_ELEMENTS_F64", "helpers_used", "is_float"]
