"""fw.special's bessel_y0/y1, modified_bessel_i0/i1/k0/k1, scaled_modified_bessel_k0/k1
and orthogonal polynomials on device "cuda" (Triton helpers rendered from
backends/special_bessel_more.py and special_poly.py): values match the CPU kernels (float32
and float64, special values and degrees up to 64 included; the polynomials' recurrence is a
loop whose trip count comes from the data), n broadcasts on the device, a compiled function
fuses them, and their kernels compile ahead of time for sm_80/sm_90 within the resource
gate."""

import math

import numpy as np
import pytest

import framework as fw
from tests.test_special_more import BESSEL, POLYNOMIALS

S = fw.special
inf, nan = math.inf, math.nan
XS = np.array([0.0, -0.0, -1.0, 0.3, 1.5, 1.99, 2.0, 7.3, 8.0, 12.0, 30.0, 150.0, 1e-8,
               -9.7, inf, -inf, nan])
PX = np.array([-inf, -2.5, -1.0, -0.97, -0.5, 0.0, 0.2, 0.5, 0.93, 1.0, 1.0004, 3.0, inf,
               nan])
PN = np.array([[-2.0], [-0.5], [0.0], [1.0], [2.0], [3.7], [6.0], [7.0], [9.0], [16.0],
               [64.0], [nan], [inf]])


def _close(got, want, dtype):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    scale = np.maximum(np.abs(want[fin]), 1e-3 if dtype is fw.float32 else 1e-12)
    assert (np.abs(got[fin] - want[fin]) / scale).max(initial=0) < (
        2e-5 if dtype is fw.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", BESSEL)
def test_bessel_values_match_cpu(name, dtype):
    x = fw.tensor(XS, dtype=dtype)
    got = getattr(S, name)(x.to("cuda"))
    assert got.device.type == "cuda" and got.dtype is dtype
    _close(got.cpu().numpy(), getattr(S, name)(x).numpy(), dtype)


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", POLYNOMIALS)
def test_polynomial_values_match_cpu(name, dtype):
    x, n = fw.tensor(PX, dtype=dtype), fw.tensor(PN, dtype=dtype)
    got = getattr(S, name)(x.to("cuda"), n.to("cuda"))
    assert got.device.type == "cuda" and got.dtype is dtype and got.shape == (13, 14)
    _close(got.cpu().numpy(), getattr(S, name)(x, n).numpy(), dtype)


def test_scalar_and_integer_degrees_on_device():
    x = fw.tensor([[-0.4], [0.6], [1.3]], dtype=fw.float64)
    n = fw.tensor([0, 3, 8, 20])
    for fn in (lambda u, m: S.legendre_polynomial_p(u, m),
               lambda u, m: S.hermite_polynomial_h(u, 5),
               lambda u, m: S.chebyshev_polynomial_u(0.25, m.double()),
               lambda u, m: S.laguerre_polynomial_l(u, m)):
        got = fn(x.to("cuda"), n.to("cuda"))
        np.testing.assert_allclose(got.cpu().numpy(), fn(x, n).numpy(), rtol=1e-12)


def test_compiled_on_device():
    def f(x, n):
        return (S.chebyshev_polynomial_t(x, n) * S.bessel_y0(x + 2.0)
                + S.shifted_chebyshev_polynomial_v(x, n) + S.modified_bessel_k1(x + 1.5)
                + S.hermite_polynomial_he(x, n) - S.scaled_modified_bessel_k0(x + 3.0))
    x = fw.tensor(np.linspace(-1.2, 1.2, 33), dtype=fw.float32)
    n = fw.tensor(np.arange(33) % 11, dtype=fw.float32)
    out = fw.compile(f, fullgraph=True)(x.to("cuda"), n.to("cuda"))
    np.testing.assert_allclose(out.cpu().numpy(), f(x, n).numpy(), rtol=2e-5, atol=2e-5)


def test_special_kernels_pass_the_resource_gate():
    """Eager (float32, float64) and fused kernels of these functions compile for sm_80 and
    sm_90 without spills."""
    pytest.importorskip("triton")
    from compiler.codegen.triton_launch import GENERATED
    from compiler.codegen.triton_ops import helpers_used
    from tests.gpu.test_gpu_aot import _gate
    for dtype in (fw.float32, fw.float64):
        x = (fw.rand(7, device="cuda") + 0.5).to(dtype)
        for name in BESSEL:
            getattr(S, name)(x)
        for name in POLYNOMIALS:
            getattr(S, name)(x, x * 10.0)
    a = fw.tensor(np.linspace(0.3, 3, 9), dtype=fw.float64, device="cuda")
    fw.compile(lambda u, v: S.legendre_polynomial_p(u, v) * S.bessel_y1(u)
               + S.chebyshev_polynomial_w(u, v), fullgraph=True)(a, a * 4.0)
    wanted = {f"_fw_{op}" for op in BESSEL + POLYNOMIALS}
    specs = [k.aot_specs()[0] for k in GENERATED.values()
             if wanted & set(helpers_used(k.source))]
    assert len(specs) >= 2 * len(wanted)
    _gate(specs)
