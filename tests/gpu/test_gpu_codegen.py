"""Generated kernels in both reduction modes: the persistent row (the whole row in one
block) and the looped one (several blocks per row, one pass per reduction level), forced
here with small rows by lowering the persistent limit."""

import numpy as np
import pytest

import framework as fw
from framework import nn


@pytest.fixture(params=["persistent", "looped"])
def mode(request, monkeypatch):
    from compiler.codegen import triton_launch
    if request.param == "looped":  # rows longer than 8 loop over blocks (both devices)
        monkeypatch.setattr(triton_launch, "MAX_R_PERSIST_INTERP", 8)
        monkeypatch.setattr(triton_launch, "MAX_R_PERSIST_GPU", 8)
    return request.param


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("name", ["sum", "amax", "amin", "prod", "argmax", "argmin", "mean"])
def test_reductions(mode, name):
    a = _x((5, 37))
    a[2, 7] = a[2, 30] = 9.0  # ties: the first index wins
    x = fw.tensor(a, device="cuda")
    for dim in (0, 1):
        got = getattr(x, name)(dim).cpu().numpy()
        ref = {"sum": np.sum, "amax": np.max, "amin": np.min, "prod": np.prod,
               "argmax": np.argmax, "argmin": np.argmin, "mean": np.mean}[name](a, axis=dim)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_any_all_and_nan(mode):
    a = _x((4, 21))
    a[1, 3] = np.nan
    x = fw.tensor(a, device="cuda")
    np.testing.assert_array_equal((x > 1).any(1).cpu().numpy(), (a > 1).any(1))
    np.testing.assert_array_equal((x > -3).all(1).cpu().numpy(), (a > -3).all(1))
    assert np.isnan(x.amax(1).cpu().numpy()[1])
    assert x.argmax(1).cpu().numpy()[1] == 3


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scans(mode, name):
    a = _x((3, 29)) * 0.3 + 1
    x = fw.tensor(a, device="cuda")
    for dim in (0, 1):
        got = getattr(x, name)(dim).cpu().numpy()
        np.testing.assert_allclose(got, getattr(np, name)(a, axis=dim), rtol=1e-4, atol=1e-5)


def test_fused_row_kernels(mode, monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    a = _x((6, 45))
    x = fw.tensor(a, device="cuda")
    y = fw.tensor(np.arange(6) % 45, device="cuda")
    for f in (lambda t: fw.softmax(t, -1), lambda t: fw.log_softmax(t, 0),
              lambda t: nn.functional.layer_norm(t, (45,))):
        np.testing.assert_allclose(fw.compile(f)(x).cpu().numpy(), f(x).cpu().numpy(),
                                   rtol=1e-4, atol=1e-5)
    ce = nn.functional.cross_entropy
    np.testing.assert_allclose(float(fw.compile(ce)(x, y)), float(ce(x, y)), rtol=1e-5)


def test_half_precision_accumulates_in_fp32(mode):
    a = np.full((2, 3000), 0.1, np.float32)
    x = fw.tensor(a, dtype=fw.float16, device="cuda")
    got = float(x.sum(1).float().cpu().numpy()[0])
    assert abs(got - 300.0) < 0.5  # an fp16 accumulator would stall far below 300


def test_mode_fixture_switches_the_kernel_geometry(mode):
    from compiler.codegen import triton_eager
    fw.tensor(_x((3, 37)), device="cuda").sum(1)
    kernel = next(k for key, k in triton_eager._CACHE.items() if key[:2] == ("red", "sum"))
    assert kernel.geometry(3, 37)["RPERSIST"] == (mode == "persistent")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16])
def test_narrow_integer_ops_with_python_ints(dtype):
    """A Python int reaches the kernel as a 32/64-bit argument: it is cast back to the
    tensor's type (Triton refuses uint8 // int32, mixed signedness)."""
    a = np.array([7, 100, 13], dtype)
    x = fw.tensor(a, device="cuda")
    for got, want in (((x // 3), a // dtype(3)), ((x % 3), a % dtype(3)),
                      (fw.fmod(x, 3), np.fmod(a, dtype(3))), ((x * 2), a * dtype(2))):
        assert got.dtype.np == np.dtype(dtype)
        np.testing.assert_array_equal(got.cpu().numpy(), want)
