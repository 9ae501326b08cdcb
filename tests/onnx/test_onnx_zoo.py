"""Every nn layer and loss (the module zoo) exported alone, checked, and run in
onnxruntime against eager at opset 18 and the newest."""

import numpy as np
import pytest

import framework as fw
from compiler.onnx import supported_opsets
from framework import nn

NEWEST = max(supported_opsets())


def r(*shape):
    return fw.randn(*shape)


def labels(shape, classes):
    return fw.tensor(np.random.default_rng(0).integers(0, classes, shape))


def signs(shape, seed):
    return fw.tensor(np.sign(np.random.default_rng(seed).normal(size=shape)).astype(np.float32))


def bits(shape):
    return fw.tensor((np.random.default_rng(0).random(shape) < 0.5).astype(np.float32))


def rows(*shape):
    """Inputs for a module applied to one tensor of ``shape``."""
    return lambda: (r(*shape),)


# name -> (module factory, example inputs factory)
ZOO = {
    # activations
    "CELU": (nn.CELU, rows(3, 4)),
    "ELU": (nn.ELU, rows(3, 4)),
    "GLU": (nn.GLU, rows(3, 4)),
    "Hardshrink": (nn.Hardshrink, rows(3, 4)),
    "Hardsigmoid": (nn.Hardsigmoid, rows(3, 4)),
    "Hardswish": (nn.Hardswish, rows(3, 4)),
    "Hardtanh": (nn.Hardtanh, rows(3, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), rows(3, 4)),
    "LogSigmoid": (nn.LogSigmoid, rows(3, 4)),
    "Mish": (nn.Mish, rows(3, 4)),
    "PReLU": (lambda: nn.PReLU(4), rows(3, 4)),
    "ReLU6": (nn.ReLU6, rows(3, 4)),
    "SELU": (nn.SELU, rows(3, 4)),
    "SiLU": (nn.SiLU, rows(3, 4)),
    "Softmin": (lambda: nn.Softmin(1), rows(3, 4)),
    "Softplus": (nn.Softplus, rows(3, 4)),
    "Softshrink": (nn.Softshrink, rows(3, 4)),
    "Softsign": (nn.Softsign, rows(3, 4)),
    "Tanhshrink": (nn.Tanhshrink, rows(3, 4)),
    "Threshold": (lambda: nn.Threshold(0.1, 20.0), rows(3, 4)),
    # normalization
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), rows(2, 4, 3, 3)),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(4, affine=True), rows(2, 4, 3, 3)),
    "LocalResponseNorm": (lambda: nn.LocalResponseNorm(3), rows(2, 4, 3, 3)),
    "BatchNorm3d": (lambda: nn.BatchNorm3d(2), rows(2, 2, 3, 3, 3)),
    # convolution and pooling
    "Conv3d": (lambda: nn.Conv3d(2, 3, 2), rows(1, 2, 4, 4, 4)),
    "ConvTranspose1d": (lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1),
                        rows(2, 2, 5)),
    "ConvTranspose3d": (lambda: nn.ConvTranspose3d(2, 3, 2), rows(1, 2, 3, 3, 3)),
    "MaxPool1d": (lambda: nn.MaxPool1d(2), rows(2, 3, 8)),
    "MaxPool3d": (lambda: nn.MaxPool3d(2), rows(1, 2, 4, 4, 4)),
    "AvgPool1d": (lambda: nn.AvgPool1d(3, 2, padding=1), rows(2, 3, 8)),
    "AvgPool3d": (lambda: nn.AvgPool3d(2), rows(1, 2, 4, 4, 4)),
    "AvgPool2d-ceil": (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                            count_include_pad=False), rows(1, 2, 7, 6)),
    "AdaptiveAvgPool2d-3x2": (lambda: nn.AdaptiveAvgPool2d((3, 2)), rows(1, 2, 7, 5)),
    "AdaptiveMaxPool2d": (lambda: nn.AdaptiveMaxPool2d(2), rows(1, 2, 6, 4)),
    "AdaptiveMaxPool1d-uneven": (lambda: nn.AdaptiveMaxPool1d(3), rows(1, 2, 7)),
    # padding, shuffles, resampling, folding
    "ReflectionPad2d": (lambda: nn.ReflectionPad2d(1), rows(1, 2, 4, 4)),
    "ReplicationPad1d": (lambda: nn.ReplicationPad1d((1, 2)), rows(1, 2, 4)),
    "CircularPad2d": (lambda: nn.CircularPad2d(1), rows(1, 2, 4, 4)),
    "ConstantPad2d": (lambda: nn.ConstantPad2d((1, 0, 2, 1), 0.5), rows(1, 2, 4, 4)),
    "ZeroPad2d": (lambda: nn.ZeroPad2d(1), rows(1, 2, 4, 4)),
    "PixelShuffle": (lambda: nn.PixelShuffle(2), rows(1, 8, 3, 3)),
    "PixelUnshuffle": (lambda: nn.PixelUnshuffle(2), rows(1, 2, 4, 4)),
    "ChannelShuffle": (lambda: nn.ChannelShuffle(2), rows(1, 4, 3, 3)),
    "UpsampleNearest": (lambda: nn.Upsample(scale_factor=2), rows(1, 2, 3, 3)),
    "UpsampleBilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear",
                                             align_corners=True), rows(1, 2, 3, 3)),
    "Fold": (lambda: nn.Fold((4, 4), 2), rows(1, 8, 9)),
    "Unfold": (lambda: nn.Unfold(2, padding=1), rows(1, 2, 4, 4)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), rows(2, 6)),
    # linear, embedding, recurrent cells, transformer
    "Bilinear": (lambda: nn.Bilinear(3, 4, 5), lambda: (r(2, 3), r(2, 4))),
    "EmbeddingBag": (lambda: nn.EmbeddingBag(10, 3, mode="mean"),
                     lambda: (fw.tensor([[1, 2], [3, 9]]),)),
    "LSTMCell": (lambda: nn.LSTMCell(3, 4), rows(2, 3)),
    "GRUCell": (lambda: nn.GRUCell(3, 4), rows(2, 3)),
    "RNNCell": (lambda: nn.RNNCell(3, 4), rows(2, 3)),
    "Transformer": (lambda: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True),
                    lambda: (r(2, 5, 8), r(2, 4, 8))),
    # losses
    "MSELoss": (nn.MSELoss, lambda: (r(3, 4), r(3, 4))),
    "L1Loss": (lambda: nn.L1Loss(reduction="sum"), lambda: (r(3, 4), r(3, 4))),
    "SmoothL1Loss": (nn.SmoothL1Loss, lambda: (r(3, 4), r(3, 4))),
    "HuberLoss": (nn.HuberLoss, lambda: (r(3, 4), r(3, 4))),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1),
                         lambda: (r(4, 5), labels(4, 5))),
    "CrossEntropyLoss-4d": (nn.CrossEntropyLoss, lambda: (r(2, 5, 3, 3), labels((2, 3, 3), 5))),
    "NLLLoss": (nn.NLLLoss, lambda: (r(4, 5).log_softmax(1), labels(4, 5))),
    "BCEWithLogitsLoss": (nn.BCEWithLogitsLoss, lambda: (r(3, 4), fw.rand(3, 4))),
    "BCELoss": (nn.BCELoss, lambda: (fw.rand(3, 4), fw.rand(3, 4))),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean"),
                  lambda: (r(3, 4).log_softmax(1), fw.rand(3, 4))),
    "CosineEmbeddingLoss": (nn.CosineEmbeddingLoss,
                            lambda: (r(3, 4), r(3, 4), fw.tensor([1, -1, 1]))),
    "MarginRankingLoss": (nn.MarginRankingLoss,
                          lambda: (r(3), r(3), fw.tensor([1.0, -1.0, 1.0]))),
    "TripletMarginLoss": (nn.TripletMarginLoss, lambda: (r(3, 4), r(3, 4), r(3, 4))),
    "MultiMarginLoss": (nn.MultiMarginLoss, lambda: (r(4, 5), labels(4, 5))),
    "PoissonNLLLoss": (nn.PoissonNLLLoss, lambda: (r(3, 4), fw.rand(3, 4))),
    "GaussianNLLLoss": (nn.GaussianNLLLoss, lambda: (r(3, 4), r(3, 4), fw.rand(3, 4) + 0.1)),
    "SoftMarginLoss": (nn.SoftMarginLoss, lambda: (r(3, 4), signs((3, 4), 0))),
    "HingeEmbeddingLoss": (nn.HingeEmbeddingLoss, lambda: (r(3, 4), signs((3, 4), 1))),
    "MultiLabelSoftMarginLoss": (nn.MultiLabelSoftMarginLoss,
                                 lambda: (r(3, 4), bits((3, 4)))),
}


@pytest.mark.parametrize("opset", [18, NEWEST])
@pytest.mark.parametrize("name", list(ZOO))
def test_module_exports_and_matches_eager(name, opset):
    make, args = ZOO[name]
    fw.manual_seed(0)
    model, inputs = make(), args()
    fw.onnx.export(model, inputs, opset_version=opset, verify=True)
