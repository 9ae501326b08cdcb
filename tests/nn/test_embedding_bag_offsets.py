"""``embedding_bag`` with 1-D input + offsets in modes sum / mean: computed by adding rows
into their bag (no host read of the bag lengths), so it is captured by ``fw.compile`` and
exported to ONNX whole; and ``sparse=True`` gives a sparse COO weight gradient (the
text-classification tutorial's ``EmbeddingBag(..., sparse=True)``)."""

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

RNG = np.random.default_rng(0)
W = RNG.standard_normal((10, 3)).astype(np.float32)
INP = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 7])


def _np_bags(offsets, mode, include_last_offset=False, padding_idx=None, psw=None):
    n = len(INP)
    ends = list(offsets[1:]) + ([] if include_last_offset else [n])
    starts = offsets[:-1] if include_last_offset else offsets
    out = []
    for a, b in zip(starts, ends):
        keep = [i for i in range(a, b) if INP[i] != padding_idx]
        rows = W[INP[keep]] * (1 if psw is None else psw[keep, None])
        out.append(np.zeros(3) if not keep else rows.sum(0) if mode == "sum" else rows.mean(0))
    return np.stack(out) if out else np.zeros((0, 3))


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("offsets,last", [([0, 3, 3, 8], False), ([0, 2, 10], True),
                                          ([0, 4, 6, 10], True), ([0], False),
                                          ([0, 10], False)])
def test_matches_numpy_with_empty_bags_and_last_offset(mode, offsets, last):
    out = F.embedding_bag(fw.tensor(INP), fw.tensor(W), fw.tensor(offsets), mode=mode,
                          include_last_offset=last)
    np.testing.assert_allclose(out.numpy(), _np_bags(offsets, mode, last), rtol=1e-6,
                               atol=1e-6)


def test_padding_idx_and_per_sample_weights():
    offsets = [0, 3, 8]
    out = F.embedding_bag(fw.tensor(INP), fw.tensor(W), fw.tensor(offsets), mode="mean",
                          padding_idx=4)
    np.testing.assert_allclose(out.numpy(), _np_bags(offsets, "mean", padding_idx=4),
                               rtol=1e-6)
    psw = RNG.uniform(0.5, 2, size=len(INP)).astype(np.float32)
    out = F.embedding_bag(fw.tensor(INP), fw.tensor(W), fw.tensor(offsets), mode="sum",
                          per_sample_weights=fw.tensor(psw))
    np.testing.assert_allclose(out.numpy(), _np_bags(offsets, "sum", psw=psw), rtol=1e-6)
    empty = F.embedding_bag(fw.tensor(INP), fw.tensor(W), fw.tensor([], dtype=fw.int64))
    assert empty.shape == (0, 3)


def test_captured_without_graph_break_and_dynamic_lengths():
    bag = nn.EmbeddingBag.from_pretrained(fw.tensor(W), freeze=False)
    step = fw.compile(lambda t, o: bag(t, o).pow(2).sum(), mode="always", fullgraph=True)
    for n, offs in ((10, [0, 3, 8]), (7, [0, 1, 5]), (9, [0, 0, 4])):
        t, o = fw.tensor(INP[:n]), fw.tensor(offs)
        np.testing.assert_allclose(step(t, o).item(), (bag(t, o) ** 2).sum().item(),
                                   rtol=1e-6)
    st = step.stats()
    assert not st["graph_breaks"] and st["eager_calls"] == 0 and st["captures"] <= 2, st


def test_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    bag = nn.EmbeddingBag.from_pretrained(fw.tensor(W), mode="mean")
    t, o = fw.tensor(INP), fw.tensor([0, 3, 3, 8])
    fw.onnx.export(bag, (t, o), str(tmp_path / "bag.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "bag.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, dict(zip(names, (INP, np.array([0, 3, 3, 8])))))[0]
    np.testing.assert_allclose(got, bag(t, o).numpy(), rtol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_sparse_gradient_densifies_to_the_dense_one(mode):
    t, o = fw.tensor(INP), fw.tensor([0, 3, 8])
    grads = []
    for sparse in (True, False):
        bag = nn.EmbeddingBag.from_pretrained(fw.tensor(W), freeze=False, mode=mode,
                                              sparse=sparse)
        (bag(t, o) * fw.arange(1.0, 4.0)).sum().backward()
        assert bag.weight.grad.is_sparse == sparse
        grads.append(bag.weight.grad.to_dense() if sparse else bag.weight.grad)
        if sparse:
            fw.optim.SGD(bag.parameters(), lr=0.5).step()
            np.testing.assert_allclose(bag.weight.detach().numpy(),
                                       W - 0.5 * grads[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads[0].numpy(), grads[1].numpy(), rtol=1e-6)
