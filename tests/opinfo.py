"""The op database: one :class:`OpInfo` record per op, reusable by every test suite.

A record says how to call an op (``fn``), which inputs to try (``samples(dtype)`` returns
:class:`Sample` objects whose arrays are NumPy arrays) and what the answer is
(``ref``, the same call written with NumPy). Parametrized tests in
``tests/test_ops_opinfo.py`` check forward values per dtype, gradients with
``fw.autograd.gradcheck`` (float64 finite differences), and that every op registered in
``framework.ops.registry.OPS`` has a record.

Reuse from other suites (compiler, ONNX, GPU)::

    from tests.opinfo import OP_DB, to_fw, to_np
    for info in OP_DB:
        for s in info.samples(fw.float32):
            out = info.fn(*to_fw(s.args), **s.kwargs)

Adding records: put them in a module ``tests/opinfo_<area>.py`` that calls
``register_opinfo(OpInfo(...))``; every such module is imported when this one is. An op
that cannot have a record (random sampling, device transfer) goes in ``EXCLUDED`` with the
test file that covers it.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from pathlib import Path
from typing import Callable

import numpy as np

import framework as fw

FLOATS = (fw.float32, fw.float64, fw.float16, fw.bfloat16)
FLOAT_INT = FLOATS + (fw.int64,)
NUMERIC = FLOAT_INT + (fw.int32,)
ALL = NUMERIC + (fw.bool,)
INTS = (fw.int64, fw.int32, fw.uint8)
INT_BOOL = INTS + (fw.bool,)

# Forward tolerances (atol, rtol) per dtype; the NumPy reference runs in float64.
TOLS = {fw.float64: (1e-10, 1e-9), fw.float32: (1e-5, 1e-5), fw.float16: (2e-2, 1e-2),
        fw.bfloat16: (1e-1, 3e-2)}


@dataclasses.dataclass
class Sample:
    """One call: positional ``args`` (NumPy arrays become tensors) and ``kwargs``."""

    args: tuple
    kwargs: dict = dataclasses.field(default_factory=dict)
    name: str = ""
    grad: bool = True  # usable for gradcheck (no kinks, NaN or Inf near the values)

    def __repr__(self) -> str:
        shapes = [getattr(a, "shape", a) for a in self.args]
        return f"Sample({self.name or shapes}, {self.kwargs})"


@dataclasses.dataclass
class OpInfo:
    """One op: how to call it, sample inputs, and a NumPy reference.

    name:   unique record name (the public function, method or operator it tests)
    fn:     the framework call; receives tensors where the sample has arrays
    ref:    the same call on NumPy arrays (float inputs upcast to float64) -> array or tuple
    samples: samples(dtype) -> list[Sample]
    dtypes: dtypes the forward test runs (and checks) for
    differentiable: run gradcheck in float64 on the samples marked ``grad``
    op:     the registered op this record is about (for the coverage test), if any
    out_dtype: expected result dtype for an input dtype (default: same as input; bool when
            the reference returns bool)
    inplace: fn modifies and returns its first argument
    tols:   per-dtype (atol, rtol) overrides
    """

    name: str
    fn: Callable
    ref: Callable
    samples: Callable
    dtypes: tuple = FLOAT_INT
    differentiable: bool = True
    op: str | None = None
    out_dtype: Callable | None = None
    inplace: bool = False
    tols: dict = dataclasses.field(default_factory=dict)

    def tol(self, dtype):
        """(atol, rtol) for ``dtype``."""
        return self.tols.get(dtype, TOLS.get(dtype, (0, 0)))

    def __repr__(self) -> str:
        return f"OpInfo({self.name})"


OP_DB: list[OpInfo] = []

# Registered ops that are covered elsewhere (and why they have no record here).
EXCLUDED = {
    "uniform": "random sampling; tests/test_tensor_creation.py (seeding, range, moments)",
    "normal": "random sampling; tests/test_tensor_creation.py (seeding, moments)",
    **{n: "random sampling; tests/compiler/test_compiled_randint_randperm.py (range, "
              "uniformity, re-drawn under fw.compile, ONNX, simulated cuda)"
       for n in ("randint", "randperm")},
    "to_device": "device transfer; tests/test_tensor.py (cpu/meta) and the CUDA suite",
    **{n: "complex numbers (the record sweeps are real-dtype); tests/test_complex.py "
              "(values vs NumPy, views, finite-difference gradients)"
       for n in ("real", "imag", "view_as_real", "view_as_complex", "conj", "complex_angle",
                 "complex")},
    **{n: "the fw.fft primitives (complex results); tests/test_fft.py (values vs numpy.fft "
              "for every norm, n/s/dim, finite-difference gradients)"
       for n in ("fft_c2c", "fft_r2c", "fft_c2r")},
    "linalg_eig": "complex results; tests/test_linalg_eig.py (A V = V diag(L), norms, "
                  "batches, finite-difference gradients of eigenvalues and |V|)",
    "detach": "a stop-gradient recorded by traces; tests/compiler/test_func.py (fw.grad stops "
              "at detach) and the compile/ONNX suites (every traced detach passes through)",
    **{n: "higher-order op (subgraph attributes); tests/test_control_flow.py, "
          "tests/compiler/test_cond_compile.py, tests/onnx/test_onnx_cond.py, "
          "tests/gpu/test_gpu_cond.py" for n in ("cond", "while_loop")},
}


def register_opinfo(*infos: OpInfo) -> None:
    """Add records to ``OP_DB`` (names must be unique)."""
    known = {i.name for i in OP_DB}
    for info in infos:
        if info.name in known:
            raise ValueError(f"duplicate OpInfo name {info.name!r}")
        known.add(info.name)
        OP_DB.append(info)


def get_opinfo(name: str) -> OpInfo:
    """The record called ``name``."""
    for info in OP_DB:
        if info.name == name:
            return info
    raise KeyError(name)


# ---------------------------------------------------------------------------------------
# sample helpers
def rng(seed: int = 0) -> np.random.Generator:
    """A fresh seeded NumPy generator (samples are deterministic)."""
    return np.random.default_rng(seed)


def make(shape, dtype, gen=None, *, low=-2.0, high=2.0, positive=False, away=0.25):
    """A NumPy array of ``dtype``: floats in ``[low, high]`` kept ``away`` from 0 (kinks),
    ints in ``[-5, 5]`` (``[1, 5]`` if positive), random bools."""
    gen = gen if gen is not None else rng()
    npdt = dtype.np
    if dtype is fw.bool:
        return np.asarray(gen.random(shape) < 0.5)
    if not dtype.is_floating_point:
        lo = 1 if positive or not dtype.is_signed else -5
        vals = gen.integers(lo, 6, size=shape)
        if not positive and dtype.is_signed:
            vals[vals == 0] = 3
        return vals.astype(npdt)
    if positive:
        low = max(low, away)
    vals = gen.uniform(low, high, size=shape)
    if away:
        small = np.abs(vals) < away
        vals[small] = np.where(vals[small] < 0, -1, 1) * (away + np.abs(vals[small]))
    return vals.astype(npdt)


def noncontig(a: np.ndarray) -> np.ndarray:
    """Same values, as a view with a step of 2 in the last dim (non-contiguous)."""
    if a.ndim == 0 or a.size == 0:
        return a
    buf = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    buf[..., ::2] = a
    return buf[..., ::2]


def transposed(a: np.ndarray) -> np.ndarray:
    """Same values, laid out column-major (a transposed view)."""
    return np.ascontiguousarray(a.T).T


def special(dtype) -> np.ndarray:
    """IEEE special values (NaN, +-Inf, +-0) next to ordinary ones."""
    return np.array([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.5, -0.75], dtype.np)


def unary_samples(dtype, *, positive=False, low=-2.0, high=2.0, ieee=True):
    """Standard unary inputs: 0-d, 1-d, 2-d, transposed, non-contiguous, zero-size."""
    g = rng(1)
    kw = dict(positive=positive, low=low, high=high)
    out = [Sample((make((), dtype, g, **kw),), name="0d"),
           Sample((make((5,), dtype, g, **kw),), name="1d"),
           Sample((transposed(make((3, 4), dtype, g, **kw)),), name="T"),
           Sample((noncontig(make((2, 3), dtype, g, **kw)),), name="strided"),
           Sample((make((0, 3), dtype, g, **kw),), name="empty")]
    if ieee and dtype.is_floating_point:
        out.append(Sample((special(dtype),), name="ieee", grad=False))
    return out


def binary_samples(dtype, *, rhs_positive=False, lhs_positive=False, scalars=True,
                   ieee=True, low=-2.0, high=2.0):
    """Standard binary inputs: same shape, broadcasting both ways, 0-d, non-contiguous,
    zero-size, Python scalars on either side."""
    g = rng(2)

    def a(shape):
        return make(shape, dtype, g, positive=lhs_positive, low=low, high=high)

    def b(shape):
        return make(shape, dtype, g, positive=rhs_positive, low=low, high=high)

    out = [Sample((a((3, 4)), b((3, 4))), name="same"),
           Sample((a((3, 1)), b((1, 4))), name="bcast-both"),
           Sample((a((2, 3, 4)), b((4,))), name="bcast-rank"),
           Sample((a(()), b((3,))), name="0d-lhs"),
           Sample((transposed(a((3, 4))), noncontig(b((3, 4)))), name="noncontig"),
           Sample((a((0, 3)), b((3,))), name="empty")]
    if scalars:
        if dtype.is_floating_point:
            sb = 1.5 if rhs_positive else -1.5
            sa = 1.25 if lhs_positive else -1.25
        else:
            sb, sa = (2, 3) if dtype is not fw.bool else (True, False)
        out += [Sample((a((2, 3)), sb), name="scalar-rhs"),
                Sample((sa, b((2, 3))), name="scalar-lhs")]
    if ieee and dtype.is_floating_point:
        s = special(dtype)
        out.append(Sample((s, s[::-1].copy()), name="ieee", grad=False))
    return out


# ---------------------------------------------------------------------------------------
# conversion
def _map(fn, x):
    if isinstance(x, np.ndarray):
        return fn(x)
    if isinstance(x, list):
        return [_map(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(_map(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return x


def to_fw(args, requires_grad: bool = False):
    """NumPy arrays (possibly nested in lists/tuples/dicts) -> framework tensors that keep
    their strides (non-contiguous samples stay non-contiguous). With ``requires_grad``,
    floating tensors become leaves requiring grad."""
    def conv(a):
        t = fw.from_numpy(np.array(a, copy=True, order="K") if a.flags.c_contiguous or
                          a.flags.f_contiguous else _strided_copy(a))
        if requires_grad and t.dtype.is_floating_point:
            t.requires_grad_(True)
        return t
    return _map(conv, args)


def _strided_copy(a: np.ndarray) -> np.ndarray:
    return noncontig(np.ascontiguousarray(a)) if a.ndim else a.copy()


def to_np(args, upcast: bool = True):
    """Copies of the sample's arrays for the reference (floats upcast to float64)."""
    def conv(a):
        a = np.array(a, copy=True)
        if upcast and (a.dtype.kind == "f" or a.dtype.name == "bfloat16"):
            a = a.astype(np.float64)
        return a
    return _map(conv, args)


def result_arrays(out):
    """A framework result (tensor, tuple of tensors, Python scalar) -> NumPy values."""
    if isinstance(out, fw.Tensor):
        return out.detach().numpy()
    if isinstance(out, (tuple, list)):
        return type(out)(result_arrays(o) for o in out) if not hasattr(out, "_fields") \
            else tuple(result_arrays(o) for o in out)
    return np.asarray(out)


def result_dtypes(out):
    """The dtype(s) of a framework result (None for non-tensors)."""
    if isinstance(out, fw.Tensor):
        return out.dtype
    if isinstance(out, (tuple, list)):
        return tuple(result_dtypes(o) for o in out)
    return None


def float_out(dtype):
    """Result dtype of float-only ops: ints and bools give the default float dtype."""
    return dtype if dtype.is_floating_point else fw.get_default_dtype()


def _load_record_modules() -> None:
    here = Path(__file__).parent
    for mod in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if mod.name.startswith("opinfo_"):
            importlib.import_module(f"{__package__}.{mod.name}" if __package__ else mod.name)


_load_record_modules()
