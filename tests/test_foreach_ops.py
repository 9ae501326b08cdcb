"""``torch._foreach_*`` (framework/foreach_ops.py): list-of-tensor ops as DINOv2's teacher
EMA calls them, checked against the same op per tensor in NumPy."""

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, ShapeError


def _lists(seed=0):
    rng = np.random.default_rng(seed)
    a = [rng.standard_normal(s).astype(np.float32) for s in ((3,), (2, 4), ())]
    b = [rng.standard_normal(x.shape).astype(np.float32) for x in a]
    return a, b


def test_ema_update_in_place():
    a, b = _lists()
    teacher, student = [fw.tensor(x) for x in a], [fw.tensor(x) for x in b]
    ids = [id(t) for t in teacher]
    m = 0.9
    assert fw._foreach_mul_(teacher, m) is None
    assert fw._foreach_add_(teacher, student, alpha=1 - m) is None
    assert [id(t) for t in teacher] == ids
    for t, x, y in zip(teacher, a, b):
        np.testing.assert_allclose(t.numpy(), x * m + (1 - m) * y, rtol=1e-6)
    assert teacher[0]._storage.version > 0


@pytest.mark.parametrize("name,np_fn", [("add", np.add), ("sub", np.subtract),
                                        ("mul", np.multiply), ("div", np.divide),
                                        ("maximum", np.maximum), ("minimum", np.minimum)])
def test_binary_overloads(name, np_fn):
    a, b = _lists(1)
    xs, ys = [fw.tensor(x) for x in a], [fw.tensor(y) for y in b]
    fn = getattr(fw, f"_foreach_{name}")
    for other, np_other in [(ys, b), (2.5, [2.5] * 3), ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),
                            (fw.tensor(1.5), [1.5] * 3)]:
        out = fn(xs, other)
        assert isinstance(out, list) and len(out) == 3
        for o, x, y in zip(out, a, np_other):
            np.testing.assert_allclose(o.numpy(), np_fn(x, y), rtol=1e-6)
    np.testing.assert_allclose(a[0], xs[0].numpy())  # out of place leaves the inputs alone


def test_alpha_unary_and_pointwise():
    a, b = _lists(2)
    xs, ys = [fw.tensor(x) for x in a], [fw.tensor(y) for y in b]
    for o, x, y in zip(fw._foreach_sub(xs, ys, alpha=3.0), a, b):
        np.testing.assert_allclose(o.numpy(), x - 3.0 * y, rtol=1e-6)
    for o, x in zip(fw._foreach_sqrt([fw.tensor(np.abs(x)) for x in a]), a):
        np.testing.assert_allclose(o.numpy(), np.sqrt(np.abs(x)), rtol=1e-6)
    for o, x, y in zip(fw._foreach_lerp(xs, ys, 0.25), a, b):
        np.testing.assert_allclose(o.numpy(), x + 0.25 * (y - x), rtol=1e-6)
    for o, x, y in zip(fw._foreach_addcmul(xs, ys, ys, value=0.5), a, b):
        np.testing.assert_allclose(o.numpy(), x + 0.5 * y * y, rtol=1e-6)
    for o, x, y, v in zip(fw._foreach_addcdiv(xs, ys, xs, [1.0, 2.0, 3.0]), a, b, (1, 2, 3)):
        np.testing.assert_allclose(o.numpy(), x + v * y / x, rtol=1e-5)
    norms = fw._foreach_norm(xs)
    for n, x in zip(norms, a):
        np.testing.assert_allclose(n.numpy(), np.linalg.norm(x.ravel()), rtol=1e-6)
    zs = [fw.tensor(x) for x in a]
    fw._foreach_zero_(zs)
    assert all(float(z.abs().sum()) == 0 for z in zs)
    fw._foreach_copy_(zs, ys)
    for z, y in zip(zs, b):
        np.testing.assert_array_equal(z.numpy(), y)
    fw._foreach_lerp_(zs, xs, 1.0)
    for z, x in zip(zs, a):
        np.testing.assert_array_equal(z.numpy(), x)


def test_bad_arguments():
    a, b = _lists(3)
    xs = [fw.tensor(x) for x in a]
    with pytest.raises(ShapeError, match="same number of tensors"):
        fw._foreach_add(xs, xs[:2])
    with pytest.raises(ShapeError, match="0-D"):
        fw._foreach_mul(xs, fw.ones(3))
    with pytest.raises(ArgumentError, match="alpha"):
        fw._foreach_mul(xs, 2.0, alpha=2)
    with pytest.raises(ArgumentError, match="at least one tensor"):
        fw._foreach_add([], 1.0)
    with pytest.raises(AttributeError):
        fw._foreach_not_an_op  # noqa: B018


def test_ema_under_compile_matches_eager():
    fw.manual_seed(0)
    student = fw.nn.Linear(4, 3)
    teacher = fw.nn.Linear(4, 3)
    want = [0.5 * t.detach().numpy() + 0.5 * s.detach().numpy()
            for t, s in zip(teacher.parameters(), student.parameters())]

    def update(m):
        with fw.no_grad():
            fw._foreach_mul_(list(teacher.parameters()), m)
            fw._foreach_add_(list(teacher.parameters()), list(student.parameters()), alpha=1 - m)

    fw.compile(update, mode="always")(0.5)
    for t, w in zip(teacher.parameters(), want):
        np.testing.assert_allclose(t.detach().numpy(), w, rtol=1e-6)


def test_lerp_uses_pytorchs_two_sided_formula():
    """``torch.lerp`` computes ``end - (end - start) * (1 - w)`` for ``|w| >= 0.5``: weight 1
    gives ``end`` exactly (``start + 1 * (end - start)`` rounds when the magnitudes differ),
    which ``_foreach_lerp_`` EMA copies and SWA's first average rely on."""
    start = fw.tensor([1e3, -7.3, 0.3, 5.0])
    end = fw.tensor([0.189053, -0.522748, -0.41306356, 2.0])
    np.testing.assert_array_equal(fw.lerp(start, end, 1.0).numpy(), end.numpy())
    w = fw.tensor([1.0, 0.2, 0.7, -0.6])
    s64, e64, w64 = (t.numpy().astype(np.float64) for t in (start, end, w))
    want = np.where(np.abs(w64) < 0.5, s64 + w64 * (e64 - s64), e64 - (e64 - s64) * (1 - w64))
    np.testing.assert_allclose(fw.lerp(start, end, w).numpy(), want, rtol=1e-6)
    assert fw.lerp(start, end, w).numpy()[0] == end.numpy()[0]
    c = start.clone()
    c.lerp_(end, 1.0)
    np.testing.assert_array_equal(c.numpy(), end.numpy())
    cf = fw.compile(lambda a, b: fw.lerp(a, b, 0.75), mode="always")
    np.testing.assert_array_equal(cf(start, end).numpy(), fw.lerp(start, end, 0.75).numpy())
