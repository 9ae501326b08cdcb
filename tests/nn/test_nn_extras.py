"""PairwiseDistance, CosineSimilarity, Softmax2d, LPPool1d/2d/3d, gumbel_softmax, RReLU,
AlphaDropout, FeatureAlphaDropout, MultiLabelMarginLoss, TripletMarginWithDistanceLoss and
CrossMapLRN2d: values against NumPy formulas, gradients (gradcheck), reproducibility under
fw.manual_seed, statistics, errors, compile and ONNX."""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.autograd import gradcheck
from framework.errors import ArgumentError, DTypeError, FwIndexError, ShapeError

F = nn.functional
R = np.random.default_rng(0)
SELU_NEG = 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717


def _np(t):
    return t.detach().numpy()


def _t(a, requires_grad=False):
    return fw.tensor(np.asarray(a), requires_grad=requires_grad)


# -- distances and Softmax2d -----------------------------------------------------------------
def test_pairwise_distance_and_cosine_similarity_modules():
    a, b = R.standard_normal((4, 5)), R.standard_normal((4, 5))
    pd = nn.PairwiseDistance(p=3.0, eps=1e-6, keepdim=True)
    assert pd.norm == 3.0
    want = (np.abs(a - b + 1e-6) ** 3).sum(-1, keepdims=True) ** (1 / 3)
    np.testing.assert_allclose(_np(pd(_t(a), _t(b))), want, rtol=1e-10)
    cs = nn.CosineSimilarity(dim=0, eps=1e-8)
    want = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
    np.testing.assert_allclose(_np(cs(_t(a), _t(b))), want, rtol=1e-10)


def test_softmax2d():
    x = R.standard_normal((2, 3, 4, 5))
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(_np(nn.Softmax2d()(_t(x))), e / e.sum(1, keepdims=True),
                               rtol=1e-10)
    np.testing.assert_allclose(_np(nn.Softmax2d()(_t(x[0]))), (e / e.sum(1, keepdims=True))[0],
                               rtol=1e-10)
    with pytest.raises(ShapeError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(fw.randn(3, 4))


# -- LPPool -------------------------------------------------------------------------------
def _lp_ref(x, p, k, s, ceil_mode):
    """(sum over the window of x^p * k / window_len)^(1/p), windows clipped at the end."""
    nd = len(k)
    sizes = x.shape[-nd:]
    outs = []
    for n, kk, ss in zip(sizes, k, s):
        o = (math.ceil if ceil_mode else math.floor)((n - kk) / ss) + 1
        if ceil_mode and (o - 1) * ss >= n:
            o -= 1
        outs.append(o)
    res = np.zeros(x.shape[:-nd] + tuple(outs))
    for idx in np.ndindex(*outs):
        sl = tuple(slice(i * ss, min(i * ss + kk, n)) for i, ss, kk, n in zip(idx, s, k, sizes))
        win = x[(...,) + sl] ** p
        count = np.prod([w.stop - w.start for w in sl])
        avg = win.reshape(win.shape[:-nd] + (-1,)).sum(-1) / count
        res[(...,) + idx] = (np.sign(avg) * np.maximum(np.abs(avg), 0) * np.prod(k)) ** (1 / p)
    return res


@pytest.mark.parametrize("nd,p,k,s,ceil", [
    (1, 2.0, 3, None, False), (1, 1.5, 2, 1, True), (2, 2.0, 2, None, False),
    (2, 3.0, (2, 3), (1, 2), True), (3, 2.0, 2, 1, False)])
def test_lp_pool_matches_reference(nd, p, k, s, ceil):
    x = np.abs(R.standard_normal((2, 3) + (5,) * nd)) + 0.1
    cls = {1: nn.LPPool1d, 2: nn.LPPool2d, 3: nn.LPPool3d}[nd]
    m = cls(p, k, s, ceil_mode=ceil)
    kk = (k,) * nd if isinstance(k, int) else k
    ss = kk if s is None else ((s,) * nd if isinstance(s, int) else s)
    np.testing.assert_allclose(_np(m(_t(x))), _lp_ref(x, p, kk, ss, ceil), rtol=1e-10)
    assert repr(m) == f"{cls.__name__}(norm_type={p}, kernel_size={k}, stride={s}, " \
                      f"ceil_mode={ceil})"


def test_lp_pool_gradcheck_and_odd_power():
    x = _t(np.abs(R.standard_normal((1, 2, 6))) + 0.2, requires_grad=True)
    assert gradcheck(lambda t: F.lp_pool1d(t, 2.0, 2), (x,))
    y = _t(np.abs(R.standard_normal((1, 1, 4, 4))) + 0.2, requires_grad=True)
    assert gradcheck(lambda t: F.lp_pool2d(t, 3.0, 2, 1), (y,))
    # p = 1 is sum pooling, negative values included
    out = F.lp_pool1d(_t(np.array([[[-1.0, -2.0, 4.0]]])), 1.0, 2, 1)
    np.testing.assert_allclose(_np(out), [[[-3.0, 2.0]]])


# -- gumbel_softmax ----------------------------------------------------------------------
def test_gumbel_softmax_reproducible_normalized_and_distributed():
    logits = _t(np.log(np.array([0.2, 0.5, 0.3]))[None].repeat(20000, 0))
    fw.manual_seed(7)
    a = F.gumbel_softmax(logits, tau=0.5)
    fw.manual_seed(7)
    b = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_array_equal(_np(a), _np(b))
    np.testing.assert_allclose(_np(a).sum(-1), 1.0, rtol=1e-10)
    # the argmax of a Gumbel-perturbed logit vector is a sample of softmax(logits)
    freq = np.bincount(_np(a).argmax(-1), minlength=3) / 20000
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=0.015)


def test_gumbel_softmax_hard_is_one_hot_with_straight_through_gradient():
    x = R.standard_normal((4, 5))
    w = _t(R.standard_normal((4, 5)))
    grads = []
    for hard in (True, False):
        logits = _t(x, requires_grad=True)
        fw.manual_seed(3)
        y = F.gumbel_softmax(logits, tau=0.7, hard=hard, dim=1)
        if hard:
            out = _np(y)
            assert set(np.unique(out)) == {0.0, 1.0} and (out.sum(1) == 1).all()
        (y * w).sum().backward()
        grads.append(logits.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)
    with pytest.warns(UserWarning, match="eps"):
        F.gumbel_softmax(_t(x), eps=1e-5)


# -- rrelu -------------------------------------------------------------------------------
def test_rrelu_eval_train_and_gradient():
    x = R.standard_normal((1000,))
    lo, hi = 0.1, 0.3
    np.testing.assert_allclose(_np(F.rrelu(_t(x), lo, hi)), np.where(x > 0, x, 0.2 * x))
    xt = _t(x, requires_grad=True)
    fw.manual_seed(11)
    y = F.rrelu(xt, lo, hi, training=True)
    out = _np(y)
    neg = x < 0
    slopes = out[neg] / x[neg]
    assert slopes.min() >= lo and slopes.max() <= hi and slopes.std() > 0.04
    assert abs(slopes.mean() - 0.2) < 0.01
    np.testing.assert_array_equal(out[~neg], x[~neg])
    y.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy()[neg], slopes, rtol=1e-10)
    np.testing.assert_array_equal(xt.grad.numpy()[~neg], 1.0)
    fw.manual_seed(11)
    np.testing.assert_array_equal(_np(F.rrelu(_t(x), lo, hi, training=True)), out)


def test_rrelu_module_inplace_and_errors():
    m = nn.RReLU(0.1, 0.3, inplace=True)
    assert repr(m) == "RReLU(lower=0.1, upper=0.3, inplace=True)"
    assert repr(nn.RReLU()) == f"RReLU(lower={1 / 8}, upper={1 / 3})"
    x = fw.tensor([-1.0, 2.0])
    out = m.eval()(x)
    assert out is x and _np(x).tolist() == pytest.approx([-0.2, 2.0])
    x = fw.tensor([-1.0, 2.0])
    F.rrelu_(x, 0.1, 0.3, training=True)
    assert 0.1 <= -float(x[0]) <= 0.3
    with pytest.raises(ArgumentError, match="Lower bound should be less than or equal"):
        F.rrelu(fw.randn(3), 0.5, 0.1)


# -- alpha dropout -----------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_standard_statistics(p):
    x = _t(R.standard_normal(200_000).astype(np.float32))
    fw.manual_seed(5)
    y = _np(F.alpha_dropout(x, p, training=True))
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1.0) < 0.02
    a = 1 / math.sqrt((SELU_NEG ** 2 * p + 1) * (1 - p))
    dropped = np.isclose(y, a * (-SELU_NEG) + a * SELU_NEG * p, atol=1e-6)
    assert abs(dropped.mean() - p) < 0.01
    kept = ~dropped
    np.testing.assert_allclose(y[kept], a * _np(x)[kept] + a * SELU_NEG * p, rtol=1e-5,
                               atol=1e-6)
    fw.manual_seed(5)
    np.testing.assert_array_equal(_np(F.alpha_dropout(x, p, training=True)), y)


def test_alpha_dropout_modes_feature_variant_and_errors():
    x = fw.randn(4, 6, 5)
    assert F.alpha_dropout(x, 0.5) is x  # training=False by default, as in PyTorch
    assert F.alpha_dropout(x, 0.0, True) is x
    np.testing.assert_array_equal(_np(F.alpha_dropout(x, 1.0, True)), 0.0)
    m = nn.AlphaDropout(0.3)
    assert repr(m) == "AlphaDropout(p=0.3, inplace=False)"
    assert m.eval()(x) is x
    fm = nn.FeatureAlphaDropout(0.5)
    y = _np(fm(x))
    p, a = 0.5, 1 / math.sqrt((SELU_NEG ** 2 * 0.5 + 1) * 0.5)
    const = a * -SELU_NEG + a * SELU_NEG * p
    per_channel = np.isclose(y, const, atol=1e-6).all(-1)  # whole channels dropped together
    kept = np.isclose(y, a * _np(x) + a * SELU_NEG * p, atol=1e-5).all(-1)
    assert (per_channel | kept).all() and per_channel.any() and kept.any()
    with pytest.raises(ArgumentError, match="alpha_dropout: dropout probability has to be"):
        F.alpha_dropout(x, 1.5, True)
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(fw.randn(5), 0.5, True)
    with pytest.raises(ArgumentError):
        nn.AlphaDropout(-0.1)
    # gradient: a for kept elements, 0 for dropped ones (which hold a * alpha' * (p - 1))
    xg = _t(R.standard_normal((3, 4)), requires_grad=True)
    y = F.alpha_dropout(xg, 0.4, True)
    y.sum().backward()
    a = 1 / math.sqrt((SELU_NEG ** 2 * 0.4 + 1) * 0.6)
    dropped = np.isclose(_np(y), a * SELU_NEG * (0.4 - 1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(xg.grad.numpy(), np.where(dropped, 0.0, a), rtol=1e-10)


# -- multilabel_margin_loss --------------------------------------------------------------
def _mlm_ref(x, y):
    out = []
    for xr, yr in zip(np.atleast_2d(x), np.atleast_2d(y)):
        targets = []
        for t in yr:
            if t < 0:
                break
            targets.append(t)
        others = [i for i in range(len(xr)) if i not in targets]
        out.append(sum(max(0.0, 1 - (xr[j] - xr[i])) for j in targets for i in others)
                   / len(xr))
    return np.array(out)


def test_multilabel_margin_loss_matches_reference():
    x = np.array([[0.1, 0.2, 0.4, 0.8]])
    y = np.array([[3, 0, -1, 1]])
    assert float(F.multilabel_margin_loss(_t(x), _t(y))) == pytest.approx(0.85)
    x = R.standard_normal((5, 6))
    y = np.array([[1, 4, -1, 2, 2, 2], [0, 0, 3, -1, 5, 5], [-1, 1, 1, 1, 1, 1],
                  [5, 4, 3, 2, 1, 0], [2, -1, -1, -1, -1, -1]])
    want = _mlm_ref(x, y)
    m = nn.MultiLabelMarginLoss(reduction="none")
    np.testing.assert_allclose(_np(m(_t(x), _t(y))), want, rtol=1e-10)
    assert float(F.multilabel_margin_loss(_t(x), _t(y), reduction="sum")) == \
        pytest.approx(want.sum())
    one = F.multilabel_margin_loss(_t(x[0]), _t(y[0]), reduction="none")
    assert one.shape == () and float(one) == pytest.approx(want[0])
    xt = _t(x, requires_grad=True)
    assert gradcheck(lambda t: F.multilabel_margin_loss(t, _t(y)), (xt,))


def test_multilabel_margin_loss_errors():
    x = fw.randn(2, 3)
    with pytest.raises(ShapeError, match="inconsistent target size"):
        F.multilabel_margin_loss(x, fw.tensor([[0, 1], [1, 0]]))
    with pytest.raises(DTypeError, match="integer class indices"):
        F.multilabel_margin_loss(x, fw.zeros(2, 3))
    with pytest.raises(FwIndexError, match="target index out of range"):
        F.multilabel_margin_loss(x, fw.tensor([[0, 3, -1], [1, -1, 0]]))
    with pytest.raises(ShapeError, match="Expected non-empty vector or matrix"):
        F.multilabel_margin_loss(fw.randn(2, 2, 2), fw.zeros(2, 2, 2, dtype=fw.int64))


# -- triplet_margin_with_distance_loss --------------------------------------------------
def test_triplet_margin_with_distance_loss():
    a, p, n = (R.standard_normal((6, 4)) for _ in range(3))
    ta, tp, tn = _t(a), _t(p), _t(n)
    np.testing.assert_allclose(float(F.triplet_margin_with_distance_loss(ta, tp, tn)),
                               float(F.triplet_margin_loss(ta, tp, tn)), rtol=1e-12)

    def cos_dist(u, v):
        return 1.0 - F.cosine_similarity(u, v)

    def ref_cos(u, v):
        return 1 - (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))

    m = nn.TripletMarginWithDistanceLoss(distance_function=cos_dist, margin=0.5, swap=True,
                                         reduction="none")
    d_neg = np.minimum(ref_cos(a, n), ref_cos(p, n))
    np.testing.assert_allclose(_np(m(ta, tp, tn)),
                               np.maximum(0.5 + ref_cos(a, p) - d_neg, 0), rtol=1e-10)
    xa = _t(a, requires_grad=True)
    assert gradcheck(lambda t: F.triplet_margin_with_distance_loss(
        t, tp, tn, distance_function=cos_dist, margin=2.0), (xa,))
    with pytest.raises(ArgumentError, match="expected margin to be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0.0)
    with pytest.raises(ShapeError, match="anchor 2D, positive 1D, and negative 2D"):
        F.triplet_margin_with_distance_loss(ta, tp[0], tn)
    with pytest.raises(ArgumentError, match="reduction"):
        F.triplet_margin_with_distance_loss(ta, tp, tn, reduction="avg")


# -- CrossMapLRN2d -----------------------------------------------------------------------
def _cross_map_ref(x, size, alpha, beta, k):
    """PyTorch's CrossMapLRN2d forward, transcribed loop for loop."""
    c = x.shape[1]
    sq = x ** 2
    scale = np.zeros_like(x)
    pre_pad = int((size - 1) / 2 + 1)
    for j in range(min(pre_pad, c)):
        scale[:, 0] += sq[:, j]
    for ch in range(1, c):
        scale[:, ch] = scale[:, ch - 1]
        if ch < c - pre_pad + 1:
            scale[:, ch] += sq[:, ch + pre_pad - 1]
        if ch > pre_pad:
            scale[:, ch] -= sq[:, ch - pre_pad]
    scale = scale * (alpha / size) + k
    return x * scale ** -beta


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_cross_map_lrn2d_matches_pytorch_forward(size):
    x = R.standard_normal((2, 7, 3, 2))
    m = nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.5)
    np.testing.assert_allclose(_np(m(_t(x))), _cross_map_ref(x, size, 0.5, 0.75, 1.5),
                               rtol=1e-10)


def test_cross_map_lrn2d_gradcheck_repr_error():
    m = nn.CrossMapLRN2d(3, alpha=0.3, beta=0.75, k=1)
    assert repr(m) == "CrossMapLRN2d(3, alpha=0.3, beta=0.75, k=1)"
    x = _t(R.standard_normal((1, 5, 2, 2)), requires_grad=True)
    assert gradcheck(m, (x,))
    with pytest.raises(ShapeError, match="Expected input to be 4D, got 3D"):
        m(fw.randn(5, 2, 2))


# -- compile and ONNX ----------------------------------------------------------------------
def _extras_model():
    fw.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.RReLU(), nn.CrossMapLRN2d(3),
                         nn.LPPool2d(2, 2), nn.Softmax2d(), nn.AlphaDropout(0.2)).eval()


def test_extras_compile_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    m = _extras_model()
    x = fw.randn(2, 2, 8, 8)
    compiled = fw.compile(m, fullgraph=True, mode="always")
    np.testing.assert_allclose(_np(compiled(x)), _np(m(x)), rtol=1e-5, atol=1e-6)
    loss_fn = nn.MultiLabelMarginLoss()
    y = fw.tensor([[1, 0, -1, 2], [3, -1, 0, 0]])
    f = fw.compile(lambda s: loss_fn(s, y), fullgraph=True, mode="always")
    s = fw.randn(2, 4)
    np.testing.assert_allclose(float(f(s)), float(loss_fn(s, y)), rtol=1e-6)


def test_extras_onnx_export():
    pytest.importorskip("onnxruntime")
    fw.onnx.export(_extras_model(), fw.randn(1, 2, 8, 8), verify=True)
