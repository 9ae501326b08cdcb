"""OpInfo records: the nn composites registered in framework/ops/nn_ops.py (gelu,
layer_norm, embedding, cross_entropy). Conv and pooling are covered by tests/nn (see
``EXCLUDED`` in tests/opinfo.py)."""

from __future__ import annotations

import math

import numpy as np

from framework.ops import nn_ops
from tests.opinfo import (FLOATS, OpInfo, Sample, make, register_opinfo, rng, transposed,
                          unary_samples)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu_ref(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_samples(dt):
    return unary_samples(dt, ieee=False) + [
        Sample(s.args, {"approximate": "tanh"}, name="tanh") for s in unary_samples(dt)[:3]]


def _ln_samples(dt):
    g = rng(60)
    x = make((2, 3, 4), dt, g)
    w, b = make((4,), dt, g), make((4,), dt, g)
    return [Sample((x, (4,), w, b)), Sample((x, (3, 4))),
            Sample((transposed(make((5, 4), dt, g)), 4, w, b), {"eps": 1e-3})]


def _ln_ref(x, shape, w=None, b=None, eps=1e-5):
    n = 1 if isinstance(shape, int) else len(shape)
    axes = tuple(range(x.ndim - n, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        y = y * w + b
    return y


def _emb_samples(dt):
    g = rng(61)
    w = make((5, 3), dt, g)
    idx = g.integers(0, 5, size=(2, 4)).astype(np.int64)
    # no gradient reaches the padding row by design, so finite differences disagree there
    return [Sample((idx, w)), Sample((idx, w, 1), name="padding_idx", grad=False),
            Sample((np.array(3), w), name="0d"), Sample((np.zeros((0,), np.int64), w))]


def _ce_samples(dt):
    g = rng(62)
    logits = make((4, 5), dt, g)
    return [Sample((logits, np.array([0, 4, 2, 2]))),
            Sample((logits, np.array([1, -100, 3, 0])), name="ignore"),
            Sample((transposed(make((4, 5), dt, g)), np.array([0, 1, 2, 3]), 1),
                   name="ignore_index=1")]


def _ce_ref(logits, target, ignore_index=-100):
    s = logits - logits.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    safe = np.where(target == ignore_index, 0, target)
    picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    return np.where(target == ignore_index, 0.0, -picked)


register_opinfo(
    OpInfo("gelu", nn_ops.gelu, _gelu_ref, _gelu_samples, dtypes=FLOATS, op="gelu"),
    OpInfo("layer_norm", nn_ops.layer_norm, _ln_ref, _ln_samples, dtypes=FLOATS,
           op="layer_norm"),
    OpInfo("embedding", nn_ops.embedding, lambda i, w, p=None: w[i], _emb_samples,
           dtypes=FLOATS, op="embedding"),
    OpInfo("cross_entropy_rows", nn_ops.cross_entropy_rows, _ce_ref, _ce_samples,
           dtypes=FLOATS, op="cross_entropy"),
)
