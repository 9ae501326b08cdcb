"""Core layers and activations against NumPy formulas (forward) and finite differences
(gradients, float64)."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.autograd import gradcheck
from framework.errors import ArgumentError, FwIndexError, ShapeError
from framework.nn import functional as F

RNG = np.random.default_rng(1234)


def t64(a, grad=True):
    return fw.tensor(np.asarray(a, np.float64), requires_grad=grad)


def arr(x):
    return x.detach().numpy()


def np_erf(x):
    return np.vectorize(math.erf)(x)


def np_softplus(x):
    return np.logaddexp(0, x)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


SELU_A, SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (framework function, numpy reference)
ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "relu6": (F.relu6, lambda x: np.clip(x, 0, 6)),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "elu": (lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(x))),
    "selu": (F.selu, lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x))),
    "celu": (lambda x: F.celu(x, 0.7),
             lambda x: np.maximum(x, 0) + np.minimum(0, 0.7 * np.expm1(x / 0.7))),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + np_erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                                   (x + 0.044715 * x ** 3)))),
    "silu": (F.silu, lambda x: x * np_sigmoid(x)),
    "mish": (F.mish, lambda x: x * np.tanh(np_softplus(x))),
    "sigmoid": (F.sigmoid, np_sigmoid),
    "tanh": (F.tanh, np.tanh),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                 lambda x: np.where(2 * x > 3, x, np_softplus(2 * x) / 2)),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x))),
    "logsigmoid": (F.logsigmoid, lambda x: -np_softplus(-x)),
    "softmax": (lambda x: F.softmax(x, dim=1),
                lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    "log_softmax": (lambda x: F.log_softmax(x, dim=-1),
                    lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    "glu": (lambda x: F.glu(x, dim=1), lambda x: x[:, :2] * np_sigmoid(x[:, 2:])),
    "tanhshrink": (F.tanhshrink, lambda x: x - np.tanh(x)),
}


def _act_input():
    # avoid the kinks (|x| near 0, +-3, 6, thresholds) where finite differences are invalid
    x = RNG.uniform(-4, 4, size=(3, 4))
    for kink in (0.0, 3.0, -3.0, 0.7, -0.5, 1.5):
        x = np.where(np.abs(x - kink) < 0.05, x + 0.2, x)
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_and_grad(name):
    fn, ref = ACTIVATIONS[name]
    x = _act_input()
    np.testing.assert_allclose(arr(fn(fw.tensor(x))), ref(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(arr(fn(fw.tensor(x, dtype=fw.float32))), ref(x), rtol=2e-5,
                               atol=2e-6)
    assert gradcheck(fn, (t64(x),))


def test_activation_gradients_at_kinks_match_pytorch():
    x = t64([0.0, -3.0, 3.0])
    F.softplus(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np_sigmoid(arr(x)), rtol=1e-12)
    x = t64([0.0])
    F.logsigmoid(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5])
    x = t64([60.0, -60.0])  # no nan from the discarded branch
    for fn in (F.elu, F.selu, F.celu, F.mish, F.softplus, F.logsigmoid):
        x.grad = None
        fn(x).sum().backward()
        assert np.all(np.isfinite(x.grad.numpy())), fn.__name__


def test_activation_modules_and_inplace():
    x = fw.tensor([-1.0, 2.0])
    for mod, want in [(nn.ReLU(), [0, 2]), (nn.ReLU6(), [0, 2]), (nn.LeakyReLU(), [-0.01, 2]),
                      (nn.Hardtanh(), [-1, 1]), (nn.ELU(), [math.expm1(-1), 2]),
                      (nn.Threshold(0.5, 9.0), [9, 2]), (nn.Softshrink(0.5), [-0.5, 1.5]),
                      (nn.Hardshrink(1.5), [0, 2])]:
        np.testing.assert_allclose(arr(mod(x)), want, rtol=1e-6, err_msg=repr(mod))
    y = fw.tensor([-1.0, 2.0])
    out = nn.ReLU(inplace=True)(y)
    assert out is y and y.tolist() == [0.0, 2.0]
    leaf = fw.tensor([1.0], requires_grad=True)
    with pytest.raises(fw.AutogradError):
        F.relu(leaf, inplace=True)
    # in-place on a non-leaf keeps the gradient flowing
    a = fw.tensor([-1.0, 2.0], requires_grad=True)
    h = a * 1.0
    F.relu_(h).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0]
    with pytest.raises(ShapeError, match="even"):
        F.glu(fw.zeros(2, 3))


def test_prelu():
    m = nn.PReLU(num_parameters=3)
    assert m.weight.tolist() == [0.25] * 3 and repr(m) == "PReLU(num_parameters=3)"
    x = RNG.standard_normal((2, 3, 4))
    w = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(arr(F.prelu(fw.tensor(x), fw.tensor(w))),
                               np.where(x > 0, x, x * w[:, None]))
    assert gradcheck(lambda a, b: F.prelu(a, b), (t64(x), t64(w)))
    with pytest.raises(ShapeError, match="channel"):
        F.prelu(fw.zeros(2, 4), fw.zeros(3))


# -- linear -------------------------------------------------------------------------------
def test_linear_and_bilinear():
    x, w, b = RNG.standard_normal((2, 5, 3)), RNG.standard_normal((4, 3)), RNG.standard_normal(4)
    np.testing.assert_allclose(arr(F.linear(fw.tensor(x), fw.tensor(w), fw.tensor(b))),
                               x @ w.T + b, rtol=1e-12)
    assert gradcheck(F.linear, (t64(x[0]), t64(w), t64(b)))
    x1, x2 = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 4))
    bw, bb = RNG.standard_normal((5, 2, 4)), RNG.standard_normal(5)
    np.testing.assert_allclose(arr(F.bilinear(fw.tensor(x1), fw.tensor(x2), fw.tensor(bw),
                                              fw.tensor(bb))),
                               np.einsum("ni,oij,nj->no", x1, bw, x2) + bb, rtol=1e-12)
    assert gradcheck(F.bilinear, (t64(x1), t64(x2), t64(bw), t64(bb)))
    m = nn.Bilinear(2, 4, 5)
    assert m(fw.randn(3, 2), fw.randn(3, 4)).shape == (3, 5)
    with pytest.raises(ShapeError, match="linear"):
        nn.Linear(3, 2)(fw.zeros(4, 2))


def test_default_inits_are_pytorch_bounds():
    lin = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)  # kaiming_uniform_(a=sqrt(5)) gives 1/sqrt(fan_in) as well
    w = arr(lin.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    assert np.abs(arr(lin.bias)).max() <= bound
    bl = nn.Bilinear(16, 3, 30)
    assert np.abs(arr(bl.weight)).max() <= 0.25
    emb = nn.Embedding(200, 30)
    assert abs(arr(emb.weight).std() - 1) < 0.05
    fw.manual_seed(7)
    a = arr(nn.Linear(4, 3).weight).copy()
    fw.manual_seed(7)
    np.testing.assert_array_equal(a, arr(nn.Linear(4, 3).weight))


def test_identity_flatten_unflatten():
    x = fw.randn(2, 3, 4)
    assert nn.Identity(5, foo=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    u = nn.Unflatten(1, (2, 6))
    assert u(fw.randn(2, 12)).shape == (2, 2, 6)
    assert repr(u) == "Unflatten(dim=1, unflattened_size=(2, 6))"


# -- normalization ----------------------------------------------------------------------
def np_bn_train(x, w, b, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = x.mean(axes), x.var(axes)
    return (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + \
        b.reshape(shape), mu, x.var(axes, ddof=1)


def test_batchnorm_training_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.3).double()
    with fw.no_grad():
        bn.weight.copy_(fw.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(fw.tensor([0.0, -1.0, 1.0]))
    x = RNG.standard_normal((4, 3, 2, 5)) * 3 + 1
    out = bn(fw.tensor(x))
    want, mu, uvar = np_bn_train(x, np.array([1, 2, 0.5]), np.array([0, -1, 1.0]), 1e-5)
    np.testing.assert_allclose(arr(out), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(arr(bn.running_mean), 0.3 * mu, rtol=1e-12)
    np.testing.assert_allclose(arr(bn.running_var), 0.7 + 0.3 * uvar, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    rm, rv = arr(bn.running_mean).copy(), arr(bn.running_var).copy()
    out = bn(fw.tensor(x))
    shape = (1, 3, 1, 1)
    np.testing.assert_allclose(
        arr(out), (x - rm.reshape(shape)) / np.sqrt(rv.reshape(shape) + 1e-5) *
        np.array([1, 2, 0.5]).reshape(shape) + np.array([0, -1, 1.0]).reshape(shape),
        rtol=1e-10)
    assert int(bn.num_batches_tracked) == 1  # eval does not count
    np.testing.assert_array_equal(arr(bn.running_mean), rm)


def test_batchnorm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None).double()
    xs = [RNG.standard_normal((5, 2)) for _ in range(3)]
    for x in xs:
        bn(fw.tensor(x))
    np.testing.assert_allclose(arr(bn.running_mean), np.mean([x.mean(0) for x in xs], 0),
                               rtol=1e-10)
    np.testing.assert_allclose(arr(bn.running_var),
                               np.mean([x.var(0, ddof=1) for x in xs], 0), rtol=1e-10)
    bn3 = nn.BatchNorm1d(2, track_running_stats=False).double()
    assert bn3.running_mean is None and "running_mean" not in bn3.state_dict()
    bn3.eval()  # no running stats: batch statistics even in eval mode
    x = RNG.standard_normal((6, 2, 3))
    want, _, _ = np_bn_train(x, np.ones(2), np.zeros(2), 1e-5)
    np.testing.assert_allclose(arr(bn3(fw.tensor(x))), want, rtol=1e-10)
    with pytest.raises(ShapeError, match="expected 2D or 3D input"):
        bn3(fw.zeros(2, 2, 2, 2))
    with pytest.raises(ArgumentError, match="more than 1 value per channel"):
        nn.BatchNorm1d(2)(fw.zeros(1, 2))


def test_batchnorm_grad():
    x, w, b = RNG.standard_normal((3, 2, 2)), RNG.standard_normal(2), RNG.standard_normal(2)
    rm, rv = fw.zeros(2, dtype=fw.float64), fw.ones(2, dtype=fw.float64)
    assert gradcheck(lambda a, c, d: F.batch_norm(a, None, None, c, d, training=True),
                     (t64(x), t64(w), t64(b)))
    assert gradcheck(lambda a, c, d: F.batch_norm(a, rm, rv, c, d, training=False),
                     (t64(x), t64(w), t64(b)))


def test_layer_norm():
    x = RNG.standard_normal((2, 3, 4))
    w, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    mu = x.mean((1, 2), keepdims=True)
    var = x.var((1, 2), keepdims=True)
    want = (x - mu) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(arr(F.layer_norm(fw.tensor(x), (3, 4), fw.tensor(w),
                                                fw.tensor(b))), want, rtol=1e-10)
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (3, 4), c, d), (t64(x), t64(w), t64(b)))
    assert gradcheck(lambda a: F.layer_norm(a, 4), (t64(x),))
    ln = nn.LayerNorm(4, bias=False)
    assert ln.bias is None and list(ln.state_dict()) == ["weight"]
    y = ln(fw.tensor(x, dtype=fw.float32))
    np.testing.assert_allclose(arr(y), (x - x.mean(-1, keepdims=True)) /
                               np.sqrt(x.var(-1, keepdims=True) + 1e-5), rtol=1e-4, atol=1e-5)
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    with pytest.raises(ShapeError, match="normalized_shape"):
        F.layer_norm(fw.zeros(2, 3), (4,))


def test_group_norm_and_instance_norm():
    x = RNG.standard_normal((2, 6, 3, 2))
    w, b = RNG.standard_normal(6), RNG.standard_normal(6)
    g = x.reshape(2, 3, -1)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    ref = ref.reshape(x.shape) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(arr(F.group_norm(fw.tensor(x), 3, fw.tensor(w), fw.tensor(b))),
                               ref, rtol=1e-10)
    assert gradcheck(lambda a, c, d: F.group_norm(a, 3, c, d), (t64(x), t64(w), t64(b)))
    with pytest.raises(ArgumentError, match="divisible"):
        nn.GroupNorm(4, 6)
    inorm = nn.InstanceNorm2d(6)
    assert repr(inorm) == ("InstanceNorm2d(6, eps=1e-05, momentum=0.1, affine=False, "
                           "track_running_stats=False)")
    ref_in = (x - x.mean((2, 3), keepdims=True)) / np.sqrt(x.var((2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(arr(inorm(fw.tensor(x))), ref_in, rtol=1e-10)
    np.testing.assert_allclose(arr(inorm(fw.tensor(x[0]))), ref_in[0], rtol=1e-10)
    assert gradcheck(lambda a: F.instance_norm(a), (t64(x[:, :2]),))
    tracked = nn.InstanceNorm2d(6, track_running_stats=True, affine=True).double()
    tracked(fw.tensor(x))
    inst_var = x.var((2, 3), ddof=1).mean(0)
    np.testing.assert_allclose(arr(tracked.running_mean), 0.1 * x.mean((2, 3)).mean(0),
                               rtol=1e-10)
    np.testing.assert_allclose(arr(tracked.running_var), 0.9 + 0.1 * inst_var, rtol=1e-10)


def test_rms_norm():
    x, w = RNG.standard_normal((3, 5)), RNG.standard_normal(5)
    want = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(arr(F.rms_norm(fw.tensor(x), (5,), fw.tensor(w), 1e-6)), want,
                               rtol=1e-10)
    assert gradcheck(lambda a, c: F.rms_norm(a, 5, c), (t64(x), t64(w)))
    m = nn.RMSNorm(5)
    assert repr(m) == "RMSNorm((5,), eps=None, elementwise_affine=True)"
    eps32 = np.finfo(np.float32).eps
    np.testing.assert_allclose(arr(m(fw.tensor(x, dtype=fw.float32))),
                               x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps32), rtol=1e-5)


# -- dropout -----------------------------------------------------------------------------
def test_dropout():
    x = fw.ones(200, 100)
    d = nn.Dropout(0.3)
    y = arr(d(x))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    assert d(x) is x
    assert np.all(arr(F.dropout(x, 1.0)) == 0)
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        nn.Dropout(1.5)
    a = fw.ones(4, 5, requires_grad=True)
    out = F.dropout(a, 0.5)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), arr(out))  # grad = mask / (1 - p)


def test_dropout2d_zeroes_whole_channels():
    y = arr(nn.Dropout2d(0.5)(fw.ones(8, 16, 3, 3)))
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0.2 < (per_channel == 0).all(-1).mean() < 0.8
    with pytest.warns(UserWarning, match=r"\(N, C, L\)"):
        y3 = arr(F.dropout2d(fw.ones(4, 8, 5)))  # PyTorch reads 3-D as (N, C, L)
    assert np.all((y3 == 0).all(-1) | (y3 == 2).all(-1))
    assert 0 < (y3 == 0).all(-1).mean() < 1
    y1 = arr(F.dropout1d(fw.ones(16, 5)))  # unbatched (C, L)
    assert np.all((y1 == 0).all(-1) | (y1 == 2).all(-1))
    with pytest.raises(ShapeError, match="2D or 3D"):
        F.dropout1d(fw.ones(2, 2, 2, 2))


# -- embedding -----------------------------------------------------------------------------
def test_embedding_forward_grad_and_padding():
    emb = nn.Embedding(6, 3, padding_idx=2).double()
    assert np.all(arr(emb.weight)[2] == 0)
    idx = fw.tensor([[0, 2, 5], [2, 2, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(arr(out), arr(emb.weight)[idx.numpy()])
    out.sum().backward()
    g = emb.weight.grad.numpy()
    np.testing.assert_array_equal(g[:, 0], [1, 1, 0, 0, 0, 1])  # padding row: zero grad
    w = t64(RNG.standard_normal((6, 3)))
    assert gradcheck(lambda ww: F.embedding(idx, ww), (w,))
    neg = nn.Embedding(4, 2, padding_idx=-1)
    assert neg.padding_idx == 3 and repr(neg) == "Embedding(4, 2, padding_idx=3)"
    with pytest.raises(FwIndexError, match="out of range"):
        emb(fw.tensor([6]))
    with pytest.raises(FwIndexError, match="-1"):
        emb(fw.tensor([-1]))
    with pytest.raises(ArgumentError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)


def test_embedding_from_pretrained():
    table = fw.tensor([[1.0, 2.0], [3.0, 4.0]])
    e = nn.Embedding.from_pretrained(table)
    assert not e.weight.requires_grad and e(fw.tensor([1])).tolist() == [[3.0, 4.0]]
    e2 = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert e2.weight.requires_grad and e2.padding_idx == 0
    with pytest.raises(ShapeError):
        nn.Embedding.from_pretrained(fw.zeros(3))


def test_functional_vector_utils():
    x1, x2 = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    cos = (x1 * x2).sum(1) / (np.linalg.norm(x1, axis=1) * np.linalg.norm(x2, axis=1))
    np.testing.assert_allclose(arr(F.cosine_similarity(fw.tensor(x1), fw.tensor(x2))), cos,
                               rtol=1e-10)
    assert gradcheck(lambda a, b: F.cosine_similarity(a, b, dim=1), (t64(x1), t64(x2)))
    np.testing.assert_allclose(arr(F.pairwise_distance(fw.tensor(x1), fw.tensor(x2))),
                               np.linalg.norm(x1 - x2 + 1e-6, axis=1), rtol=1e-10)
    np.testing.assert_allclose(arr(F.pairwise_distance(fw.tensor(x1), fw.tensor(x2), p=1)),
                               np.abs(x1 - x2 + 1e-6).sum(1), rtol=1e-10)
    np.testing.assert_allclose(arr(F.normalize(fw.tensor(x1), dim=1)),
                               x1 / np.linalg.norm(x1, axis=1, keepdims=True), rtol=1e-10)
    assert gradcheck(lambda a: F.normalize(a, dim=0), (t64(x1),))
    assert F.one_hot(fw.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.pad(fw.ones(1, 2), (1, 1)).tolist() == [[0.0, 1.0, 1.0, 0.0]]


def test_embedding_max_norm_and_scale_grad_by_freq():
    w = fw.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    out = F.embedding(fw.tensor([0, 1]), w, max_norm=1.0)
    np.testing.assert_allclose(arr(w)[0], [0.6, 0.8], rtol=1e-6)   # renormalized in place
    np.testing.assert_allclose(arr(w)[1], [0.3, 0.4])               # under the limit
    np.testing.assert_allclose(arr(w)[2], [6.0, 8.0])               # not looked up
    np.testing.assert_allclose(arr(out), arr(w)[:2], rtol=1e-6)
    e = nn.Embedding(4, 2, scale_grad_by_freq=True)
    e(fw.tensor([1, 1, 1, 2])).sum().backward()
    np.testing.assert_allclose(e.weight.grad.numpy(), [[0, 0], [1, 1], [1, 1], [0, 0]])
    assert repr(e) == "Embedding(4, 2, scale_grad_by_freq=True)"


def test_embedding_bag():
    w = RNG.standard_normal((10, 3))
    inp = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    bags = [[1, 2, 4], [5, 4, 3, 2, 9], []]
    offsets = fw.tensor([0, 3, 8])
    ref = {"sum": lambda b: w[b].sum(0) if b else np.zeros(3),
           "mean": lambda b: w[b].mean(0) if b else np.zeros(3),
           "max": lambda b: w[b].max(0) if b else np.zeros(3)}
    for mode, fn in ref.items():
        out = F.embedding_bag(fw.tensor(inp), fw.tensor(w), offsets, mode=mode)
        np.testing.assert_allclose(arr(out), np.stack([fn(b) for b in bags]), rtol=1e-12)
        assert gradcheck(lambda ww: F.embedding_bag(fw.tensor(inp), ww, offsets, mode=mode),
                         (t64(w),))
    last = F.embedding_bag(fw.tensor(inp), fw.tensor(w), fw.tensor([0, 3, 8]), mode="sum",
                           include_last_offset=True)
    np.testing.assert_allclose(arr(last), np.stack([w[b].sum(0) for b in bags[:2]]))
    psw = RNG.uniform(0.5, 2, size=8)
    out = F.embedding_bag(fw.tensor(inp), fw.tensor(w), offsets, mode="sum",
                          per_sample_weights=fw.tensor(psw))
    np.testing.assert_allclose(arr(out)[1], (w[inp[3:]] * psw[3:, None]).sum(0), rtol=1e-12)
    two_d = np.array([[1, 0, 2], [0, 0, 0]])
    bag = nn.EmbeddingBag.from_pretrained(fw.tensor(w), mode="mean", padding_idx=0)
    np.testing.assert_allclose(arr(bag(fw.tensor(two_d))), [w[[1, 2]].mean(0), np.zeros(3)],
                               rtol=1e-12)
    assert repr(bag) == "EmbeddingBag(10, 3, mode=mean, padding_idx=0)"
    with pytest.raises(ArgumentError, match="mode='sum'"):
        F.embedding_bag(fw.tensor(inp), fw.tensor(w), offsets, per_sample_weights=fw.ones(8))
    with pytest.raises(ArgumentError, match="offsets"):
        F.embedding_bag(fw.tensor(inp), fw.tensor(w))


def test_core_layers_export_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(approximate="tanh"),
                          nn.BatchNorm1d(8), nn.SiLU(), nn.Dropout(0.2), nn.Linear(8, 3),
                          nn.LogSoftmax(dim=1))
    with fw.no_grad():
        model[3].running_mean.normal_()
    model.eval()
    x = fw.randn(5, 4)
    path = str(tmp_path / "core.onnx")
    fw.onnx.export(model, x, path)
    sess = ort.InferenceSession(path)
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, arr(model(x)), rtol=1e-5, atol=1e-5)
    emb = nn.Embedding(10, 4)
    idx = fw.tensor([[1, 2], [3, 9]])
    fw.onnx.export(emb, idx, path)
    sess = ort.InferenceSession(path)
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: idx.numpy()})[0],
                               arr(emb(idx)))


def test_vectorized_erf_matches_math_erf():
    from framework.backends.cpu_nn import erf_f64
    xs = np.concatenate([np.linspace(-9, 9, 20001), np.geomspace(1e-300, 1, 200),
                         [0.0, -0.0, 0.46875, 4.0, np.inf, -np.inf]])
    ref = np.array([math.erf(v) for v in xs])
    np.testing.assert_allclose(erf_f64(xs), ref, rtol=2e-15, atol=0)
    assert np.isnan(erf_f64(np.array([np.nan]))[0])
