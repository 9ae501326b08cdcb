"""fw.special's gammainc/gammaincc, zeta, erfcx, bessel_j0/j1, spherical_bessel_j0 and
airy_ai on device "cuda" (Triton helpers rendered from backends/special_gamma.py and
special_bessel.py): values match the CPU kernels (float32 and float64, boundary values
included), gradients flow on the device, a compiled function fuses them, and their
kernels compile ahead of time for sm_80/sm_90 within the resource gate."""

import math

import numpy as np
import pytest

import framework as fw

S = fw.special
inf, nan = math.inf, math.nan
_G = np.random.default_rng(11)
A = np.concatenate([10 ** _G.uniform(-3, 3, 24), [0.0, 1.0, inf, nan, 2.0, -1.0, 1e-300]])
X = np.concatenate([A[:24] * 10 ** _G.uniform(-1, 1, 24), [1.0, 0.0, 2.0, 1.0, inf, 1.0,
                                                            1e-300]])
XS = np.array([0.0, -0.0, -1.0, -2.5, 0.3, 1.5, 7.3, 12.0, 30.0, -9.7, inf, -inf, nan,
               -26.0, 150.0, 1e-8, -5.0, 2.5, -60.0])
UNARY = {"erfcx": S.erfcx, "bessel_j0": S.bessel_j0, "bessel_j1": S.bessel_j1,
         "spherical_bessel_j0": S.spherical_bessel_j0, "airy_ai": S.airy_ai}
BINARY = {"gammainc": S.gammainc, "gammaincc": S.gammaincc,
          "zeta": lambda s, q: S.zeta(s + 1.0, q - 0.5)}


def _tol(dtype):
    return dict(rtol=1e-12, atol=1e-300) if dtype is fw.float64 else dict(rtol=2e-6,
                                                                          atol=1e-30)


@pytest.mark.parametrize("dtype", [fw.float32, fw.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(UNARY) + sorted(BINARY))
def test_values_match_cpu(name, dtype):
    if name in UNARY:
        args = (fw.tensor(XS, dtype=dtype),)
        fn = UNARY[name]
    else:
        args = (fw.tensor(A, dtype=dtype), fw.tensor(X, dtype=dtype))
        fn = BINARY[name]
    got = fn(*(a.to("cuda") for a in args))
    assert got.device.type == "cuda" and got.dtype is dtype
    want = fn(*args).numpy()
    if name == "airy_ai" or name.startswith(("bessel", "spherical")):  # oscillating: envelope
        scale = np.maximum(np.abs(want), 1e-3 if dtype is fw.float32 else 1e-12)
        np.testing.assert_array_equal(np.isnan(got.cpu().numpy()), np.isnan(want))
        ok = ~np.isnan(want)
        err = np.abs(got.cpu().numpy()[ok] - want[ok]) / scale[ok]
        assert err.max() < (2e-6 if dtype is fw.float32 else 1e-12), name
    else:
        np.testing.assert_allclose(got.cpu().numpy(), want, equal_nan=True, **_tol(dtype))


def test_broadcast_and_scalar_operands_on_device():
    a = fw.tensor([[0.5], [3.0], [40.0]], dtype=fw.float64)
    x = fw.tensor([0.2, 2.5, 39.0, 200.0], dtype=fw.float64)
    for fn in (lambda u, v: S.gammainc(u, v), lambda u, v: S.gammaincc(u, 1.5),
               lambda u, v: S.zeta(3.0, v), lambda u, v: u.igamma(v)):
        got = fn(a.to("cuda"), x.to("cuda"))
        np.testing.assert_allclose(got.cpu().numpy(), fn(a, x).numpy(), rtol=1e-12)


def test_gradients_on_device():
    av = np.array([0.4, 1.3, 5.2, 20.0])
    xv = np.array([0.7, 2.0, 4.5, 21.0])
    grads = []
    for dev in ("cpu", "cuda"):
        a = fw.tensor(av, dtype=fw.float64, device=dev)
        x = fw.tensor(xv, dtype=fw.float64, device=dev, requires_grad=True)
        (S.gammainc(a, x) + S.gammaincc(a, x * 2.0) + S.zeta(a + 1.5, x)
         + S.erfcx(x - 3.0)).sum().backward()
        assert x.grad.device.type == dev
        grads.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)


def test_compiled_on_device():
    def f(a, x):
        return (S.gammainc(a, x) * S.airy_ai(x - 3.0) + S.zeta(a + 1.0, x)
                + S.bessel_j0(x) * S.erfcx(x) - S.spherical_bessel_j0(x) + S.bessel_j1(a))
    a = fw.tensor(np.linspace(0.3, 30, 33), dtype=fw.float32)
    x = fw.tensor(np.linspace(0.1, 40, 33), dtype=fw.float32)
    out = fw.compile(f, fullgraph=True)(a.to("cuda"), x.to("cuda"))
    np.testing.assert_allclose(out.cpu().numpy(), f(a, x).numpy(), rtol=2e-6, atol=1e-6)


def test_special_kernels_pass_the_resource_gate():
    """Eager (float32, float64) and fused kernels of these functions compile for sm_80 and
    sm_90 without spills: kernels calling the igamma/zeta helpers (float64 loops), or the
    others on float64 data, run fewer elements a thread (triton_ops.HELPER_ELEMENTS)."""
    pytest.importorskip("triton")
    from compiler.codegen.triton_launch import GENERATED
    from tests.gpu.test_gpu_aot import _gate
    for dtype in (fw.float32, fw.float64):
        x = (fw.rand(7, device="cuda") + 0.5).to(dtype)
        S.gammainc(x, x), S.gammaincc(x, x), S.zeta(x + 1.0, x)
        for fn in UNARY.values():
            fn(x)
    a = fw.tensor(np.linspace(0.3, 30, 9), dtype=fw.float64, device="cuda")
    fw.compile(lambda u, v: S.gammainc(u, v) * S.airy_ai(v - 3.0) + S.zeta(u + 1.0, v)
               + S.bessel_j0(v) * S.erfcx(v), fullgraph=True)(a, a * 0.5)
    from compiler.codegen.triton_ops import helpers_used
    wanted = {f"_fw_{op}" for op in ("igamma", "igammac", "zeta", "erfcx", "bessel_j0",
                                     "bessel_j1", "spherical_bessel_j0", "airy_ai")}
    # the kernels calling these helpers (other tests' kernels may be in GENERATED too)
    specs = [k.aot_specs()[0] for k in GENERATED.values()
             if wanted & set(helpers_used(k.source))]
    assert len(specs) >= 16
    _gate(specs)
