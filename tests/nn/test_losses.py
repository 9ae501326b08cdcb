"""Losses against NumPy formulas (every reduction) and finite-difference gradients."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.autograd import gradcheck
from framework.errors import ArgumentError, DTypeError, ShapeError
from framework.nn import functional as F

RNG = np.random.default_rng(99)


def t64(a, grad=True):
    return fw.tensor(np.asarray(a, np.float64), requires_grad=grad)


def arr(x):
    return x.detach().numpy()


def reduce_np(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def np_log_softmax(x, axis=1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def np_softplus(x):
    return np.logaddexp(0, x)


def _sep(d, kinks):
    for k in kinks:
        d = np.where(np.abs(np.abs(d) - k) < 0.05, d + 0.2 * np.sign(d), d)
    return d


X = RNG.standard_normal((3, 4))
Y = X + _sep(RNG.standard_normal((3, 4)), (0.0, 1.0, 0.5))

# name -> (framework loss fn(x, y, reduction), numpy elementwise loss)
REGRESSION = {
    "mse": (lambda x, y, r: F.mse_loss(x, y, reduction=r), lambda x, y: (x - y) ** 2),
    "l1": (lambda x, y, r: F.l1_loss(x, y, reduction=r), lambda x, y: np.abs(x - y)),
    "smooth_l1": (lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5),
                  lambda x, y: np.where(np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2 / 0.5,
                                        np.abs(x - y) - 0.25)),
    "huber": (lambda x, y, r: F.huber_loss(x, y, reduction=r, delta=0.5),
              lambda x, y: np.where(np.abs(x - y) < 0.5, 0.5 * (x - y) ** 2,
                                    0.5 * (np.abs(x - y) - 0.25))),
    "soft_margin": (lambda x, y, r: F.soft_margin_loss(x, fw.sign(y), reduction=r),
                    lambda x, y: np_softplus(-np.sign(y) * x)),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", sorted(REGRESSION))
def test_regression_losses(name, reduction):
    fn, ref = REGRESSION[name]
    out = fn(fw.tensor(X), fw.tensor(Y), reduction)
    np.testing.assert_allclose(arr(out), reduce_np(ref(X, Y), reduction), rtol=1e-10)
    assert gradcheck(lambda a, b: fn(a, b, reduction), (t64(X), t64(Y)))


def test_regression_modules_and_bad_reduction():
    x, y = fw.tensor(X), fw.tensor(Y)
    np.testing.assert_allclose(arr(nn.MSELoss(reduction="sum")(x, y)), ((X - Y) ** 2).sum())
    np.testing.assert_allclose(arr(nn.L1Loss()(x, y)), np.abs(X - Y).mean())
    np.testing.assert_allclose(arr(nn.SmoothL1Loss(beta=0.0)(x, y)), np.abs(X - Y).mean())
    np.testing.assert_allclose(arr(nn.HuberLoss(delta=2.0)(x, y)),
                               np.where(np.abs(X - Y) < 2, 0.5 * (X - Y) ** 2,
                                        2 * (np.abs(X - Y) - 1)).mean())
    with pytest.raises(ArgumentError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ArgumentError, match="reduction"):
        F.l1_loss(x, y, reduction="avg")
    with pytest.raises(ShapeError):
        F.mse_loss(x, fw.zeros(5))
    # legacy size_average / reduce arguments
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"


# -- cross-entropy / nll -----------------------------------------------------------------
def np_ce(x, t, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """Reference for class-index targets; x: (N, C, *), t: (N, *)."""
    c = x.shape[1]
    x2 = np.moveaxis(x, 1, -1).reshape(-1, c)
    t1 = t.reshape(-1)
    logp = np_log_softmax(x2, 1)
    w = np.ones(c) if weight is None else weight
    valid = t1 != ignore_index
    safe = np.where(valid, t1, 0)
    wt = np.where(valid, w[safe], 0.0)
    nll = -logp[np.arange(len(t1)), safe] * wt
    smooth = np.where(valid, -(logp * w).sum(1), 0.0)
    loss = (1 - smoothing) * nll + smoothing / c * smooth
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wt.sum()


CE_CASES = [
    dict(),
    dict(ignore_index=1),
    dict(weight=True),
    dict(weight=True, ignore_index=0, smoothing=0.2),
    dict(smoothing=0.3),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", range(len(CE_CASES)))
@pytest.mark.parametrize("spatial", [(), (2, 3)])
def test_cross_entropy_class_indices(case, reduction, spatial):
    opts = CE_CASES[case]
    n, c = 4, 3
    x = RNG.standard_normal((n, c) + spatial)
    t = RNG.integers(0, c, size=(n,) + spatial)
    t.reshape(-1)[0] = 1  # make sure the ignored class occurs
    t.reshape(-1)[-1] = 2  # ... and that not every target is ignored (mean of none: nan)
    weight = RNG.uniform(0.5, 2.0, size=c) if opts.get("weight") else None
    kw = dict(ignore_index=opts.get("ignore_index", -100),
              label_smoothing=opts.get("smoothing", 0.0), reduction=reduction)
    wt = None if weight is None else fw.tensor(weight)
    out = F.cross_entropy(fw.tensor(x), fw.tensor(t), weight=wt, **kw)
    want = np_ce(x, t, weight, kw["ignore_index"], reduction, kw["label_smoothing"])
    np.testing.assert_allclose(arr(out), want, rtol=1e-10, atol=1e-12)
    mod = nn.CrossEntropyLoss(weight=wt, **kw)
    np.testing.assert_allclose(arr(mod(fw.tensor(x), fw.tensor(t))), want, rtol=1e-10,
                               atol=1e-12)
    if not spatial:
        assert gradcheck(lambda a: F.cross_entropy(a, fw.tensor(t), weight=wt, **kw),
                         (t64(x),))


def test_cross_entropy_spatial_gradient_and_unbatched():
    x = RNG.standard_normal((2, 3, 2))
    t = fw.tensor([[0, 2], [1, -100]])
    assert gradcheck(lambda a: F.cross_entropy(a, t), (t64(x),))
    x1 = RNG.standard_normal(5)
    np.testing.assert_allclose(arr(F.cross_entropy(fw.tensor(x1), fw.tensor(3))),
                               -np_log_softmax(x1[None], 1)[0, 3], rtol=1e-12)


def test_cross_entropy_probabilities():
    x = RNG.standard_normal((4, 3))
    p = RNG.dirichlet(np.ones(3), size=4)
    w = RNG.uniform(0.5, 2, size=3)
    for smoothing in (0.0, 0.25):
        ps = p * (1 - smoothing) + smoothing / 3
        per = -(np_log_softmax(x) * ps * w).sum(1)
        for reduction in ("none", "sum", "mean"):
            out = F.cross_entropy(fw.tensor(x), fw.tensor(p), weight=fw.tensor(w),
                                  reduction=reduction, label_smoothing=smoothing)
            want = {"none": per, "sum": per.sum(), "mean": per.sum() / 4}[reduction]
            np.testing.assert_allclose(arr(out), want, rtol=1e-10)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1), (t64(x), t64(p)))
    xs = RNG.standard_normal((2, 3, 2, 2))
    ps = RNG.dirichlet(np.ones(3), size=(2, 2, 2)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(arr(F.cross_entropy(fw.tensor(xs), fw.tensor(ps))),
                               -(np_log_softmax(xs, 1) * ps).sum(1).mean(), rtol=1e-10)


def test_cross_entropy_errors():
    with pytest.raises(ShapeError, match="target"):
        F.cross_entropy(fw.zeros(4, 3), fw.tensor([0, 1]))
    with pytest.raises(DTypeError):
        F.cross_entropy(fw.zeros(4, 3), fw.zeros(4, dtype=fw.bool))
    with pytest.raises(ShapeError, match="weight"):
        F.cross_entropy(fw.zeros(4, 3), fw.tensor([0, 1, 2, 0]), weight=fw.ones(2))
    with pytest.raises(ArgumentError, match="label_smoothing"):
        F.cross_entropy(fw.zeros(4, 3), fw.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(fw.FwIndexError, match="out of bounds"):
        F.cross_entropy(fw.zeros(2, 3), fw.tensor([0, 3]))


def test_cross_entropy_is_one_composite_node():
    x = fw.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(x, fw.tensor([0, 1, 2, 1]), reduction="sum")
    ops = []
    node = loss.grad_fn
    while node is not None:
        ops.append(node.op.name)
        edges = [e for e in node.edges if isinstance(e, tuple)]
        node = edges[0][0] if edges else None
    assert "cross_entropy" in ops and "log_softmax" not in ops


def test_nll_loss():
    logp = np_log_softmax(RNG.standard_normal((5, 4)))
    t = np.array([0, 3, 1, 1, 2])
    w = RNG.uniform(0.5, 2, size=4)
    for reduction in ("none", "sum", "mean"):
        out = F.nll_loss(fw.tensor(logp), fw.tensor(t), weight=fw.tensor(w), ignore_index=1,
                         reduction=reduction)
        per = np.where(t != 1, -logp[np.arange(5), t] * w[t], 0)
        want = {"none": per, "sum": per.sum(),
                "mean": per.sum() / np.where(t != 1, w[t], 0).sum()}[reduction]
        np.testing.assert_allclose(arr(out), want, rtol=1e-10)
    assert gradcheck(lambda a: F.nll_loss(a, fw.tensor(t)), (t64(logp),))
    np.testing.assert_allclose(arr(nn.NLLLoss()(fw.tensor(logp), fw.tensor(t))),
                               -logp[np.arange(5), t].mean(), rtol=1e-10)
    with pytest.raises(DTypeError, match="int64"):
        F.nll_loss(fw.tensor(logp), fw.tensor(t, dtype=fw.float32))
    assert "weight" in nn.NLLLoss(weight=fw.ones(4)).state_dict()


# -- binary ----------------------------------------------------------------------------------
def test_bce_and_bce_with_logits():
    x = RNG.standard_normal((3, 4))
    y = RNG.uniform(0, 1, size=(3, 4))
    w = RNG.uniform(0.5, 2, size=(4,))
    pw = RNG.uniform(0.5, 3, size=(4,))
    p = 1 / (1 + np.exp(-x))
    bce = -w * (y * np.log(p) + (1 - y) * np.log(1 - p))
    for reduction in ("none", "mean", "sum"):
        np.testing.assert_allclose(arr(F.binary_cross_entropy(
            fw.tensor(p), fw.tensor(y), weight=fw.tensor(w), reduction=reduction)),
            reduce_np(bce, reduction), rtol=1e-10)
        np.testing.assert_allclose(arr(F.binary_cross_entropy_with_logits(
            fw.tensor(x), fw.tensor(y), weight=fw.tensor(w), reduction=reduction)),
            reduce_np(bce, reduction), rtol=1e-10)
    with_pos = -w * (pw * y * np.log(p) + (1 - y) * np.log(1 - p))
    mod = nn.BCEWithLogitsLoss(weight=fw.tensor(w), pos_weight=fw.tensor(pw))
    np.testing.assert_allclose(arr(mod(fw.tensor(x), fw.tensor(y))), with_pos.mean(),
                               rtol=1e-10)
    assert list(mod.state_dict()) == ["weight", "pos_weight"]
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b), (t64(p), t64(y)))
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(
        a, b, pos_weight=fw.tensor(pw)), (t64(x), t64(y)))
    # saturated inputs stay finite (logs clamped at -100 / stable logits formula)
    assert float(F.binary_cross_entropy(fw.tensor([0.0, 1.0]), fw.tensor([1.0, 0.0]))) == 100.0
    big = F.binary_cross_entropy_with_logits(fw.tensor([800.0, -800.0]), fw.tensor([0.0, 1.0]))
    np.testing.assert_allclose(float(big), 800.0)
    np.testing.assert_allclose(arr(nn.BCELoss()(fw.tensor(p), fw.tensor(y))),
                               (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(), rtol=1e-6)
    with pytest.raises(ShapeError, match="target size"):
        F.binary_cross_entropy_with_logits(fw.zeros(3), fw.zeros(4))


def test_kl_div():
    logq = np_log_softmax(RNG.standard_normal((3, 4)))
    p = RNG.dirichlet(np.ones(4), size=3)
    p[0, 0] = 0.0  # 0 * log 0 = 0
    pointwise = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0) - p * logq
    for reduction, want in (("none", pointwise), ("sum", pointwise.sum()),
                            ("mean", pointwise.mean()), ("batchmean", pointwise.sum() / 3)):
        np.testing.assert_allclose(arr(F.kl_div(fw.tensor(logq), fw.tensor(p),
                                                reduction=reduction)), want, rtol=1e-10)
    logp = np.log(RNG.dirichlet(np.ones(4), size=3))
    np.testing.assert_allclose(
        arr(nn.KLDivLoss(reduction="batchmean", log_target=True)(fw.tensor(logq),
                                                                 fw.tensor(logp))),
        (np.exp(logp) * (logp - logq)).sum() / 3, rtol=1e-10)
    p_pos = RNG.dirichlet(np.ones(4), size=3)  # t log t has no derivative at t = 0
    assert gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean"),
                     (t64(logq), t64(p_pos)))
    assert gradcheck(lambda a, b: F.kl_div(a, b, log_target=True), (t64(logq), t64(logp)))


# -- embedding / ranking -----------------------------------------------------------------
def test_cosine_embedding_loss():
    a, b = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    y = np.array([1, -1, 1, -1])
    cos = (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12))
    per = np.where(y == 1, 1 - cos, np.maximum(cos - 0.1, 0))
    for reduction in ("none", "mean", "sum"):
        out = F.cosine_embedding_loss(fw.tensor(a), fw.tensor(b), fw.tensor(y), margin=0.1,
                                      reduction=reduction)
        np.testing.assert_allclose(arr(out), reduce_np(per, reduction), rtol=1e-10)
    assert gradcheck(lambda u, v: F.cosine_embedding_loss(u, v, fw.tensor(y), margin=-0.9),
                     (t64(a), t64(b)))
    np.testing.assert_allclose(arr(nn.CosineEmbeddingLoss(margin=0.1)(
        fw.tensor(a), fw.tensor(b), fw.tensor(y))), per.mean(), rtol=1e-10)


def test_margin_ranking_loss():
    a, b = RNG.standard_normal(6), RNG.standard_normal(6)
    y = np.array([1, -1, 1, 1, -1, -1])
    per = np.maximum(0, -y * (a - b) + 0.3)
    for reduction in ("none", "mean", "sum"):
        out = nn.MarginRankingLoss(margin=0.3, reduction=reduction)(
            fw.tensor(a), fw.tensor(b), fw.tensor(y))
        np.testing.assert_allclose(arr(out), reduce_np(per, reduction), rtol=1e-10)
    assert gradcheck(lambda u, v: F.margin_ranking_loss(u, v, fw.tensor(y), margin=5.0),
                     (t64(a), t64(b)))


def test_triplet_margin_loss():
    a, p, n = (RNG.standard_normal((5, 3)) for _ in range(3))

    def dist(u, v, q=2):
        return (np.abs(u - v + 1e-6) ** q).sum(1) ** (1 / q)

    for swap in (False, True):
        d_an = dist(a, n)
        if swap:
            d_an = np.minimum(d_an, dist(p, n))
        per = np.maximum(dist(a, p) - d_an + 1.0, 0)
        for reduction in ("none", "mean", "sum"):
            out = nn.TripletMarginLoss(swap=swap, reduction=reduction)(
                fw.tensor(a), fw.tensor(p), fw.tensor(n))
            np.testing.assert_allclose(arr(out), reduce_np(per, reduction), rtol=1e-10)
    per1 = np.maximum(dist(a, p, 1) - dist(a, n, 1) + 0.5, 0)
    np.testing.assert_allclose(arr(F.triplet_margin_loss(fw.tensor(a), fw.tensor(p),
                                                         fw.tensor(n), margin=0.5, p=1)),
                               per1.mean(), rtol=1e-10)
    assert gradcheck(lambda u, v, w: F.triplet_margin_loss(u, v, w, margin=10.0),
                     (t64(a), t64(p), t64(n)))
    with pytest.raises(ArgumentError, match="margin"):
        nn.TripletMarginLoss(margin=0)


def test_poisson_gaussian_hinge_multilabel_multimargin():
    x = RNG.standard_normal((3, 4))
    y = RNG.integers(0, 5, size=(3, 4)).astype(np.float64)
    stirling = np.where(y > 1, y * np.log(np.where(y > 1, y, 1)) - y +
                        0.5 * np.log(2 * np.pi * np.where(y > 1, y, 1)), 0)
    np.testing.assert_allclose(arr(nn.PoissonNLLLoss(full=True)(fw.tensor(x), fw.tensor(y))),
                               (np.exp(x) - y * x + stirling).mean(), rtol=1e-10)
    rate = np.exp(x)
    np.testing.assert_allclose(arr(F.poisson_nll_loss(fw.tensor(rate), fw.tensor(y),
                                                      log_input=False, reduction="sum")),
                               (rate - y * np.log(rate + 1e-8)).sum(), rtol=1e-10)
    assert gradcheck(lambda a: F.poisson_nll_loss(a, fw.tensor(y), full=True), (t64(x),))

    var = RNG.uniform(0.5, 2, size=(3, 1))
    want = 0.5 * (np.log(var) + (x - Y[:, :4]) ** 2 / var)
    got = nn.GaussianNLLLoss(reduction="none")(fw.tensor(x), fw.tensor(Y[:, :4]),
                                               fw.tensor(var))
    np.testing.assert_allclose(arr(got), want, rtol=1e-10)
    full = F.gaussian_nll_loss(fw.tensor(x), fw.tensor(Y[:, :4]), fw.tensor(var[:, 0]),
                               full=True)
    np.testing.assert_allclose(arr(full), (want + 0.5 * np.log(2 * np.pi)).mean(), rtol=1e-10)
    assert gradcheck(lambda a, v: F.gaussian_nll_loss(a, fw.tensor(Y[:, :4]), v),
                     (t64(x), t64(var)))
    tiny = t64([[1e-9]])
    F.gaussian_nll_loss(t64([[0.5]], False), fw.tensor([[0.0]]), tiny, eps=1e-3).backward()
    np.testing.assert_allclose(tiny.grad.numpy(), [[0.5 / 1e-3 - 0.5 * 0.25 / 1e-6]])

    sign = np.where(RNG.uniform(size=(3, 4)) > 0.5, 1.0, -1.0)
    hinge = np.where(sign == 1, x, np.maximum(0, 0.5 - x))
    np.testing.assert_allclose(arr(nn.HingeEmbeddingLoss(margin=0.5)(fw.tensor(x),
                                                                      fw.tensor(sign))),
                               hinge.mean(), rtol=1e-10)

    labels = (RNG.uniform(size=(3, 4)) > 0.5).astype(np.float64)
    w = RNG.uniform(0.5, 2, size=4)
    ml = -(labels * -np_softplus(-x) + (1 - labels) * -np_softplus(x)) * w
    np.testing.assert_allclose(arr(nn.MultiLabelSoftMarginLoss(weight=fw.tensor(w))(
        fw.tensor(x), fw.tensor(labels))), ml.mean(1).mean(), rtol=1e-10)
    assert gradcheck(lambda a: F.multilabel_soft_margin_loss(a, fw.tensor(labels)), (t64(x),))

    t = np.array([0, 3, 1])
    for p in (1, 2):
        z = np.maximum(0, 0.7 - x[np.arange(3), t][:, None] + x) ** p * w[t][:, None]
        z[np.arange(3), t] = 0
        np.testing.assert_allclose(arr(nn.MultiMarginLoss(p=p, margin=0.7, weight=fw.tensor(w),
                                                          reduction="none")(
            fw.tensor(x), fw.tensor(t))), z.sum(1) / 4, rtol=1e-10)
    assert gradcheck(lambda a: F.multi_margin_loss(a, fw.tensor(t), margin=9.0), (t64(x),))


# -- CTC ------------------------------------------------------------------------------------
def np_ctc(lp, tgt, steps, blank=0):
    """Literal alpha recursion in log space for one sample; lp: (T, C)."""
    ext = [blank]
    for lab in tgt:
        ext += [lab, blank]
    a = np.full(len(ext), -np.inf)
    a[0] = lp[0, blank]
    if len(ext) > 1:
        a[1] = lp[0, ext[1]]
    for t in range(1, steps):
        na = np.full(len(ext), -np.inf)
        for s in range(len(ext)):
            cands = [a[s]] + ([a[s - 1]] if s >= 1 else [])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                cands.append(a[s - 2])
            na[s] = np.logaddexp.reduce(cands) + lp[t, ext[s]]
        a = na
    return -np.logaddexp(a[-1], a[-2] if len(ext) > 1 else -np.inf)


def test_ctc_loss():
    T, N, C = 6, 3, 4
    lp = np_log_softmax(RNG.standard_normal((T, N, C)), 2)
    targets = [[1, 2], [3, 3, 1], [2]]
    in_len, tg_len = [6, 5, 4], [2, 3, 1]
    padded = np.zeros((N, 3), np.int64)
    for i, t in enumerate(targets):
        padded[i, :len(t)] = t
    per = np.array([np_ctc(lp[:, i], targets[i], in_len[i]) for i in range(N)])
    flat = fw.tensor(np.concatenate([np.array(t) for t in targets]))
    for tgt in (fw.tensor(padded), flat):
        for reduction, want in (("none", per), ("sum", per.sum()),
                                ("mean", (per / np.array(tg_len)).mean())):
            got = F.ctc_loss(fw.tensor(lp), tgt, fw.tensor(in_len), fw.tensor(tg_len),
                             reduction=reduction)
            np.testing.assert_allclose(arr(got), want, rtol=1e-10)
    assert gradcheck(lambda a: F.ctc_loss(a, fw.tensor(padded), in_len, tg_len), (t64(lp),))
    one = nn.CTCLoss(blank=3, reduction="none")(fw.tensor(lp[:, 0]), fw.tensor([1, 2]), 6, 2)
    np.testing.assert_allclose(arr(one), np_ctc(lp[:, 0], [1, 2], 6, blank=3), rtol=1e-10)


def test_ctc_loss_impossible_alignment():
    lp = t64(np_log_softmax(RNG.standard_normal((2, 2, 3)), 2))
    tgt = fw.tensor([[1, 1], [2, 0]])
    loss = F.ctc_loss(lp, tgt, [2, 2], [2, 1], reduction="none")  # "1 1" needs 3 steps
    assert np.isinf(arr(loss)[0]) and np.isfinite(arr(loss)[1])
    zeroed = F.ctc_loss(lp, tgt, [2, 2], [2, 1], reduction="sum", zero_infinity=True)
    zeroed.backward()
    assert np.all(np.isfinite(lp.grad.numpy())) and np.all(lp.grad.numpy()[:, 0] == 0)
    with pytest.raises(ShapeError, match="input_lengths"):
        F.ctc_loss(lp, tgt, [2], [2, 1])


def test_regression_losses_warn_when_target_broadcasts():
    with pytest.warns(UserWarning, match=r"target size \(fw.Size\(\[4\]\)\).*input size"):
        F.mse_loss(fw.randn(4, 1), fw.randn(4))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(fw.randn(4), fw.randn(4))


def test_binary_cross_entropy_refuses_inputs_outside_0_1():
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        F.binary_cross_entropy(fw.tensor([0.5, 1.5]), fw.tensor([1.0, 0.0]))
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        nn.BCELoss()(fw.tensor([float("nan")]), fw.tensor([1.0]))
    assert F.binary_cross_entropy(fw.tensor([0.0, 1.0]), fw.tensor([0.0, 1.0])).item() == 0.0


def test_kl_div_mean_reduction_warns_like_pytorch():
    x, y = fw.randn(3, 4).log_softmax(1), fw.randn(3, 4).softmax(1)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x, y)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.kl_div(x, y, reduction="batchmean")


def test_one_hot_refuses_class_values_outside_num_classes():
    from framework.errors import FwIndexError
    with pytest.raises(FwIndexError, match="smaller than num_classes"):
        F.one_hot(fw.tensor([0, 3]), num_classes=2)
    with pytest.raises(FwIndexError, match="non-negative"):
        F.one_hot(fw.tensor([-1, 1]), num_classes=3)
    assert F.one_hot(fw.tensor([1]), num_classes=3).tolist() == [[0, 1, 0]]
