"""fw.special on device "cuda" (the Triton helpers rendered from backends/special_math.py):
values match the CPU kernels in float32/float64 (poles, NaN/Inf included), gradients flow,
and a compiled function fuses them."""

import math

import numpy as np
import pytest

import framework as fw

S = fw.special
XS = np.array([0.0, -0.0, -1.0, -2.5, 0.3, 1.0, 1.5, 2.0, 7.3, 12.0, 30.0, -9.7, math.inf,
               -math.inf, math.nan, 0.999, -0.5, 1e-8, 150.0])
FNS = {"lgamma": fw.lgamma, "digamma": fw.digamma, "erfc": fw.erfc, "i0": fw.i0,
       "i0e": S.i0e, "i1": S.i1, "i1e": S.i1e, "erfinv": lambda x: fw.erfinv(x / 150.0),
       "polygamma1": lambda x: fw.polygamma(1, x), "log_ndtr": S.log_ndtr, "ndtr": S.ndtr}


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(FNS))
def test_values_match_cpu(name, dtype):
    fn = FNS[name]
    x = fw.tensor(XS, dtype=dtype)
    got = fn(x.to("cuda"))
    assert got.device.type == "cuda" and got.dtype is dtype
    want = fn(x).numpy()
    tol = dict(rtol=1e-12, atol=1e-13) if dtype is fw.float64 else dict(rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(got.cpu().numpy(), want, equal_nan=True, **tol)


def test_gradients_on_device():
    a = np.array([0.4, 1.3, 5.2, -2.6])
    xc = fw.tensor(a, dtype=fw.float64, requires_grad=True)
    xg = fw.tensor(a, dtype=fw.float64, device="cuda", requires_grad=True)
    for x in (xc, xg):
        (fw.lgamma(x) + fw.i0(x) + fw.erfc(x)).sum().backward()
    np.testing.assert_allclose(xg.grad.cpu().numpy(), xc.grad.numpy(), rtol=1e-12)


def test_compiled_on_device():
    def f(x):
        return fw.digamma(x.abs() + 0.5) * S.i1e(x) + fw.erfinv(x * 0.01)
    x = fw.tensor(np.linspace(-20, 20, 33), dtype=fw.float32)
    out = fw.compile(f, fullgraph=True)(x.to("cuda"))
    np.testing.assert_allclose(out.cpu().numpy(), f(x).numpy(), rtol=2e-6, atol=1e-6)
