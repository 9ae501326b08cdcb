"""nn.utils.prune: PyTorch's reparametrization (``<name>_orig`` parameter, ``<name>_mask``
buffer, pre-hook), the masks each method picks (against NumPy), iterative pruning through
PruningContainer, global pruning, remove, state_dict, gradients, fw.compile and ONNX."""

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.errors import ArgumentError
from framework.nn.utils import prune

F = nn.functional


def _np(t):
    return t.detach().numpy()


def _l1_mask(w, k, mask=None):
    """NumPy: zero the k smallest |w| among the entries where mask is 1 (ties: lower flat
    index first)."""
    mask = np.ones_like(w) if mask is None else mask.copy()
    flat = mask.reshape(-1)
    live = np.flatnonzero(flat == 1)
    order = np.argsort(np.abs(w.reshape(-1)[live]), kind="stable")
    flat[live[order[:k]]] = 0
    return mask


def test_l1_unstructured_reparametrizes_like_pytorch():
    fw.manual_seed(0)
    m = nn.Linear(5, 4)
    weight = m.weight
    w0 = _np(weight).copy()
    out = prune.l1_unstructured(m, "weight", amount=0.3)
    assert out is m
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert [n for n, _ in m.named_buffers()] == ["weight_mask"]
    assert m.weight_orig is weight and isinstance(m.weight_orig, nn.Parameter)
    assert not isinstance(m.weight, nn.Parameter)
    mask = _l1_mask(w0, round(0.3 * 20))
    np.testing.assert_array_equal(_np(m.weight_mask), mask)
    assert m.weight_mask.dtype is fw.float32 and int(mask.sum()) == 14
    np.testing.assert_array_equal(_np(m.weight), w0 * mask)
    assert prune.is_pruned(m) and prune.is_pruned(nn.Sequential(m))
    assert not prune.is_pruned(nn.Linear(2, 2))
    # forward uses the masked weight; gradients reach weight_orig masked
    x = fw.randn(3, 5)
    y = m(x)
    np.testing.assert_allclose(_np(y), _np(x) @ (w0 * mask).T + _np(m.bias), rtol=1e-5)
    y.pow(2).sum().backward()
    g_full = 2 * (_np(y)).T @ _np(x)
    np.testing.assert_allclose(_np(m.weight_orig.grad), g_full * mask, rtol=1e-5, atol=1e-6)
    # changing the mask takes effect at the next call (the pre-hook recomputes weight)
    with fw.no_grad():
        m.weight_mask.fill_(1.0)
    np.testing.assert_allclose(_np(m(x)), _np(x) @ w0.T + _np(m.bias), rtol=1e-5)


def test_amount_rounding_ties_and_validation():
    m = nn.Linear(5, 2, bias=False)
    with fw.no_grad():
        m.weight.copy_(fw.tensor([[1.0, -1.0, 2.0, 1.0, 3.0], [-1.0, 4.0, 1.0, 5.0, 6.0]]))
    prune.l1_unstructured(m, "weight", amount=0.25)  # round(2.5) == 2 (Python's rounding)
    # five entries tie at |w| = 1: the two with the lowest flat index go
    np.testing.assert_array_equal(_np(m.weight_mask),
                                  [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    lin = nn.Linear(3, 2)
    for amount, err, msg in [(1.5, ArgumentError, "float in the range"),
                             (-1, ArgumentError, "non-negative integer"),
                             ("a", TypeError, "Invalid type for amount"),
                             (7, ArgumentError, "should be smaller than the number")]:
        with pytest.raises(err, match=msg):
            prune.l1_unstructured(lin, "weight", amount=amount)
    # a failed pruning puts the parameter back (last, as PyTorch's re-registration does)
    assert list(lin.state_dict()) == ["bias", "weight"] and not prune.is_pruned(lin)
    assert isinstance(lin.weight, nn.Parameter)
    with pytest.raises(AssertionError, match="same shape"):
        prune.l1_unstructured(lin, "weight", 1, importance_scores=fw.ones(3))
    with pytest.raises(ValueError, match="has to be pruned before"):
        prune.remove(lin, "weight")
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(lin, "bias", amount=1, n=2, dim=0)
    with pytest.raises(IndexError, match="Invalid index 2"):
        prune.ln_structured(lin, "weight", amount=1, n=2, dim=2)


def test_importance_scores_and_amount_zero():
    m = nn.Linear(4, 2, bias=False)
    scores = fw.tensor([[8.0, 7.0, 6.0, 5.0], [4.0, 3.0, 2.0, 1.0]])
    prune.l1_unstructured(m, "weight", amount=3, importance_scores=scores)
    np.testing.assert_array_equal(_np(m.weight_mask), [[1, 1, 1, 1], [1, 0, 0, 0]])
    z = nn.Linear(4, 2)
    prune.l1_unstructured(z, "weight", amount=0)
    assert float(z.weight_mask.sum()) == 8


@pytest.mark.parametrize("n", [1, 2, float("inf")])
def test_ln_structured_prunes_whole_channels(n):
    fw.manual_seed(1)
    conv = nn.Conv2d(3, 6, 3)
    w = _np(conv.weight).copy()
    prune.ln_structured(conv, "weight", amount=0.5, n=n, dim=0)
    norms = np.linalg.norm(w.reshape(6, -1), ord=n, axis=1)
    keep = np.sort(np.argsort(-norms, kind="stable")[:3])
    expected = np.zeros_like(w)
    expected[keep] = 1
    np.testing.assert_array_equal(_np(conv.weight_mask), expected)
    # along dim=1 (input channels), counted as an int
    lin = nn.Linear(4, 3)
    wl = _np(lin.weight).copy()
    prune.ln_structured(lin, "weight", amount=1, n=n, dim=1)
    cols = np.linalg.norm(wl, ord=n, axis=0)
    expected = np.ones_like(wl)
    expected[:, np.argmin(cols)] = 0
    np.testing.assert_array_equal(_np(lin.weight_mask), expected)


def test_random_methods_are_seeded_and_count_right():
    def build():
        fw.manual_seed(5)
        m = nn.Conv2d(2, 8, 3)
        prune.random_unstructured(m, "weight", amount=0.4)
        return m

    a, b = build(), build()
    np.testing.assert_array_equal(_np(a.weight_mask), _np(b.weight_mask))
    assert int((_np(a.weight_mask) == 0).sum()) == round(0.4 * a.weight.numel())
    fw.manual_seed(6)
    c = nn.Conv2d(2, 8, 3)
    prune.random_structured(c, "weight", amount=3, dim=0)
    per_channel = _np(c.weight_mask).reshape(8, -1)
    assert sorted(per_channel.sum(1).tolist()) == [0] * 3 + [18] * 5


def test_iterative_pruning_combines_masks_like_pytorch():
    fw.manual_seed(2)
    m = nn.Linear(6, 4)
    w = _np(m.weight).copy()
    prune.l1_unstructured(m, "weight", amount=0.5)
    first = _np(m.weight_mask).copy()
    hook = prune.l1_unstructured(m, "weight", amount=0.5)._forward_pre_hooks
    methods = [h for h in hook.values() if isinstance(h, prune.BasePruningMethod)]
    assert len(methods) == 1 and isinstance(methods[0], prune.PruningContainer)
    assert [type(x) for x in methods[0]] == [prune.L1Unstructured] * 2
    # the second call prunes half of the 12 entries still alive: 6 more
    second = _l1_mask(w, 6, first)
    np.testing.assert_array_equal(_np(m.weight_mask), second)
    assert int(second.sum()) == 6
    # structured pruning after it: norms over the still-alive channels, times the old mask
    prune.ln_structured(m, "weight", amount=1, n=1, dim=0)
    container = next(h for h in m._forward_pre_hooks.values())
    assert container is methods[0] and len(container) == 3  # the container grows in place
    masked = w * second
    alive = np.flatnonzero(second.sum(1) != 0)
    norms = np.abs(masked[alive]).sum(1)
    dead = alive[np.argmin(norms)]
    third = second.copy()
    third[dead] = 0
    np.testing.assert_array_equal(_np(m.weight_mask), third)
    np.testing.assert_array_equal(_np(m.weight), w * third)


def test_global_unstructured_custom_from_mask_and_identity():
    fw.manual_seed(3)
    a, b = nn.Linear(4, 3), nn.Linear(3, 2)
    wa, wb = _np(a.weight).copy(), _np(b.weight).copy()
    prune.global_unstructured([(a, "weight"), (b, "weight")],
                              pruning_method=prune.L1Unstructured, amount=7)
    allw = np.concatenate([wa.ravel(), wb.ravel()])
    mask = _l1_mask(allw, 7)
    np.testing.assert_array_equal(_np(a.weight_mask).ravel(), mask[:12])
    np.testing.assert_array_equal(_np(b.weight_mask).ravel(), mask[12:])
    with pytest.raises(TypeError, match='Only "unstructured"'):
        prune.global_unstructured([(a, "bias")], prune.LnStructured, amount=1, n=2, dim=0)
    with pytest.raises(TypeError, match="importance_scores must be of type dict"):
        prune.global_unstructured([(a, "bias")], prune.L1Unstructured, importance_scores=[1],
                                  amount=1)
    c = nn.Linear(2, 2)
    prune.custom_from_mask(c, "bias", mask=fw.tensor([0.0, 1.0]))
    np.testing.assert_array_equal(_np(c.bias), [0.0, float(_np(c.bias_orig)[1])])
    prune.identity(c, "weight")
    assert float(c.weight_mask.sum()) == 4
    assert list(c.state_dict()) == ["bias_orig", "weight_orig", "bias_mask", "weight_mask"]
    method = prune.L1Unstructured(amount=1)
    t = fw.tensor([3.0, -0.5, 2.0])
    np.testing.assert_array_equal(_np(method.prune(t)), [3.0, 0.0, 2.0])


def test_remove_makes_pruning_permanent_and_state_dict_round_trip():
    fw.manual_seed(4)
    m = nn.Linear(4, 3)
    prune.l1_unstructured(m, "weight", amount=5)
    prune.random_unstructured(m, "bias", amount=1)
    other = nn.Linear(4, 3)
    prune.identity(other, "weight")
    prune.identity(other, "bias")
    other.load_state_dict(m.state_dict())
    x = fw.randn(2, 4)
    np.testing.assert_array_equal(_np(other(x)), _np(m(x)))
    orig = m.weight_orig
    pruned = _np(m.weight).copy()
    prune.remove(m, "weight")
    assert m.weight is orig and isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(_np(m.weight), pruned)
    assert list(m.state_dict()) == ["bias_orig", "weight", "bias_mask"]
    assert not hasattr(m, "weight_orig") and not hasattr(m, "weight_mask")
    assert all(getattr(h, "_tensor_name", None) != "weight"
               for h in m._forward_pre_hooks.values())
    prune.remove(m, "bias")
    assert not prune.is_pruned(m) and list(m.state_dict()) == ["weight", "bias"]


def _pruned_net():
    fw.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    prune.ln_structured(net[0], "weight", amount=1, n=2, dim=0)
    prune.l1_unstructured(net[3], "weight", amount=0.6)
    return net


def test_compiled_training_step_of_pruned_model_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    (m1, m2) = _pruned_net(), _pruned_net()
    o1, o2 = optim.SGD(m1.parameters(), lr=0.1), optim.SGD(m2.parameters(), lr=0.1)
    x, y = fw.randn(5, 2, 6, 6), fw.tensor([0, 1, 2, 0, 1])

    def step(m, o):
        loss = F.cross_entropy(m(x), y)
        o.zero_grad()
        loss.backward()
        o.step()
        return loss

    compiled = fw.compile(lambda: step(m1, o1), fullgraph=True, mode="always")
    for _ in range(3):
        a, b = compiled(), step(m2, o2)
        np.testing.assert_allclose(float(a), float(b), rtol=1e-5)
    assert not compiled.stats()["graph_breaks"]
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(_np(p1), _np(p2), rtol=1e-5, atol=1e-6)
    # the pruned entries of weight_orig never moved (their gradient is masked)
    mask = _np(m1[3].weight_mask)
    w0 = _np(_pruned_net()[3].weight_orig)
    np.testing.assert_array_equal(_np(m1[3].weight_orig)[mask == 0], w0[mask == 0])
    assert (_np(m1[3].weight_orig)[mask == 1] != w0[mask == 1]).mean() > 0.5
    np.testing.assert_allclose(float(compiled()), float(step(m2, o2)), rtol=1e-5)


def test_onnx_export_uses_the_masked_weight():
    net = _pruned_net().eval()
    x = fw.randn(2, 2, 6, 6)
    model = fw.onnx.export(net, x, input_names=["x"], verify=True)
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": _np(x)})
    np.testing.assert_allclose(got, _np(net(x)), rtol=1e-4, atol=1e-5)
    dense = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).eval()
    with fw.no_grad():
        dense[0].weight.copy_(net[0].weight_orig)
        dense[0].bias.copy_(net[0].bias)
        dense[3].weight.copy_(net[3].weight_orig)
        dense[3].bias.copy_(net[3].bias)
    assert not np.allclose(got, _np(dense(x)), atol=1e-3)  # the mask really is applied
