"""``fw.einsum`` with '...' (torch semantics), repeated subscripts and their gradients,
the sublist form, and its error messages. References are ``np.einsum``, written with
letters where NumPy's own '...' rules differ from torch's."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, FwTypeError, ShapeError


def _rand(*shape):
    return np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape)


# (equation, operand shapes, letters-only NumPy equation or None to pass ``equation`` as is)
FORWARD = [
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)], None),                 # batched matmul
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)], "zyij,yjk->zyik"),  # batch broadcast
    ("...ij,jk", [(2, 3, 4), (4, 5)], "zij,jk->zik"),                     # implicit output
    ("...ji", [(2, 3, 4)], "zji->zij"),                                   # implicit transpose
    ("ba...,...c", [(2, 3, 5), (5, 6)], "baz,zc->zabc"),                  # ... first, then abc
    ("i...j->j...i", [(2, 3, 4, 5)], "iyzj->jyzi"),                       # middle, moved
    ("i...j,j->i...", [(2, 3, 4), (4,)], "izj,j->iz"),
    ("i...->i", [(2, 3, 4)], "iyz->i"),                                   # summed ellipsis
    ("...ij->ij", [(5, 2, 3)], "zij->ij"),
    ("...ij->...", [(5, 2, 3)], "zij->z"),
    ("...i,...i->...", [(2, 1, 3), (1, 4, 3)], "yxi,wzi->yz"),            # size-1 both ways
    ("...i,...i->i", [(3, 1, 2), (4, 2)], "yxi,zi->i"),                   # broadcast, summed
    ("...i,...i->...i", [(1, 2), (1, 2)], "zi,zi->zi"),                   # all-1 ellipsis dim
    ("...,...->...", [(3, 1), (4,)], "yz,z->yz"),                         # pure broadcasting
    ("a...b,...->a...b", [(2, 3, 4), ()], "azb,->azb"),                   # 0-d operand
    ("...ij->ji", [(2, 3)], "ij->ji"),                                    # '...' covers 0 dims
    ("ij...->ij", [(2, 3)], "ij->ij"),
    ("ij->...ij", [(2, 3)], "ij->ij"),                                    # torch allows this
    ("...ii->...i", [(2, 3, 3)], "zii->zi"),                              # with a diagonal
    ("...Ab,bC->...AC", [(2, 3, 4), (4, 5)], "zAb,bC->zAC"),              # upper case
    ("...ij,...jk,...kl->...il", [(2, 2, 3), (3, 4), (1, 4, 2)], "zij,jk,zkl->zil"),
    (" ... i j , ... j k -> ... i k ", [(2, 3, 4), (2, 4, 5)], "zij,zjk->zik"),  # spaces
    ("ii->i", [(3, 3)], None), ("ii->", [(3, 3)], None), ("ii", [(3, 3)], None),
    ("iij->j", [(3, 3, 2)], None), ("bii->bi", [(2, 3, 3)], None),
]


@pytest.mark.parametrize("eq,shapes,ref", FORWARD, ids=[c[0].strip() for c in FORWARD])
def test_forward_matches_numpy(eq, shapes, ref):
    xs = [_rand(*s) for s in shapes]
    out = fw.einsum(eq, *[fw.tensor(x) for x in xs])
    want = np.einsum(ref or eq, *xs)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=1e-12)


def test_ellipsis_in_a_list_of_operands_and_float32():
    a, b = _rand(2, 3, 4).astype(np.float32), _rand(4, 5).astype(np.float32)
    out = fw.einsum("...j,jk->...k", [fw.tensor(a), fw.tensor(b)])
    assert out.dtype is fw.float32
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5)


def test_sublist_form():
    a, b = _rand(2, 3, 4), _rand(4, 5)
    ta, tb = fw.tensor(a), fw.tensor(b)
    np.testing.assert_allclose(fw.einsum(ta, [0, 1, 2], tb, [2, 3], [0, 1, 3]).numpy(), a @ b)
    np.testing.assert_allclose(fw.einsum(ta, [..., 0], tb, [0, 1]).numpy(), a @ b)  # implicit
    np.testing.assert_allclose(fw.einsum(ta, [..., 26, 27], [27, ...]).numpy(),
                               np.einsum("zab->bz", a))


GRAD = [
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
    ("i...j->j...i", [(2, 3, 2)]),
    ("...i,...i->i", [(3, 1, 2), (4, 2)]),
    ("...,...->...", [(3, 1), (4,)]),
    ("a...b,...->a...b", [(2, 3, 2), ()]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),           # size-1 broadcasting of a letter
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ii->", [(3, 3)]),
    ("iij->j", [(3, 3, 2)]), ("bii->bi", [(2, 3, 3)]), ("iii->i", [(2, 2, 2)]),
    ("iji->j", [(2, 3, 2)]), ("ii,i->i", [(3, 3), (3,)]), ("ij,jj->i", [(2, 3), (3, 3)]),
    ("...ii->...", [(2, 3, 3)]),
]


@pytest.mark.parametrize("eq,shapes", GRAD, ids=[c[0] for c in GRAD])
def test_gradients_match_finite_differences(eq, shapes):
    xs = [fw.tensor(_rand(*s), requires_grad=True) for s in shapes]
    assert fw.autograd.gradcheck(lambda *a: fw.einsum(eq, *a), tuple(xs))


def test_diagonal_gradient_is_zero_off_the_diagonal():
    a = fw.tensor(_rand(3, 3), requires_grad=True)
    fw.einsum("ii->i", a).backward(fw.tensor(np.array([1.0, 2.0, 3.0])))
    np.testing.assert_array_equal(a.grad.numpy(), np.diag([1.0, 2.0, 3.0]))


def test_compiled_matches_eager_forward_and_gradients():
    def step(a, b):
        y = fw.einsum("...ij,...jk->...ik", a, b) + fw.einsum("...ii->...i", a).unsqueeze(-1)
        (y * y).sum().backward()
        return y

    xa, xb = _rand(2, 1, 3, 3), _rand(4, 3, 3)
    grads = []
    for fn in (step, fw.compile(step, mode="always")):
        a, b = fw.tensor(xa, requires_grad=True), fw.tensor(xb, requires_grad=True)
        y = fn(a, b)
        grads.append((y.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
    for eager, compiled in zip(*grads):
        np.testing.assert_allclose(compiled, eager, rtol=1e-10, atol=1e-12)


def test_compiled_diagonal_gradient_with_dynamic_sizes():
    # all dims equal (one symbol): "bi->bi" in the backward once returned a view of a buffer
    # the compiled code then reused, so the gradient came out as the identity mask
    def step(a):
        y = fw.einsum("bii->bi", a)
        (y * y).sum().backward()
        return y

    cstep = fw.compile(step, dynamic=True, mode="always")
    for b, n in [(2, 2), (3, 3), (2, 3)]:
        x = _rand(b, n, n)
        a = fw.tensor(x, requires_grad=True)
        np.testing.assert_allclose(cstep(a).numpy(), np.einsum("bii->bi", x))
        want = np.einsum("bi,ij->bij", 2 * np.einsum("bii->bi", x), np.eye(n))
        np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-12)


def test_result_does_not_alias_the_input():
    x = fw.tensor(np.arange(4.0).reshape(2, 2))
    t, d = fw.einsum("ij->ji", x), fw.einsum("ii->i", x)
    x.add_(1)
    np.testing.assert_array_equal(t.numpy(), [[0.0, 2.0], [1.0, 3.0]])
    np.testing.assert_array_equal(d.numpy(), [0.0, 3.0])


def test_onnx_export_of_an_ellipsis_equation():
    pytest.importorskip("onnxruntime")

    def f(a, b):
        return fw.einsum("...ij,...jk->...ik", a, b)

    fw.onnx.export(f, (fw.randn(2, 1, 3, 4), fw.randn(5, 4, 2)), verify=True)


ERRORS = [
    ("...ij", [(3,)], ShapeError, ["operand 0", "[3]"]),
    ("...i,...i", [(2, 3), (4, 3)], ShapeError, ["[2, 3]", "[4, 3]", "broadcast"]),
    ("ij,jk->ik", [(2, 3), (4, 2)], ShapeError, ["'j'", "3", "4"]),
    ("ij", [(2,)], ShapeError, ["operand 0", "[2]"]),
    ("ii->i", [(2, 3)], ShapeError, ["'i'", "[2, 3]"]),
    ("......i", [(2,)], ArgumentError, ["more than one '...'"]),
    (".i", [(2,)], ArgumentError, ["'.'"]),
    ("i->...i...", [(2,)], ArgumentError, ["output", "more than one '...'"]),
    ("i1", [(2, 2)], ArgumentError, ["'1'"]),
    ("ij->k", [(2, 2)], ArgumentError, ["'k'", "does not appear"]),
    ("ij->ii", [(2, 2)], ArgumentError, ["more than once"]),
    ("i,j", [(2,)], ArgumentError, ["2 operands", "1 tensors"]),
    ("i->i->i", [(2,)], ArgumentError, ["'->'"]),
]


@pytest.mark.parametrize("eq,shapes,exc,words", ERRORS, ids=[c[0] for c in ERRORS])
def test_errors_name_einsum_and_the_problem(eq, shapes, exc, words):
    with pytest.raises(exc) as info:
        fw.einsum(eq, *[fw.tensor(_rand(*s)) for s in shapes])
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert msg.startswith("einsum:")
    for w in words:
        assert w in msg


def test_bad_operand_types():
    with pytest.raises(FwTypeError, match="einsum"):
        fw.einsum("i", np.ones(2))
    with pytest.raises(FwTypeError, match="einsum"):
        fw.einsum(fw.ones(2), "i")
    with pytest.raises(ArgumentError, match="einsum"):
        fw.einsum("i")
