"""``fw.vmap``'s batched evaluation (framework/func_batching.py) against an explicit loop
over samples: every batching rule, the per-sample fallback, and the cases that must go
back to calling ``func`` per sample."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.func_batching import STATS

rng = np.random.default_rng(0)


def _t(*shape, requires_grad=False):
    return fw.tensor(rng.standard_normal(shape).astype(np.float32),
                     requires_grad=requires_grad)


def _loop(func, args, in_dims, out_dim=0):
    """The reference: ``func`` per sample, stacked."""
    size = next(a.shape[d] for a, d in zip(args, in_dims) if d is not None)
    outs = []
    for i in range(size):
        outs.append(func(*[a.select(d, i) if d is not None else a
                           for a, d in zip(args, in_dims)]))
    if isinstance(outs[0], tuple):
        return tuple(fw.stack([o[k] for o in outs], out_dim) for k in range(len(outs[0])))
    return fw.stack(outs, out_dim)


def _run(func, args, in_dims, out_dims=0):
    before = dict(STATS)
    got = fw.vmap(func, in_dims=in_dims, out_dims=out_dims)(*args)
    mode = {k: STATS[k] - before[k] for k in STATS}
    return got, mode


def _close(a, b, tol=1e-5):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert tuple(u.shape) == tuple(v.shape) and u.dtype == v.dtype
        np.testing.assert_allclose(u.detach().numpy(), v.detach().numpy(), rtol=tol,
                                   atol=tol)


W = _t(3, 4)
V = _t(4)
IMG_K = _t(2, 3, 3, 3)
TABLE = _t(6, 3)
U3 = _t(2, 4, 5)
IDX = fw.tensor([2, 0, 2])
IMG = _t(2, 2, 6, 6)
fw.manual_seed(0)
LSTM = nn.LSTM(3, 4, num_layers=2)
GRU = nn.GRU(3, 4, bidirectional=True)
RNN = nn.RNN(3, 4, batch_first=True)
Z3 = _t(2, 3, 4)

CASES = {
    "elementwise, broadcast against an unbatched weight": (
        lambda x: (x * V + 1.0).tanh() / (x.abs() + 2), [_t(5, 4)], [0]),
    "two mapped inputs of different ranks": (
        lambda x, y: fw.where(x > 0, x, y) ** 2, [_t(5, 3, 4), _t(5, 4)], [0, 0]),
    "reductions over dims, keepdim and all": (
        lambda x: (x.sum(0), x.mean(-1, keepdim=True), x.amax(), x.argmax(), x.std(1)),
        [_t(5, 3, 4)], [0]),
    "softmax, log_softmax, cumsum, argsort": (
        lambda x: (fw.softmax(x, -1), fw.log_softmax(x, 0), x.cumsum(1), x.argsort(1)),
        [_t(5, 3, 4)], [0]),
    "movement: reshape, permute, expand, slice, flip, cat, pad, triu": (
        lambda x: (x.reshape(-1), x.t(), x.expand(2, 3, 4), x[1:, ::2], x.flip(0),
                   fw.cat([x, W], 0), nn.functional.pad(x, (1, 2)), x.triu(1),
                   x.unsqueeze(0).squeeze(0).contiguous()),
        [_t(5, 3, 4)], [0]),
    "matmul, every rank pairing": (
        lambda a, b: (a @ W.t(), W.t() @ b[:3], a @ b[0], b[0] @ a, b @ a, a @ b.t(),
                      a @ V, V @ W.t(), b @ U3),
        [_t(5, 4), _t(5, 3, 4)], [0, 0]),
    "matmul with the unbatched operand first": (
        lambda a: (W @ a, V @ a, Z3 @ a, a.t() @ W.t()),
        [_t(5, 4, 3)], [0]),
    "einsum (with ellipsis) and linear layers": (
        lambda x: (fw.einsum("ij,jk->ik", x, W.t()), fw.einsum("...j,j->...", x, V),
                   nn.functional.linear(x, W, V[:3])),
        [_t(5, 2, 4)], [0]),
    "layer norm, gelu, embedding, gather, scatter_add": (
        lambda x, i: (nn.functional.layer_norm(x, (4,), V, V), nn.functional.gelu(x),
                      nn.functional.embedding(i, TABLE), fw.gather(x, 1, i[:, None] % 4),
                      fw.scatter_add(x, 1, i[:, None] % 4, x[:, :1])),
        [_t(5, 3, 4), fw.randint(0, 6, (5, 3))], [0, 0]),
    "conv2d and max_pool2d fold the batch into N": (
        lambda x: (nn.functional.conv2d(x, IMG_K, padding=1),
                   nn.functional.max_pool2d(x, 2), nn.functional.avg_pool2d(x, 2)),
        [_t(4, 2, 3, 6, 6)], [0]),
    "cross_entropy with per-sample and shared targets": (
        lambda x, y: (nn.functional.cross_entropy(x, y), nn.functional.cross_entropy(
            x, fw.tensor([1, 0, 3]), reduction="none")),
        [_t(5, 3, 4), fw.randint(0, 4, (5, 3))], [0, 0]),
    "LSTM, GRU and RNN layers with shared weights": (
        lambda x: (LSTM(x)[0], LSTM(x)[1][1], GRU(x)[1], RNN(x)[0]),
        [_t(4, 2, 5, 3)], [0]),
    "indexing with slices, ints and shared index tensors": (
        lambda x: (x[1:, ::2], x[IDX], x[:, IDX], x[1, IDX], x[IDX, 1:3]),
        [_t(5, 4, 6)], [0]),
    "index_put with slices and shared indices, plain and accumulating": (
        lambda x, v: (fw.zeros(4, 6).index_put((IDX,), v[:3], accumulate=True),
                      x.index_put((slice(None), IDX), v[:, :3] * 2.0),
                      fw.zeros(8, 6).index_put((slice(2, 6),), x)),
        [_t(5, 4, 6), _t(5, 4, 6)], [0, 0]),
    "conv2d with per-sample weights": (
        lambda x, w: nn.functional.conv2d(x, w, padding=1, groups=1),
        [_t(3, 2, 3, 5, 5), _t(3, 4, 3, 3, 3)], [0, 0]),
    "grouped conv2d with per-sample weights and a shared input": (
        lambda w: nn.functional.conv2d(IMG, w, stride=2, groups=2),
        [_t(3, 4, 1, 3, 3)], [0]),
    "complex numbers and the fft": (
        lambda x, z: (fw.fft.rfft(x).abs(), fw.fft.fft2(z).real, fw.fft.irfft(z, n=6),
                      fw.complex(x, x).conj().imag, fw.view_as_real(z * z).sum(-1),
                      fw.angle(fw.fft.fftn(z, dim=(-1,)))),
        [_t(3, 2, 6), fw.complex(_t(3, 2, 4), _t(3, 2, 4))], [0, 0]),
    "mapped dim other than 0, and an unmapped argument": (
        lambda x, y: x * y.sum(), [_t(3, 5, 4), _t(4)], [1, None]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_batched_matches_the_loop(name):
    func, args, in_dims = CASES[name]
    got, mode = _run(func, args, in_dims)
    _close(got, _loop(func, args, in_dims))
    assert mode["batched"] == 1 and mode["loop"] == 0, mode
    assert mode["per_sample_nodes"] == 0, mode


def test_out_dims_move_the_batch():
    x = _t(5, 3)
    got, mode = _run(lambda t: (t * 2, t.sum()), [x], [0], out_dims=(1, 0))
    ref = _loop(lambda t: (t * 2, t.sum()), [x], [0])
    _close(got, (ref[0].movedim(0, 1), ref[1]))
    assert mode["batched"] == 1
    got, _ = _run(lambda t: t * 2, [x], [0], out_dims=-1)
    _close(got, (x * 2).t())


def test_outputs_that_ignore_the_mapped_input_are_repeated():
    x = _t(5, 3)
    got, mode = _run(lambda t: (t + 1, W * 2), [x], [0])
    assert mode["batched"] == 1
    _close(got[1], (W * 2).unsqueeze(0).expand(5, 3, 4))
    got[1].add_(1)  # its own memory, not a view of one sample repeated
    np.testing.assert_allclose(got[1].numpy()[0], got[1].numpy()[1])


def test_ops_without_a_rule_run_per_sample():
    x = _t(4, 3, 5, 3)
    idx = fw.tensor([2, 0])
    func = lambda t: t[idx, :, idx] * 2  # noqa: E731  (split index tensors: no rule)
    got, mode = _run(func, [x], [0])
    _close(got, _loop(func, [x], [0]))
    assert mode["batched"] == 1 and mode["per_sample_nodes"] >= 1


_M = _t(5, 3, 3)
SPD = _M @ _M.transpose(-1, -2) + 3 * fw.eye(3)
RHS = _t(5, 3, 2)
LINALG = {
    "det, slogdet, inv, matrix_exp": lambda a, b: (
        fw.linalg.det(a), *fw.linalg.slogdet(a), fw.linalg.inv(a), fw.linalg.matrix_exp(a)),
    "solve with matrix, vector and shared right-hand sides": lambda a, b: (
        fw.linalg.solve(a, b), fw.linalg.solve(a, b[:, 0]), fw.linalg.solve(a, RHS[0])),
    "cholesky, qr, eigh, svd": lambda a, b: (
        fw.linalg.cholesky(a), fw.linalg.qr(a)[1].abs(), fw.linalg.eigh(a)[0],
        fw.linalg.svd(a)[1]),
    "triangular solve, lu_factor, the _ex variants": lambda a, b: (
        fw.linalg.solve_triangular(fw.linalg.cholesky(a), b, upper=False),
        fw.linalg.lu_factor(a)[0], fw.linalg.inv_ex(a)[0], fw.linalg.cholesky_ex(a)[0],
        fw.linalg.solve_ex(a, b)[0]),
}


@pytest.mark.parametrize("name", list(LINALG))
def test_linalg_ops_treat_the_batch_as_a_batch_dim(name):
    got, mode = _run(LINALG[name], [SPD, RHS], [0, 0])
    _close(got, _loop(LINALG[name], [SPD, RHS], [0, 0]), tol=1e-4)
    assert mode["batched"] == 1 and mode["per_sample_nodes"] == 0, mode


def test_per_sample_gradients_through_fw_grad_are_batched():
    w = _t(3, 4)
    b = _t(3)

    def loss(w, b, x, y):
        return ((x @ w.t() + b - y) ** 2).mean()

    xs, ys = _t(6, 4), _t(6, 3)
    per_sample = fw.vmap(fw.grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))
    before = STATS["batched"]
    gw, gb = per_sample(w, b, xs, ys)
    assert STATS["batched"] == before + 1
    for i in range(6):
        rw, rb = fw.grad(loss, argnums=(0, 1))(w, b, xs[i], ys[i])
        np.testing.assert_allclose(gw[i].numpy(), rw.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gb[i].numpy(), rb.numpy(), rtol=1e-5, atol=1e-6)


def test_jacrev_and_hessian_agree_with_their_definitions():
    x = _t(4)

    def f(t):
        return (t.sin() * t).sum() + (t @ W.t()).square().sum()

    h = fw.func.hessian(f)(x)
    eps = 1e-3
    xs = x.numpy().astype(np.float64)

    def grad_np(v):
        return fw.grad(f)(fw.tensor(v.astype(np.float32))).numpy().astype(np.float64)
    fd = np.stack([(grad_np(xs + eps * e) - grad_np(xs - eps * e)) / (2 * eps)
                   for e in np.eye(4)])
    np.testing.assert_allclose(h.numpy(), fd, rtol=2e-2, atol=2e-2)
    j = fw.func.jacrev(lambda t: t @ W.t())(x)
    np.testing.assert_allclose(j.numpy(), W.numpy(), rtol=1e-6)


def test_autograd_flows_through_a_batched_call():
    w = _t(3, 4, requires_grad=True)
    x = _t(5, 4, requires_grad=True)
    fw.vmap(lambda t: (w @ t).tanh().sum())(x).sum().backward()
    w2 = w.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    (x2 @ w2.t()).tanh().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_nested_vmap():
    x = _t(3, 4, 5)
    got = fw.vmap(fw.vmap(lambda t: (t * V[:, None].sum()).exp()))(x)
    _close(got, (x * V.sum()).exp())


def test_functions_that_cannot_be_traced_fall_back_to_the_loop():
    x = _t(5, 3)

    def data_dependent(t):
        return t * 2 if float(t.sum()) > 0 else t - 1
    got, mode = _run(data_dependent, [x], [0])
    _close(got, _loop(data_dependent, [x], [0]))
    assert mode["loop"] == 1 and mode["batched"] == 0


def test_random_draws_follow_the_randomness_mode():
    x = _t(4, 3)
    with pytest.raises(fw.errors.TransformError, match="randomness"):
        fw.vmap(lambda t: t + fw.randn(3))(x)
    before = STATS["batched"]
    # 'different': one draw per sample, the numbers the loop over samples draws
    fw.manual_seed(5)
    got = fw.vmap(lambda t: t * 0 + fw.randn(3), randomness="different")(x)
    fw.manual_seed(5)
    np.testing.assert_array_equal(got.numpy(), fw.stack([fw.randn(3) for _ in range(4)]))
    # 'same': one draw shared by every sample; the generator advances by one draw
    fw.manual_seed(5)
    got = fw.vmap(lambda t: t * 0 + fw.rand(3), randomness="same")(x)
    after = fw.rand(2)
    fw.manual_seed(5)
    np.testing.assert_array_equal(got.numpy(), fw.rand(3).expand(4, 3).numpy())
    np.testing.assert_array_equal(after.numpy(), fw.rand(2).numpy())
    assert STATS["batched"] == before + 2
    # dropout inside a batched vmap draws a different mask per sample
    masks = fw.vmap(lambda t: nn.functional.dropout(t * 0 + 1, 0.5),
                    randomness="different")(fw.ones(64, 32))
    assert not all(np.array_equal(masks.numpy()[0], m) for m in masks.numpy()[1:])


def test_keyword_and_container_arguments_are_batched_too():
    x = _t(5, 3)
    got, mode = _run(lambda t, pair: t * pair[0] + pair[1], [x, (V[:3], V[:3])], [0, None])
    _close(got, x * V[:3] + V[:3])
    assert mode["batched"] == 1
    before = STATS["batched"]
    got = fw.vmap(lambda d, bias=None: d["a"] @ d["b"] + bias,
                  in_dims=({"a": 0, "b": None},))({"a": x, "b": W[:, :3].t()}, bias=V[:3])
    _close(got, x @ W[:, :3].t() + V[:3])
    assert STATS["batched"] == before + 1


def test_model_ensembles_with_stack_module_state_run_batched():
    from framework.func import functional_call, stack_module_state
    fw.manual_seed(3)
    models = [nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)) for _ in range(3)]
    params, buffers = stack_module_state(models)
    assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].requires_grad
    assert params["0.weight"].grad_fn is None  # new leaves
    x = _t(5, 4)
    base = models[0]
    before = STATS["batched"]
    out = fw.vmap(lambda p, b, t: functional_call(base, (p, b), (t,)),
                  in_dims=(0, 0, None))(params, buffers, x)
    assert STATS["batched"] == before + 1
    _close(out, fw.stack([m(x) for m in models]))
    out.square().sum().backward()
    assert params["2.bias"].grad.shape == (3, 2)
    ref = [m(x).square().sum() for m in models]
    for i, r in enumerate(ref):
        r.backward()
        np.testing.assert_allclose(params["2.bias"].grad.numpy()[i],
                                   models[i][2].bias.grad.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(fw.errors.ArgumentError, match="same class"):
        stack_module_state([nn.Linear(2, 2), nn.Tanh()])


def test_the_trace_is_reused_across_calls():
    calls = []

    def f(t):
        calls.append(1)
        return t * 2
    mapped = fw.vmap(f)
    mapped(_t(5, 3))
    mapped(_t(5, 3))
    assert len(calls) == 1  # traced once, as torch.vmap calls func once per call
    mapped(_t(5, 2))
    assert len(calls) == 2  # a new per-sample shape is a new trace


def test_a_rebound_closure_variable_is_traced_again():
    # the cached trace holds the tensors and numbers it read: a rebinding must not leave
    # vmap (or fw.grad) computing with the old ones
    class Holder:
        pass
    h = Holder()
    h.w = fw.tensor([1.0, 2.0])
    scale = 2.0
    mapped = fw.vmap(lambda t: t * h.w * scale)
    np.testing.assert_array_equal(mapped(fw.ones(3, 2)).numpy(), [[2.0, 4.0]] * 3)
    h.w = fw.tensor([3.0, 4.0])
    np.testing.assert_array_equal(mapped(fw.ones(3, 2)).numpy(), [[6.0, 8.0]] * 3)
    scale = 0.5  # noqa: F841  (read by the lambda through its closure cell)
    np.testing.assert_array_equal(mapped(fw.ones(3, 2)).numpy(), [[1.5, 2.0]] * 3)
    w = fw.tensor([1.0, 2.0])
    g = fw.grad(lambda t: (t * w).sum())
    np.testing.assert_array_equal(g(fw.ones(2)).numpy(), [1.0, 2.0])
    w = fw.tensor([5.0, 7.0])  # noqa: F841
    np.testing.assert_array_equal(g(fw.ones(2)).numpy(), [5.0, 7.0])


def test_modules_passed_as_arguments_are_keyed_by_identity():
    fw.manual_seed(0)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)   # equal reprs, different parameters
    mapped = fw.vmap(lambda m, t: m(t), in_dims=(None, 0))
    x = _t(4, 3)
    _close(mapped(a, x), a(x))
    _close(mapped(b, x), b(x))
    a.weight = nn.Parameter(fw.zeros(2, 3))  # a parameter replaced: traced again
    _close(mapped(a, x), a(x))


def test_per_sample_gradients_of_a_cnn_are_batched():
    fw.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(3 * 2 * 2, 2))
    from framework.func import functional_call, grad
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, x, y):
        return nn.functional.cross_entropy(functional_call(net, p, (x[None],)), y[None])
    xs, ys = _t(4, 2, 4, 4), fw.randint(0, 2, (4,))
    before = dict(STATS)
    got = fw.vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)
    assert STATS["batched"] == before["batched"] + 1
    assert STATS["per_sample_nodes"] == before["per_sample_nodes"]
    for i in range(4):
        ref = grad(loss)(params, xs[i], ys[i])
        for k in params:
            np.testing.assert_allclose(got[k][i].numpy(), ref[k].numpy(), rtol=1e-4,
                                       atol=1e-5)


def test_chunk_size_evaluates_in_chunks_with_the_same_values():
    x, y = _t(7, 4), _t(7, 3, 4)
    func = lambda a, b: ((b @ a).tanh(), a.sum())  # noqa: E731
    full = fw.vmap(func)(x, y)
    before = STATS["batched"]
    chunked = fw.vmap(func, chunk_size=3)(x, y)
    assert STATS["batched"] == before + 3          # chunks of 3, 3 and 1 samples
    _close(chunked, full)
    _close(fw.vmap(func, chunk_size=1, out_dims=(1, 0))(x, y)[0], full[0].movedim(0, 1))
    same = fw.vmap(lambda a: a * 0 + fw.rand(4), randomness="same", chunk_size=2)(x)
    assert all(np.array_equal(same.numpy()[0], r) for r in same.numpy())
    j = fw.func.jacrev(lambda t: (W @ t).sin(), chunk_size=2)(V)
    _close(j, fw.func.jacrev(lambda t: (W @ t).sin())(V))
