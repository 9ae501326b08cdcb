"""Complex tensors on the CPU: dtypes and promotion, creation, views, the allow-listed
ops against NumPy, the complex gate (DTypeError naming op and dtype), autograd with
PyTorch's conjugate-Wirtinger convention (finite differences), printing and checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import framework as fw
from framework.errors import DTypeError
from tests.complex_helpers import complex_gradcheck, crandn


def _np(t):
    return t.detach().numpy()


# ---------------------------------------------------------------------------------------
# dtypes and promotion
def test_dtypes_names_and_categories():
    assert fw.cfloat is fw.complex64 and fw.cdouble is fw.complex128
    assert fw.complex64.is_complex and not fw.complex64.is_floating_point
    assert not fw.float32.is_complex
    assert fw.complex64 not in fw.dtypes.ALL_DTYPES and fw.complex64 not in fw.dtypes.FLOAT_DTYPES
    assert fw.dtypes.COMPLEX_DTYPES == (fw.complex64, fw.complex128)
    assert fw.complex64.to_real() is fw.float32 and fw.complex128.to_real() is fw.float64
    assert fw.float32.to_complex() is fw.complex64 and fw.float64.to_complex() is fw.complex128
    assert fw.float32.to_real() is fw.float32
    with pytest.raises(DTypeError):
        fw.int32.to_complex()
    assert fw.complex64.itemsize == 8 and fw.complex128.itemsize == 16
    fi = fw.finfo(fw.complex64)
    assert fi.dtype == "float32" and fi.eps == fw.finfo(fw.float32).eps
    assert fw.finfo(fw.complex128).bits == 64
    assert fw.dtypes.to_dtype("cfloat") is fw.complex64
    assert fw.dtypes.to_dtype(np.complex128) is fw.complex128
    assert fw.dtypes.to_dtype(complex) is fw.complex128


@pytest.mark.parametrize("a,b,want", [
    ("float32", "complex64", "complex64"), ("float64", "complex64", "complex128"),
    ("float16", "complex64", "complex64"), ("int64", "complex64", "complex64"),
    ("bool", "complex128", "complex128"), ("complex64", "complex128", "complex128"),
])
def test_promote_types(a, b, want):
    a, b, want = (fw.dtypes.from_name(n) for n in (a, b, want))
    assert fw.promote_types(a, b) is want and fw.promote_types(b, a) is want


def test_result_type_with_scalars_and_zero_dim():
    x32 = fw.ones(3)
    assert (x32 * 1j).dtype is fw.complex64
    assert (x32.double() * 1j).dtype is fw.complex128
    assert (fw.arange(3) * 1j).dtype is fw.complex64
    assert (fw.ones(2, dtype=fw.bool) + 1j).dtype is fw.complex64
    z64 = fw.ones(3, dtype=fw.complex64)
    assert (z64 * 2.5).dtype is fw.complex64 and (z64 + 1).dtype is fw.complex64
    # a 0-d complex128 tensor with a float32 tensor: the float keeps its width (PyTorch)
    assert (x32 + fw.tensor(1j, dtype=fw.complex128)).dtype is fw.complex64
    assert (x32.double() + fw.tensor(1j)).dtype is fw.complex128
    # a 0-d float64 tensor does not widen a complex64 tensor
    assert (z64 + fw.tensor(1.0, dtype=fw.float64)).dtype is fw.complex64
    assert fw.tensor(1 + 2j).dtype is fw.complex64
    assert fw.tensor(np.array([1j])).dtype is fw.complex128


def test_is_complex():
    z = fw.zeros(2, dtype=fw.complex64)
    assert z.is_complex() and fw.is_complex(z) and not fw.ones(2).is_complex()
    assert not z.is_floating_point() and not z.is_conj() and not fw.is_conj(z)


# ---------------------------------------------------------------------------------------
# creation
def test_creation():
    assert fw.zeros(2, 3, dtype=fw.complex64).numpy().dtype == np.complex64
    np.testing.assert_array_equal(fw.ones(2, dtype=fw.cdouble).numpy(), [1, 1])
    np.testing.assert_array_equal(fw.full((2,), 1 - 2j).numpy(), [1 - 2j, 1 - 2j])
    assert fw.full((2,), 1 - 2j).dtype is fw.complex64
    assert fw.empty(3, dtype=fw.complex128).shape == (3,)
    assert fw.zeros_like(fw.ones(2, dtype=fw.complex64)).dtype is fw.complex64
    fw.manual_seed(0)
    z = fw.randn(200000, dtype=fw.complex64).numpy()
    assert z.dtype == np.complex64
    # as PyTorch: real and imaginary parts each N(0, 1/2), so E|z|^2 = 1
    assert abs(z.real.var() - 0.5) < 0.01 and abs(z.imag.var() - 0.5) < 0.01
    assert abs((abs(z) ** 2).mean() - 1) < 0.01
    r = fw.rand(1000, dtype=fw.complex128).numpy()
    assert r.real.min() >= 0 and r.imag.max() < 1


def test_complex_and_polar():
    re, im = fw.tensor([1.0, -2.0]), fw.tensor([0.5, 3.0])
    z = fw.complex(re, im)
    assert z.dtype is fw.complex64
    np.testing.assert_array_equal(z.numpy(), [1 + 0.5j, -2 + 3j])
    p = fw.polar(fw.tensor([2.0, 1.0], dtype=fw.float64), fw.tensor([0.0, np.pi / 2],
                                                                     dtype=fw.float64))
    assert p.dtype is fw.complex128
    np.testing.assert_allclose(p.numpy(), [2, 1j], atol=1e-15)
    with pytest.raises(DTypeError, match="complex"):
        fw.complex(fw.ones(2), fw.ones(2, dtype=fw.float64))


def test_real_imag_views_write_through():
    z = fw.tensor([1 + 2j, 3 - 4j])
    r, i = z.real, z.imag
    assert r.dtype is fw.float32 and r._base is z and fw.real(z)._base is z
    np.testing.assert_array_equal(r.numpy(), [1, 3])
    np.testing.assert_array_equal(i.numpy(), [2, -4])
    r.mul_(10)
    i[0] = 0.5
    np.testing.assert_array_equal(z.numpy(), [10 + 0.5j, 30 - 4j])
    z.imag = fw.tensor([7.0, 8.0])
    np.testing.assert_array_equal(z.numpy(), [10 + 7j, 30 + 8j])
    x = fw.ones(2)
    assert x.real is x and fw.real(x) is x
    with pytest.raises(DTypeError, match="imag"):
        x.imag


def test_view_as_real_and_complex_are_views():
    z = fw.tensor([[1 + 2j, 3 - 4j]], dtype=fw.complex128)
    v = fw.view_as_real(z)
    assert v.shape == (1, 2, 2) and v.dtype is fw.float64 and v._base is z
    np.testing.assert_array_equal(v.numpy(), [[[1, 2], [3, -4]]])
    v[0, 1, 1] = 9.0
    assert z.numpy()[0, 1] == 3 + 9j
    x = fw.arange(8, dtype=fw.float32).reshape(2, 2, 2)
    c = fw.view_as_complex(x)
    assert c.shape == (2, 2) and c.dtype is fw.complex64 and c._storage is x._storage
    np.testing.assert_array_equal(c.numpy(), [[1j, 2 + 3j], [4 + 5j, 6 + 7j]])
    c.mul_(2)
    np.testing.assert_array_equal(x.numpy()[0, 1], [4, 6])
    np.testing.assert_array_equal(fw.view_as_complex(x[:, 1]).numpy(), c.numpy()[:, 1])
    with pytest.raises(fw.ArgumentError, match="stride 1"):
        fw.view_as_complex(x.transpose(1, 2))
    with pytest.raises(fw.ShapeError, match="size 2"):
        fw.view_as_complex(fw.ones(3))
    with pytest.raises(DTypeError):
        fw.view_as_real(fw.ones(2))


# ---------------------------------------------------------------------------------------
# the allow-list against NumPy
_A = crandn(3, 4, seed=1).astype(np.complex64)
_B = crandn(3, 4, seed=2).astype(np.complex64)

_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "reciprocal": np.reciprocal, "abs": np.abs,
    "angle": np.angle, "conj": np.conj, "conj_physical": np.conj, "real": np.real,
    "imag": np.imag, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "isnan": np.isnan,
    "isinf": np.isinf, "isfinite": np.isfinite, "square": np.square,
    "sgn": lambda z: z / np.abs(z),
}


@pytest.mark.parametrize("name", sorted(_UNARY))
def test_unary_matches_numpy(name):
    out = getattr(fw, name)(fw.tensor(_A))
    want = _UNARY[name](_A)
    assert out.numpy().dtype == want.dtype, (out.dtype, want.dtype)
    np.testing.assert_allclose(out.numpy(), want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "eq", "ne"])
def test_binary_matches_numpy(op):
    ufunc = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
             "pow": np.power, "eq": np.equal, "ne": np.not_equal}[op]
    a, b = fw.tensor(_A), fw.tensor(_B)
    np.testing.assert_allclose(getattr(fw, op)(a, b).numpy(), ufunc(_A, _B), rtol=1e-5)
    np.testing.assert_allclose(getattr(fw, op)(a, 2.0).numpy(), ufunc(_A, np.float32(2)),
                               rtol=1e-5)
    np.testing.assert_allclose(getattr(fw, op)(a, 1 - 1j).numpy(),
                               ufunc(_A, np.complex64(1 - 1j)), rtol=1e-5)


def test_operators_reductions_products_and_movement():
    a, b = fw.tensor(_A), fw.tensor(_B)
    np.testing.assert_allclose((a * b + a / b - a ** 2).numpy(), _A * _B + _A / _B - _A ** 2,
                               rtol=1e-5)
    np.testing.assert_allclose((2 - a).numpy(), 2 - _A, rtol=1e-6)
    np.testing.assert_allclose((1j * a).numpy(), 1j * _A, rtol=1e-6)
    np.testing.assert_allclose(a.sum().item(), _A.sum(), rtol=1e-5)
    np.testing.assert_allclose(a.sum(1).numpy(), _A.sum(1), rtol=1e-5)
    np.testing.assert_allclose(a.mean(0).numpy(), _A.mean(0), rtol=1e-5)
    np.testing.assert_allclose(a.prod(1).numpy(), _A.prod(1), rtol=1e-5)
    np.testing.assert_allclose(a.cumsum(1).numpy(), _A.cumsum(1), rtol=1e-5)
    np.testing.assert_allclose(a.cumprod(1).numpy(), _A.cumprod(1), rtol=1e-5)
    np.testing.assert_allclose((a @ b.mT).numpy(), _A @ _B.T, rtol=1e-5)
    np.testing.assert_allclose(fw.mm(a, b.T).numpy(), _A @ _B.T, rtol=1e-5)
    np.testing.assert_allclose(fw.bmm(a[None], b.T[None]).numpy(), (_A @ _B.T)[None],
                               rtol=1e-5)
    np.testing.assert_allclose(fw.einsum("ij,kj->ik", a, b).numpy(), _A @ _B.T, rtol=1e-5)
    np.testing.assert_allclose(fw.vdot(a[0], b[0]).item(), np.vdot(_A[0], _B[0]), rtol=1e-5)
    np.testing.assert_allclose(a.mH.numpy(), _A.conj().T)
    np.testing.assert_array_equal(a.reshape(4, 3).numpy(), _A.reshape(4, 3))
    np.testing.assert_array_equal(a.view(12).numpy(), _A.reshape(12))
    np.testing.assert_array_equal(a.permute(1, 0).numpy(), _A.T)
    np.testing.assert_array_equal(a.transpose(0, 1).contiguous().numpy(), _A.T)
    np.testing.assert_array_equal(a[None, :1].expand(2, 1, 4).numpy(),
                                  np.broadcast_to(_A[None, :1], (2, 1, 4)))
    np.testing.assert_array_equal(a[1:, ::2].numpy(), _A[1:, ::2])
    np.testing.assert_array_equal(a[fw.tensor([2, 0])].numpy(), _A[[2, 0]])
    np.testing.assert_array_equal(fw.cat([a, b]).numpy(), np.concatenate([_A, _B]))
    np.testing.assert_array_equal(fw.stack([a, b], 1).numpy(), np.stack([_A, _B], 1))
    np.testing.assert_array_equal(a.flip(1).numpy(), _A[:, ::-1])
    np.testing.assert_array_equal(a.clone().numpy(), _A)
    np.testing.assert_array_equal(a.unsqueeze(0).squeeze(0).numpy(), _A)
    mask = fw.tensor(_A.real > 0)
    np.testing.assert_array_equal(fw.where(mask, a, b).numpy(), np.where(_A.real > 0, _A, _B))
    np.testing.assert_array_equal(fw.where(mask, a, 0).numpy(), np.where(_A.real > 0, _A, 0))
    np.testing.assert_array_equal(fw.tril(a).numpy(), np.tril(_A))
    nan = fw.tensor([complex(np.nan, 1), 1 + 1j])
    np.testing.assert_array_equal(fw.nan_to_num(nan).numpy(), [1j, 1 + 1j])


def test_isclose_allclose_and_assert_close():
    a = fw.tensor(_A)
    assert fw.allclose(a, a + 1e-7) and not fw.allclose(a, a + 1e-2j)
    np.testing.assert_array_equal(fw.isclose(a, a * 1j).numpy(), np.isclose(_A, _A * 1j))
    fw.testing.assert_close(a, a.clone())
    with pytest.raises(AssertionError):
        fw.testing.assert_close(a, a + 1e-3j)
    with pytest.raises(AssertionError):
        fw.testing.assert_close(a, a.to(fw.complex128))


# ---------------------------------------------------------------------------------------
# the gate: everything else refuses clearly
@pytest.mark.parametrize("name,fn", [
    ("relu", lambda z: fw.relu(z)),
    ("lt", lambda z: z < z),
    ("ge", lambda z: z >= 1),
    ("amax", lambda z: z.max()),
    ("amax", lambda z: fw.amax(z, 0)),
    ("argmax", lambda z: z.argmax()),
    ("floor", lambda z: z.floor()),
    ("maximum", lambda z: fw.maximum(z, z)),
    ("atan2", lambda z: fw.atan2(z, z)),
    ("var", lambda z: z.var()),
    ("std", lambda z: z.std()),
    ("cummax", lambda z: z.cummax(0)),
    ("erf", lambda z: fw.erf(z)),
    ("tan", lambda z: z.tan()),
    ("sort", lambda z: z.sort()),
    ("isposinf", lambda z: fw.isposinf(z)),
    ("clamp", lambda z: z.clamp(0, 1)),
])
def test_unsupported_ops_raise_dtype_error(name, fn):
    z = fw.tensor(_A)
    with pytest.raises(DTypeError, match="complex64"):
        fn(z)


def test_composites_never_drop_the_imaginary_part_silently():
    z = fw.tensor(_A)
    for fn in (lambda: fw.softmax(z, 0), lambda: fw.nn.functional.gelu(z),
               lambda: fw.logsumexp(z, 0), lambda: fw.nn.functional.layer_norm(z, (4,)),
               lambda: fw.nn.functional.mse_loss(z, z)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(DTypeError, match="complex64"):
                fn()


def test_gate_is_off_until_a_complex_dtype_is_used():
    code = ("import framework as fw\nfrom framework.ops import registry\n"
            "x = fw.randn(3); (x * 2).relu().sum(); fw.ones(2).float()\n"
            "assert not registry._complex_seen\n"
            "z = fw.zeros(2, dtype=fw.complex64)\nassert registry._complex_seen\n")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ---------------------------------------------------------------------------------------
# casts
def test_casts():
    z = fw.tensor([1.5 + 2j])
    assert z.to(fw.complex128).dtype is fw.complex128
    assert fw.ones(2).to(fw.complex64).numpy().dtype == np.complex64
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        r = z.float()
    assert r.dtype is fw.float32 and r.item() == 1.5
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        assert z.to(fw.int64).item() == 1
    with pytest.raises(DTypeError, match="imaginary"):
        fw.ops.cast(z, fw.float32)  # ops' internal casts never drop it silently


# ---------------------------------------------------------------------------------------
# autograd (PyTorch's convention), checked by finite differences
def test_hand_computed_gradients():
    z = fw.tensor([1 + 2j, -0.5 + 0.3j], dtype=fw.complex128, requires_grad=True)
    (z * z.conj()).real.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), 2 * _np(z))  # L = |z|^2: grad 2z
    z.grad = None
    z.abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), _np(z) / np.abs(_np(z)))
    a = fw.tensor([1 + 2j], requires_grad=True)
    b = fw.tensor([3 - 1j], requires_grad=True)
    (a * b).backward(fw.tensor([1 + 0j]))
    np.testing.assert_allclose(a.grad.numpy(), [3 + 1j])  # g * conj(b)
    np.testing.assert_allclose(b.grad.numpy(), [1 - 2j])
    x = fw.tensor([1.0, 2.0], requires_grad=True)
    (x * (1 + 1j)).abs().sum().backward()
    assert x.grad.dtype is fw.float32  # a real input gets a real gradient
    np.testing.assert_allclose(x.grad.numpy(), [2 ** 0.5] * 2, rtol=1e-6)
    with pytest.raises(fw.AutogradError, match="real scalar"):
        fw.tensor(1j, requires_grad=True).mul(2).backward()


_Z = crandn(2, 3, seed=3)
_W = crandn(2, 3, seed=4)
_X = np.random.default_rng(5).standard_normal((2, 3))


@pytest.mark.parametrize("name,fn,inputs", [
    ("add", lambda a, b: a + b, (_Z, _W)),
    ("sub", lambda a, b: a - b * 2j, (_Z, _W)),
    ("mul", lambda a, b: a * b, (_Z, _W)),
    ("div", lambda a, b: a / b, (_Z, _W)),
    ("neg", lambda a: -a, (_Z,)),
    ("reciprocal", lambda a: a.reciprocal(), (_Z,)),
    ("pow_scalar", lambda a: a ** 3, (_Z,)),
    ("pow_complex_scalar", lambda a: a ** (0.5 + 1j), (_Z,)),
    ("pow_tensor", lambda a, b: a ** b, (_Z, _W * 0.3)),
    ("exp", lambda a: a.exp(), (_Z,)),
    ("log", lambda a: a.log(), (_Z,)),
    ("sqrt", lambda a: a.sqrt(), (_Z,)),
    ("sin", lambda a: a.sin(), (_Z,)),
    ("cos", lambda a: a.cos(), (_Z,)),
    ("tanh", lambda a: a.tanh(), (_Z * 0.5,)),
    ("sigmoid", lambda a: a.sigmoid(), (_Z * 0.5,)),
    ("abs", lambda a: a.abs(), (_Z,)),
    ("angle", lambda a: fw.angle(a), (_Z,)),
    ("sgn", lambda a: a.sgn(), (_Z,)),
    ("conj", lambda a: a.conj() * a, (_Z,)),
    ("real_imag", lambda a: a.real * a.imag, (_Z,)),
    ("sum_mean", lambda a: a.sum(0) * a.mean(1).sum(), (_Z,)),
    ("prod", lambda a: a.prod(1), (_Z,)),
    ("cumsum", lambda a: a.cumsum(1), (_Z,)),
    ("cumprod", lambda a: a.cumprod(1), (_Z,)),
    ("matmul", lambda a, b: a @ b.mT, (_Z, _W)),
    ("matvec", lambda a, b: a @ b[0], (_Z, _W)),
    ("einsum", lambda a, b: fw.einsum("ij,ik->jk", a, b), (_Z, _W)),
    ("movement", lambda a: fw.cat([a.permute(1, 0).reshape(2, 3), a.flip(0)])[:, 1:]
     .expand(2, 4, 2), (_Z,)),
    ("stack_where", lambda a, b: fw.stack([fw.where(fw.tensor(_X > 0), a, b), a]), (_Z, _W)),
    ("complex", lambda x, y: fw.complex(x, y) ** 2, (_X, _X[::-1].copy())),
    ("polar", lambda r, t: fw.polar(r, t), (np.abs(_X) + 0.5, _X)),
    ("real_times_complex", lambda x, a: x * a + x.exp(), (_X, _Z)),
    ("complex_plus_real_scalar_tensor", lambda x, a: a / (x.sum() + 3), (_X, _Z)),
    ("view_as_real", lambda a: fw.view_as_real(a) * 3, (_Z,)),
    ("view_as_complex", lambda x: fw.view_as_complex(x) ** 2, (np.stack([_X, _X + 1], -1),)),
    ("abs_squared", lambda a: (a * a.conj()).real, (_Z,)),
    ("to_real", lambda a: a.real.to(fw.complex128) * a, (_Z,)),
])
def test_gradients_by_finite_differences(name, fn, inputs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        complex_gradcheck(fn, inputs)


def test_gradcheck_helper_catches_a_wrong_rule(monkeypatch):
    """The helper must fail on a VJP without the conjugate (the classic complex bug)."""
    from framework.ops import pointwise
    op = pointwise.BINARY_OPS["mul"]

    def wrong(g, args, out):
        a, b = args
        return pointwise._grads2(a, b, g * b, g * a)
    monkeypatch.setattr(op, "vjp", wrong)
    with pytest.raises(AssertionError):
        complex_gradcheck(lambda a, b: a * b, (_Z, _W))


def test_second_order_through_complex():
    z = fw.tensor([0.3 + 0.4j], dtype=fw.complex128, requires_grad=True)
    loss = (z * z.conj()).real.sum() ** 2  # |z|^4: grad 4|z|^2 z
    (g,) = fw.autograd.grad(loss, z, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 4 * 0.25 * np.array([0.3 + 0.4j]))


# ---------------------------------------------------------------------------------------
# leaving the framework: printing, numbers, checkpoints
def test_repr_item_tolist_numpy():
    z = fw.tensor([1 + 2j, 3 - 1j])
    assert repr(z) == "tensor([1.+2.j, 3.-1.j])"
    assert repr(fw.tensor([1.5 + 2j], dtype=fw.complex128)) == \
        "tensor([1.5000+2.j], dtype=framework.complex128)"
    assert repr(fw.tensor(0.25 - 0.5j)) == "tensor(0.2500-0.5000j)"
    assert "requires_grad=True" in repr(fw.tensor([1j], requires_grad=True))
    assert z[0].item() == 1 + 2j and isinstance(z[0].item(), complex)
    assert z.tolist() == [1 + 2j, 3 - 1j]
    assert z.numpy().dtype == np.complex64
    assert str(fw.zeros(1, dtype=fw.complex64)) == "tensor([0.+0.j])"


def test_save_load_round_trip(tmp_path):
    z = fw.tensor(crandn(2, 3), dtype=fw.complex128)
    zt = z.t()  # non-contiguous
    p = tmp_path / "c.safetensors"
    fw.save({"z": z, "zt": zt, "z64": z.to(fw.complex64), "np": np.array([1j], np.complex64)},
            str(p))
    out = fw.load(str(p))
    assert out["z"].dtype is fw.complex128 and fw.equal(out["z"], z)
    assert fw.equal(out["zt"], zt) and out["z64"].dtype is fw.complex64
    np.testing.assert_array_equal(out["np"], [1j])
    # the file is a plain safetensors file: the data are (real, imag) float pairs
    import safetensors.numpy
    raw = safetensors.numpy.load_file(str(p))
    assert raw["z"].dtype == np.float64 and raw["z"].shape == (2, 3, 2)
