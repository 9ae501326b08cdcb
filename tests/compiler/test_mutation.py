"""Functionalization: in-place writes to inputs, externals and views are written back."""

import numpy as np
import pytest

import framework as fw


def _check(fn, make_args, n_calls=2):
    ref_args = make_args()
    cmp_args = make_args()
    cf = fw.compile(fn, mode="always", fullgraph=True)
    for _ in range(n_calls):
        with fw.no_grad():
            a = fn(*ref_args)
            b = cf(*cmp_args)
        np.testing.assert_allclose(np.asarray(a.numpy()), np.asarray(b.numpy()), rtol=1e-6)
        for x, y in zip(ref_args, cmp_args):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6)
    return cf


def _args():
    rng = np.random.default_rng(0)
    return (fw.tensor(rng.standard_normal((3, 4)).astype(np.float32)),
            fw.tensor(rng.standard_normal((4, 3)).astype(np.float32)))


@pytest.mark.parametrize("case", ["input", "input_view", "transposed_view", "detach_alias",
                                  "slice_of_slice", "setitem", "chain"])
def test_inplace_writes_are_written_back(case):
    def fn(x, w):
        if case == "input":
            x.mul_(2).add_(1)
        elif case == "input_view":
            x[:, 0].mul_(3)
        elif case == "transposed_view":
            w.t().add_(x)
        elif case == "detach_alias":
            w.detach().zero_()
        elif case == "slice_of_slice":
            x[1:][:, 1:3].sub_(5)
        elif case == "setitem":
            x[0] = w[:, 0]
        else:
            y = x.clone()
            v = y.view(12)
            v[::2] = 0.0
            x.copy_(y * 2)
        return (x @ w).sum(0)

    _check(fn, _args)


def test_external_tensor_mutated_through_a_view_and_read_after():
    state = fw.zeros(4, 3)

    def fn(x, w):
        state[1].add_(w.sum(0))
        row = state[1] * 2          # reads the updated value
        return row + x.sum()

    ref_state = fw.zeros(4, 3)

    def ref(x, w):
        ref_state[1].add_(w.sum(0))
        return ref_state[1] * 2 + x.sum()

    cf = fw.compile(fn, mode="always", fullgraph=True)
    for _ in range(3):
        x, w = _args()
        with fw.no_grad():
            np.testing.assert_allclose(cf(x, w).numpy(), ref(x, w).numpy(), rtol=1e-6)
    np.testing.assert_allclose(state.numpy(), ref_state.numpy(), rtol=1e-6)
    g = cf.graph(*_args())
    assert len(g.mutations) == 1 and g.mutations[0][0].name == "state"


def test_version_counters_move_like_eager():
    x = fw.zeros(3)
    cf = fw.compile(lambda t: t.add_(1), mode="always")
    v0 = x._version
    cf(x)
    cf(x)
    assert x._version > v0
    np.testing.assert_allclose(x.numpy(), [2, 2, 2])
