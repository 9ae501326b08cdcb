"""fw.special: bessel_y0/y1, modified_bessel_i0/i1/k0/k1, scaled_modified_bessel_k0/k1 and
the orthogonal polynomials (Chebyshev T/U/V/W and shifted, Hermite H/He, Laguerre L,
Legendre P). Values against mpmath (float64 and float32), PyTorch's special values and
overflow behaviour, broadcasting and promotion of n, non-differentiability, errors,
compiled == eager, ONNX export."""

import math

import numpy as np
import pytest

import framework as fw
from tests.opinfo_special_more import (ref_bessel_y0, ref_bessel_y1, ref_modified_bessel_i0,
                                       ref_modified_bessel_i1, ref_modified_bessel_k0,
                                       ref_modified_bessel_k1, ref_polynomial,
                                       ref_scaled_modified_bessel_k0,
                                       ref_scaled_modified_bessel_k1)

S = fw.special
inf, nan = math.inf, math.nan
BESSEL = ("bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
          "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0",
          "scaled_modified_bessel_k1")
POLYNOMIALS = ("chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
               "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
               "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
               "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
               "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p")
REFS = {"bessel_y0": ref_bessel_y0, "bessel_y1": ref_bessel_y1,
        "modified_bessel_i0": ref_modified_bessel_i0,
        "modified_bessel_i1": ref_modified_bessel_i1,
        "modified_bessel_k0": ref_modified_bessel_k0,
        "modified_bessel_k1": ref_modified_bessel_k1,
        "scaled_modified_bessel_k0": ref_scaled_modified_bessel_k0,
        "scaled_modified_bessel_k1": ref_scaled_modified_bessel_k1}


def _ref(fn, *arrays):
    return np.array([fn(*(float(v) for v in vals)) for vals in zip(*arrays)])


def _f64(a):
    return fw.tensor(np.asarray(a, np.float64), dtype=fw.float64)


# ---------------------------------------------------------------------------------------
# Bessel
@pytest.mark.parametrize("name", ["bessel_y0", "bessel_y1"])
def test_bessel_second_kind_vs_mpmath(name):
    """Within a few ulps of the envelope max(|Y|, sqrt(2 / (pi x))) (so relative near 0,
    where |Y| grows), and 1e-12 relative away from the zeros."""
    g = np.random.default_rng(20)
    x = np.concatenate([g.uniform(0, 8, 120), g.uniform(8, 60, 80), g.uniform(60, 1e4, 40),
                        10 ** g.uniform(-10, 0, 30), [8.0, 1e-300]])
    got = getattr(S, name)(_f64(x)).numpy()
    want = _ref(REFS[name], x)
    env = np.maximum(np.abs(want), np.minimum(1, np.sqrt(2 / (np.pi * x))))
    assert (np.abs(got - want) / env).max() < 4e-15
    far = np.abs(want) > 1e-3 * env
    assert (np.abs(got - want) / np.abs(want))[far].max() < 1e-12
    x32 = x[::2][x[::2] > 1e-37].astype(np.float32)
    want32 = _ref(REFS[name], x32)
    env32 = np.maximum(np.abs(want32), np.minimum(1, np.sqrt(2 / (np.pi * x32))))
    got32 = getattr(S, name)(fw.tensor(x32)).numpy().astype(np.float64)
    assert (np.abs(got32 - want32) / env32).max() < 1e-7


@pytest.mark.parametrize("name", BESSEL[2:])
def test_modified_bessel_vs_mpmath(name):
    g = np.random.default_rng(21)
    x = np.concatenate([g.uniform(0, 2, 80), g.uniform(2, 8, 60), g.uniform(8, 700, 60),
                        10 ** g.uniform(-12, 0, 30), [2.0, 8.0]])
    if name.startswith("modified_bessel_i"):
        x = np.concatenate([x, -x[::3]])
    got = getattr(S, name)(_f64(x)).numpy()
    want = _ref(REFS[name], x)
    ok = want != 0  # K underflows past x ~ 700
    np.testing.assert_allclose(got[ok], want[ok], rtol=5e-15, atol=0)
    x32 = x[::2][(np.abs(x[::2]) < 85) & (np.abs(x[::2]) > 1e-30)].astype(np.float32)
    want32 = _ref(REFS[name], x32)
    ok = np.abs(want32) > 1e-37
    got32 = getattr(S, name)(fw.tensor(x32)).numpy().astype(np.float64)
    np.testing.assert_allclose(got32[ok], want32[ok], rtol=1.2e-7, atol=0)


def test_bessel_special_values_follow_pytorch():
    x = _f64([0.0, -0.0, -1.0, inf, -inf, nan, 1e-300])
    expect = {
        "bessel_y0": [-inf, -inf, nan, nan, nan, nan, ref_bessel_y0(1e-300)],
        "bessel_y1": [-inf, -inf, nan, nan, nan, nan, -2 / math.pi * 1e300],
        "modified_bessel_i0": [1, 1, ref_modified_bessel_i0(-1.0), nan, nan, nan, 1],
        "modified_bessel_i1": [0, 0, -ref_modified_bessel_i1(1.0), nan, nan, nan, 5e-301],
        "modified_bessel_k0": [inf, inf, nan, 0, nan, nan, ref_modified_bessel_k0(1e-300)],
        "modified_bessel_k1": [inf, inf, nan, 0, nan, nan, 1e300],
        "scaled_modified_bessel_k0": [inf, inf, nan, 0, nan, nan,
                                      ref_modified_bessel_k0(1e-300)],
        "scaled_modified_bessel_k1": [inf, inf, nan, 0, nan, nan, 1e300],
    }
    for name, want in expect.items():
        np.testing.assert_allclose(getattr(S, name)(x).numpy(), want, rtol=1e-15,
                                   err_msg=name)


def test_modified_bessel_i_has_i0_i1_values_and_nan_at_infinity():
    x = _f64(np.concatenate([np.linspace(-40, 40, 161), [7.999, 8.0, 8.001, 709.0]]))
    np.testing.assert_array_equal(S.modified_bessel_i0(x).numpy(), S.i0(x).numpy())
    np.testing.assert_array_equal(S.modified_bessel_i1(x).numpy(), S.i1(x).numpy())
    edge = _f64([inf, -inf, 720.0, -720.0])
    np.testing.assert_array_equal(S.modified_bessel_i0(edge).numpy(), [nan, nan, inf, inf])
    np.testing.assert_array_equal(S.modified_bessel_i1(edge).numpy(), [nan, nan, inf, -inf])
    np.testing.assert_array_equal(S.i0(edge).numpy(), [inf, inf, inf, inf])  # fw's i0


def test_scaled_modified_bessel_k_where_k_underflows():
    x = _f64([0.5, 3.0, 40.0, 700.0, 800.0, 1e5, 1e300])
    for order, (scaled, plain) in enumerate(((S.scaled_modified_bessel_k0,
                                              S.modified_bessel_k0),
                                             (S.scaled_modified_bessel_k1,
                                              S.modified_bessel_k1))):
        ref = (ref_scaled_modified_bessel_k0, ref_scaled_modified_bessel_k1)[order]
        got = scaled(x).numpy()
        np.testing.assert_allclose(got, _ref(ref, x.numpy()), rtol=5e-15)
        assert plain(x).numpy()[-3:].tolist() == [0.0, 0.0, 0.0]  # e^-x underflows
        np.testing.assert_allclose(plain(x).numpy()[:4], got[:4] * np.exp(-x.numpy()[:4]),
                                   rtol=5e-15)


# ---------------------------------------------------------------------------------------
# polynomials
def _mp_polynomial(name, x, n):
    import mpmath as m
    with m.workdps(40):
        x = m.mpf(x)
        if name.startswith("shifted_"):
            name, x = name[len("shifted_"):], 2 * x - 1
        kind = name[-1]
        if name.startswith("chebyshev"):
            if kind == "t":
                return float(m.chebyt(n, x))
            u, u1 = m.chebyu(n, x), (m.chebyu(n - 1, x) if n else 0)
            return float({"u": u, "v": u - u1, "w": u + u1}[kind])
        if name == "hermite_polynomial_h":
            return float(m.hermite(n, x))
        if name == "hermite_polynomial_he":
            return float(m.hermite(n, x / m.sqrt(2)) / m.mpf(2) ** (m.mpf(n) / 2))
        if name == "laguerre_polynomial_l":
            return float(m.laguerre(n, 0, x))
        return float(m.legendre(n, x))


def _envelope(name, x, n):
    """The size of the polynomial around x (its bound on the oscillatory region)."""
    if "chebyshev" in name:
        return {"t": 1.0, "u": n + 1.0, "v": 2 * n + 1.0, "w": 2 * n + 1.0}[name[-1]]
    if name == "hermite_polynomial_h":
        return math.exp(x * x / 2) * math.sqrt(2.0 ** n * math.factorial(n))
    if name == "hermite_polynomial_he":
        return math.exp(x * x / 4) * math.sqrt(math.factorial(n))
    if name == "laguerre_polynomial_l":
        return math.exp(x / 2) if x > 0 else 1.0
    return 1.0


_RANGES = {"hermite_polynomial_h": (-4, 4), "hermite_polynomial_he": (-5, 5),
           "laguerre_polynomial_l": (-2, 20)}
_DEGREES = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 16, 33, 64])


@pytest.mark.parametrize("dtype", [fw.float64, fw.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_vs_mpmath(name, dtype):
    """Degrees up to 64 on and beyond the orthogonality interval: the error is below
    2 n^2 eps times the polynomial's envelope (the condition of the problem near the ends
    of the interval, where the derivative is ~n^2)."""
    g = np.random.default_rng(22)
    lo, hi = _RANGES.get(name, (-0.1, 1.1) if name.startswith("shifted") else (-1.1, 1.1))
    x, n = np.meshgrid(g.uniform(lo, hi, 24).astype(dtype.np), _DEGREES.astype(dtype.np))
    x, n = x.ravel(), n.ravel()
    got = getattr(S, name)(fw.tensor(x), fw.tensor(n)).numpy().astype(np.float64)
    want = np.array([_mp_polynomial(name, float(a), int(b)) for a, b in zip(x, n)])
    ok = np.abs(want) < float(np.finfo(dtype.np).max)
    env = np.maximum(np.abs(want), [_envelope(name, float(a), int(b)) for a, b in zip(x, n)])
    bound = 2 * np.maximum(n, 1) ** 2 * float(np.finfo(dtype.np).eps) * env
    assert np.all(np.abs(got - want)[ok] <= bound[ok]), name
    assert np.all(np.isinf(got[~ok]) | np.isnan(got[~ok]))  # overflowed in float32


@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_special_values_follow_pytorch(name):
    """Every (x, n) pair of a grid of ordinary and IEEE values, degrees that truncate, are
    negative, NaN, infinite or beyond int64, against PyTorch's rules written out element by
    element (tests/opinfo_special_more.ref_polynomial), NaN positions exactly."""
    xs = [-inf, -2.5, -1.0, -0.999, -0.5, -0.0, 0.0, 1e-300, 0.3, 0.5, 0.999, 1.0, 1.0001,
          2.0, inf, nan]
    ns = [-inf, -3.0, -1.0, -0.5, 0.0, 0.7, 1.0, 2.0, 2.9, 4.0, 5.0, 6.0, 7.0, 9.0, 12.0,
          40.0, 300.0, 1e19, inf, nan]
    x, n = (a.ravel() for a in np.meshgrid(xs, ns))
    got = getattr(S, name)(_f64(x), _f64(n)).numpy()
    want = np.array([ref_polynomial(name, a, b) for a, b in zip(x, n)])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    # (next to y = -1 PyTorch's acos(y) loses ~n ulps of pi that fw's forms keep)
    scale = np.maximum(np.abs(want), 2 * np.where(np.isfinite(n), np.abs(n), 0) + 1)
    assert np.all(np.abs(got[fin] - want[fin]) <= 1e-13 * scale[fin])


@pytest.mark.parametrize("name", [n for n in POLYNOMIALS if "chebyshev" in n])
def test_chebyshev_next_to_the_interval_ends_vs_mpmath(name):
    """The trigonometric forms at |y| within a few ulps to 1e-3 of 1 (where PyTorch's
    ``acos(y)`` near pi costs U_129(-1 + 2^-53) 2e-8): the same n^2 eps bound."""
    d = np.concatenate([2.0 ** -np.arange(52, 9, -6), [1e-3]])
    y = np.concatenate([d - 1, 1 - d])
    x = (y + 1) / 2 if name.startswith("shifted") else y
    x, n = (a.ravel() for a in np.meshgrid(x, [9.0, 33.0, 129.0]))
    got = getattr(S, name)(_f64(x), _f64(n)).numpy()
    want = np.array([_mp_polynomial(name, float(a), int(b)) for a, b in zip(x, n)])
    env = np.array([_envelope(name, 0.0, int(b)) for b in n])
    assert np.all(np.abs(got - want) <= 2 * n ** 2 * 2.2e-16 * env), name


def test_polynomial_documented_values():
    T, U, V, W = (S.chebyshev_polynomial_t, S.chebyshev_polynomial_u,
                  S.chebyshev_polynomial_v, S.chebyshev_polynomial_w)
    x = _f64([1.0, -1.0, -1.0, 0.5, nan, nan, inf, inf, -inf, 2.0])
    n = _f64([5, 5, 4, -0.5, 0, 3, 2, 3, 2, 1000])
    # |x| = 1 values, degree -0.5 -> 0, T_0(nan) = 1, T_2(inf) = inf, T_3(inf) = nan, and
    # T_1000(2) overflows: NaN two steps later, as PyTorch's recurrence
    np.testing.assert_array_equal(T(x, n).numpy(), [1, -1, 1, 1, 1, nan, inf, nan, inf, nan])
    np.testing.assert_array_equal(U(_f64([1.0, -1.0]), 4).numpy(), [5, 5])
    np.testing.assert_array_equal(V(_f64([1.0, -1.0, -1.0]), _f64([3, 3, 2])).numpy(),
                                  [1, -7, 5])
    np.testing.assert_array_equal(W(_f64([1.0, -1.0, -1.0]), _f64([3, 3, 2])).numpy(),
                                  [7, -1, 1])
    np.testing.assert_array_equal(S.shifted_chebyshev_polynomial_u(_f64([1.0, 0.0]), 3)
                                  .numpy(), [4, -4])
    np.testing.assert_array_equal(S.laguerre_polynomial_l(_f64([0.0, 0.0, 0.0]),
                                                          _f64([5, 0, -1])).numpy(), [1, 1, 0])
    # Hermite: NaN above degree 128 in float32 and 512 in float64 (there the recurrence
    # has overflowed anyway); H_129(0) = 0 in float64
    assert np.isnan(S.hermite_polynomial_h(fw.tensor([0.0]), 129.0).numpy()[0])
    h64 = S.hermite_polynomial_h(_f64([0.0, 0.0]), _f64([129, 513])).numpy()
    assert h64[0] == 0 and np.isnan(h64[1])
    assert np.isnan(S.hermite_polynomial_he(_f64([0.3]), 513.0).numpy()[0])


def test_float32_overflow_behaves_as_float32_arithmetic():
    """The recurrence runs in the operand's precision: T_70(2) overflows float32 (NaN two
    steps later, as PyTorch's float kernel) but not float64."""
    assert np.isnan(S.chebyshev_polynomial_t(fw.tensor([2.0]), 70).numpy()[0])
    v = S.chebyshev_polynomial_t(_f64([2.0]), 70).numpy()[0]
    assert np.isclose(v, math.cosh(70 * math.acosh(2.0)), rtol=1e-12)
    assert S.chebyshev_polynomial_t(fw.tensor([2.0], dtype=fw.float16), 5).numpy()[0] == 362


def test_polynomial_broadcasting_scalars_and_promotion():
    x = fw.tensor([[-0.5, 0.25, 0.9, 1.5]])
    n = fw.tensor([[0], [1], [3]])
    out = S.legendre_polynomial_p(x, n)
    assert out.shape == (3, 4) and out.dtype is fw.float32  # int64 n: the float operand's
    want = [[ref_polynomial("legendre_polynomial_p", float(a), b) for a in x.numpy()[0]]
            for b in (0, 1, 3)]
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(S.legendre_polynomial_p(x, 3).numpy(), out.numpy()[2:])
    by_scalar_x = S.hermite_polynomial_h(0.5, fw.tensor([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(by_scalar_x.numpy(), [1, 1, -1, -5], rtol=1e-6)
    assert S.chebyshev_polynomial_t(fw.tensor([1, 2]), fw.tensor([2, 2])).dtype is fw.float32
    assert S.chebyshev_polynomial_t(x, _f64([2.0])).dtype is fw.float64
    assert S.chebyshev_polynomial_t(x.half(), 2).dtype is fw.float16
    assert S.chebyshev_polynomial_t(fw.tensor([True]), 2.5).dtype is fw.float32
    np.testing.assert_array_equal(S.chebyshev_polynomial_t(x, 2.9).numpy(),
                                  S.chebyshev_polynomial_t(x, 2).numpy())  # n truncates
    assert S.laguerre_polynomial_l(fw.zeros(0, 3), fw.tensor([1.0, 2.0, 3.0])).shape == (0, 3)


@pytest.mark.parametrize("name", BESSEL + POLYNOMIALS)
def test_not_differentiable(name):
    x = fw.tensor([0.5, 2.0], requires_grad=True)
    args = (x,) if name in BESSEL else (x, fw.tensor([3.0, 4.0], requires_grad=True))
    out = getattr(S, name)(*args)
    assert not out.requires_grad and out.grad_fn is None  # PyTorch: non_differentiable


@pytest.mark.parametrize("name", BESSEL + POLYNOMIALS)
def test_integer_input_promotes_and_complex_raises(name):
    args = (fw.tensor([1, 2]),) + (() if name in BESSEL else (2,))
    out = getattr(S, name)(*args)
    assert out.dtype is fw.float32
    np.testing.assert_allclose(out.numpy(), getattr(S, name)(
        *(a.float() if isinstance(a, fw.Tensor) else a for a in args)).numpy())
    with pytest.raises(fw.DTypeError, match=name):
        getattr(S, name)(fw.tensor([1 + 1j]), *args[1:])
    if name in POLYNOMIALS:
        with pytest.raises(fw.DTypeError, match=name):
            getattr(S, name)(fw.tensor([0.5]), fw.tensor([1 + 1j]))
        with pytest.raises(TypeError, match=name):
            getattr(S, name)(0.5, 2)


def test_recurrence_cap_raises_on_cpu_and_chebyshev_stops_on_overflow():
    from framework.backends.special_poly import MAX_STEPS
    big = float(MAX_STEPS + 10)
    for name in ("legendre_polynomial_p", "laguerre_polynomial_l"):
        with pytest.raises(fw.ArgumentError, match=f"{name}: .*{MAX_STEPS}"):
            getattr(S, name)(_f64([0.3, 0.5]), _f64([3.0, big]))
    with pytest.raises(fw.ArgumentError, match="chebyshev_polynomial_t"):
        S.chebyshev_polynomial_t(_f64([1.0 + 1e-9]), big)
    # |x| < 1: the trigonometric form; |x| > 1: the recurrence is NaN after ~713/acosh|x|
    # steps, whatever n
    np.testing.assert_allclose(S.chebyshev_polynomial_t(_f64([0.3]), 1e9).numpy(),
                               [math.cos(1e9 * math.acos(0.3))], rtol=1e-6)
    assert np.isnan(S.chebyshev_polynomial_u(_f64([1.5]), 1e12).numpy()[0])
    # Hermite never needs more than 512 steps
    assert np.isnan(S.hermite_polynomial_h(_f64([0.5]), 1e9).numpy()[0])


# ---------------------------------------------------------------------------------------
# compile, ONNX
def _all_ops(x, n):
    return (S.bessel_y0(x + 1.5) + S.bessel_y1(x * 3.0 + 4.0) + S.modified_bessel_i0(x)
            - S.modified_bessel_i1(x) + S.modified_bessel_k0(x + 1.5)
            + S.scaled_modified_bessel_k1(x * 4.0 + 1.0) + S.chebyshev_polynomial_t(x, n)
            + S.shifted_chebyshev_polynomial_w(x, n) + S.hermite_polynomial_he(x, 5)
            + S.legendre_polynomial_p(x, n) * S.laguerre_polynomial_l(x, 3.0))


def test_compiled_fullgraph_matches_eager():
    g = np.random.default_rng(23)
    for dt in (fw.float64, fw.float32):
        x = fw.tensor(g.uniform(-1.2, 1.2, (3, 5)), dtype=dt)
        n = fw.tensor([0.0, 2.0, 7.0, 12.0, 40.0], dtype=dt)
        got = fw.compile(_all_ops, fullgraph=True)(x, n)
        np.testing.assert_allclose(got.numpy(), _all_ops(x, n).numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [fw.float64, fw.float32], ids=["f64", "f32"])
def test_onnx_export_matches_eager(dtype, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    path = str(tmp_path / "m.onnx")
    x = fw.tensor([0.0, 0.3, 1.0, 1.99, 2.0, 7.9, 8.1, 35.0, -1.0, inf, nan], dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-300) if dtype is fw.float64 else dict(rtol=1e-6, atol=5e-7)
    for name in BESSEL:
        fw.onnx.export(getattr(S, name), (x,), path, verify=True, **tol)
    xs = fw.tensor(np.linspace(-1.3, 1.3, 9), dtype=dtype)
    ns = fw.tensor([[0.0], [1.0], [3.0], [9.0], [64.0], [-2.0]], dtype=dtype)
    ptol = dict(rtol=1e-12, atol=1e-9) if dtype is fw.float64 else dict(rtol=1e-5, atol=1e-4)
    for name in POLYNOMIALS:
        fw.onnx.export(getattr(S, name), (xs, ns), path, verify=True, **ptol)
    loops = [nd for nd in onnx.load(path).graph.node if nd.op_type == "Loop"]
    assert loops and loops[0].input[0] != ""  # a trip count computed from the data


def test_onnx_beyond_the_cap_gives_nan(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    from framework.backends.special_poly import MAX_STEPS
    path = str(tmp_path / "m.onnx")
    fw.onnx.export(S.legendre_polynomial_p, (_f64([0.5, 0.5]), _f64([3.0, 4.0])), path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: v for i, v in zip(sess.get_inputs(), (np.array([0.5, 0.5]),
                                                           np.array([3.0, MAX_STEPS + 2.0])))}
    out = sess.run(None, feeds)[0]
    assert out[0] == pytest.approx(-0.4375) and np.isnan(out[1])


def test_special_namespace_lists_the_functions():
    for name in BESSEL + POLYNOMIALS:
        assert name in S.__all__ and getattr(S, name).__doc__
