"""nn.utils.fusion: eval-mode conv/linear + BatchNorm folded into one layer equals the
pair (Conv1d/2d/3d, ConvTranspose2d, with and without biases and BN affine), PyTorch's
assertion errors, and the fused conv exports to a single ONNX Conv checked in onnxruntime."""

from collections import Counter

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.nn.utils import fusion


def _np(t):
    return t.detach().numpy()


def _randomize(bn, seed=0):
    g = np.random.default_rng(seed)
    c = bn.num_features
    with fw.no_grad():
        bn.running_mean.copy_(fw.tensor(g.normal(size=c).astype(np.float32)))
        bn.running_var.copy_(fw.tensor(g.uniform(0.3, 2.0, c).astype(np.float32)))
        if bn.affine:
            bn.weight.copy_(fw.tensor(g.normal(1.0, 0.5, c).astype(np.float32)))
            bn.bias.copy_(fw.tensor(g.normal(size=c).astype(np.float32)))
    return bn.eval()


CASES = [
    (nn.Conv1d, nn.BatchNorm1d, (2, 3, 9), False),
    (nn.Conv2d, nn.BatchNorm2d, (2, 3, 7, 6), False),
    (nn.Conv3d, nn.BatchNorm3d, (2, 3, 5, 4, 5), False),
    (nn.ConvTranspose2d, nn.BatchNorm2d, (2, 3, 5, 4), True),
]


@pytest.mark.parametrize("conv_cls,bn_cls,shape,transpose", CASES,
                         ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_conv_equals_conv_then_bn(conv_cls, bn_cls, shape, transpose, bias, affine):
    fw.manual_seed(0)
    conv = conv_cls(3, 5, 3, bias=bias).eval()
    bn = _randomize(bn_cls(5, affine=affine, eps=1e-3))
    fused = nn.utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    assert type(fused) is conv_cls and fused is not conv
    assert isinstance(fused.weight, nn.Parameter) and isinstance(fused.bias, nn.Parameter)
    assert conv.bias is None if not bias else conv.bias is not fused.bias
    x = fw.randn(*shape)
    with fw.no_grad():
        np.testing.assert_allclose(_np(fused(x)), _np(bn(conv(x))), rtol=1e-5, atol=1e-5)
    # the reference formula, in NumPy
    s = (_np(bn.weight) if affine else 1.0) / np.sqrt(_np(bn.running_var) + 1e-3)
    b = _np(conv.bias) if bias else 0.0
    axis_shape = [1, -1] if transpose else [-1, 1]
    np.testing.assert_allclose(
        _np(fused.weight),
        _np(conv.weight) * s.reshape(axis_shape + [1] * (len(shape) - 2)), rtol=1e-6)
    np.testing.assert_allclose(
        _np(fused.bias),
        (b - _np(bn.running_mean)) * s + (_np(bn.bias) if affine else 0.0), rtol=1e-5,
        atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_equals_linear_then_bn(bias):
    fw.manual_seed(1)
    lin = nn.Linear(6, 4, bias=bias).eval()
    bn = _randomize(nn.BatchNorm1d(4), seed=1)
    fused = nn.utils.fuse_linear_bn_eval(lin, bn)
    x = fw.randn(3, 6)
    np.testing.assert_allclose(_np(fused(x)), _np(bn(lin(x))), rtol=1e-5, atol=1e-5)
    w, b = fusion.fuse_linear_bn_weights(lin.weight, lin.bias, bn.running_mean, bn.running_var,
                                         bn.eps, bn.weight, bn.bias)
    np.testing.assert_array_equal(_np(w), _np(fused.weight))
    assert w.requires_grad and b.requires_grad == bias
    # one BN feature broadcasts over every output
    one = _randomize(nn.BatchNorm1d(1), seed=2)
    np.testing.assert_allclose(_np(nn.utils.fuse_linear_bn_eval(lin, one)(x)),
                               _np(one(lin(x).reshape(-1, 1)).reshape(3, 4)), rtol=1e-5,
                               atol=1e-5)


def test_fusion_errors_are_pytorchs_assertions():
    conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        nn.utils.fuse_conv_bn_eval(conv, bn.eval())
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        nn.utils.fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(3))
    with pytest.raises(AssertionError, match="linear.out_features == bn.num_features"):
        nn.utils.fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(4).eval())
    with pytest.raises(fusion.FusionError, match="running statistics"):
        nn.utils.fuse_conv_bn_eval(conv.eval(), nn.BatchNorm2d(3, track_running_stats=False)
                                   .eval())
    w, b = fusion.fuse_conv_bn_weights(conv.weight.to(fw.float64), None,
                                       fw.zeros(3), fw.ones(3), 1e-5, None, None)
    assert w.dtype is fw.float64 and b.dtype is fw.float64 and not b.requires_grad


def test_fused_conv_exports_to_one_onnx_conv():
    fw.manual_seed(2)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1).eval(), _randomize(nn.BatchNorm2d(4), seed=3)
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    x = fw.randn(2, 3, 6, 6)
    model = fw.onnx.export(fused, x, input_names=["x"], verify=True)
    assert Counter(n.op_type for n in model.graph.node) == Counter({"Conv": 1})
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": _np(x)})
    np.testing.assert_allclose(got, _np(bn(conv(x))), rtol=1e-4, atol=1e-5)
