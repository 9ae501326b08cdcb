"""The ``index`` op's CPU kernel returned a NumPy view of its input for a key of slices and
ints (the key an ``x[:, 0, :] += w`` VJP uses). ``index`` is no view op, so the compiled
code's buffer reuse recycled that input buffer while the result was still live: SAM's box
embedding (``corner_embedding[:, 0, :] += weight``, once per image of the batch) got a
silently wrong weight gradient in a compiled training step."""

import numpy as np

import framework as fw
from framework.ops.registry import OPS, apply


def test_index_with_a_basic_key_returns_fresh_memory():
    x = fw.randn(2, 3, 4)
    y = apply(OPS["index"], x, key=(slice(0, 1, 1), slice(0, 3, 1)))
    assert y.shape == (1, 3, 4)
    assert not np.may_share_memory(y.numpy(), x.numpy())
    np.testing.assert_array_equal(y.numpy(), x.numpy()[:1])
    x.add_(1.0)  # writing the input afterwards leaves the result alone
    np.testing.assert_array_equal(y.numpy() + 1.0, x.numpy()[:1])


def _make_step(w, xs):
    def step():
        return _step(w, xs)
    return step


def _step(w, xs):
    tot = 0
    for i in range(xs.shape[0]):
        c = xs[i:i + 1].sin()
        c[:, 0, :] += w
        tot = tot + (c * c).sum()
    w.grad = None
    tot.backward()
    return tot


def test_compiled_backward_of_slice_updates_in_a_loop_matches_numpy():
    fw.manual_seed(0)
    w = fw.randn(1, 4, dtype=fw.float64, requires_grad=True)
    xs = fw.randn(3, 2, 4, dtype=fw.float64)
    want = 0
    for i in range(3):
        c = np.sin(xs.numpy()[i:i + 1]).copy()
        c[:, 0, :] += w.detach().numpy()
        want = want + 2 * c[:, 0, :]
    _step(w, xs)
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
    cf = fw.compile(_make_step(w, xs), mode="always")  # w is read as a parameter would be
    for _ in range(3):
        cf()
        np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
    st = cf.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["eager_reason"] is None
