"""OpInfo records: ``fw.gradient`` (uniform spacing, per-dim spacing, coordinate grids,
edge_order 1 and 2) and ``fw.ger``, from framework/ops/torch_gaps.py. References are
``numpy.gradient`` / ``numpy.outer`` in float64.

The other functions of that module (broadcast_shapes, can_cast, poisson, empty_strided,
asarray, frombuffer) are not ops on tensor values: tests/test_torch_gaps.py covers them.
Coordinate tensors are passed positionally (``_gradient_fn(x, *coords, ...)``) so the
gradient, compile and ONNX suites treat them as inputs too."""

from __future__ import annotations

import numpy as np

import framework as fw
from tests.opinfo import (FLOAT_INT, OpInfo, Sample, float_out, make, noncontig,
                          register_opinfo, rng, transposed)

_LOW = {fw.float16: (5e-2, 2e-2), fw.bfloat16: (3e-1, 5e-2)}


def _gradient_fn(x, *coords, **kw):
    if coords:
        kw["spacing"] = list(coords)
    return fw.gradient(x, **kw)


def _gradient_ref(x, *coords, spacing=1, dim=None, edge_order=1):
    if dim is None:
        axes = tuple(range(x.ndim))
    else:
        axes = tuple(d % x.ndim for d in ((dim,) if isinstance(dim, int) else dim))
    if coords:
        varargs = list(coords)
    elif isinstance(spacing, (list, tuple)):
        varargs = list(spacing)
    else:
        varargs = [spacing] * len(axes)
    res = np.gradient(x.astype(np.float64), *varargs, axis=axes, edge_order=edge_order)
    return tuple(res) if isinstance(res, (list, tuple)) else (res,)


def _coords(n, dt):
    """A strictly increasing, non-uniform grid, exact in every dtype."""
    return np.cumsum([0, 1, 2, 1, 3, 1, 2, 2][:n]).astype(dt.np)


def _gradient_samples(dt):
    g = rng(130)

    def m(*shape):
        return make(shape, dt, g)
    out = [Sample((m(5),), name="1d"),
           Sample((m(3, 4),), name="2d-all-dims"),
           Sample((m(3, 4),), {"dim": 1, "spacing": 2.0}, name="dim-spacing"),
           Sample((m(2, 3, 4),), {"dim": [0, -1], "spacing": [0.5, 2]}, name="dims-list"),
           Sample((m(6),), {"edge_order": 2}, name="edge2"),
           Sample((m(3, 5),), {"edge_order": 2, "spacing": 0.5}, name="edge2-2d"),
           Sample((m(4, 2),), {"dim": 1}, name="size2"),
           Sample((transposed(m(4, 3)),), {"dim": 0}, name="T"),
           Sample((noncontig(m(3, 4)),), {"dim": -1, "edge_order": 2}, name="strided"),
           Sample((m(0, 3),), {"dim": 1}, name="empty"),
           Sample((m(6), _coords(6, dt)), name="coords"),
           Sample((m(6), _coords(6, dt)), {"edge_order": 2}, name="coords-edge2"),
           Sample((m(3, 5), _coords(5, dt)), {"dim": 1, "edge_order": 2}, name="coords-dim"),
           Sample((m(3, 4), _coords(3, dt), _coords(4, dt)), name="coords-all"),
           Sample((m(2, 3), _coords(2, dt)), {"dim": 0}, name="coords-size2")]
    return out


def _ger_samples(dt):
    g = rng(131)
    return [Sample((make((3,), dt, g), make((4,), dt, g))),
            Sample((noncontig(make((2,), dt, g)), make((3,), dt, g)), name="strided"),
            Sample((make((0,), dt, g), make((2,), dt, g)), name="empty")]


register_opinfo(
    OpInfo("gradient", _gradient_fn, _gradient_ref, _gradient_samples, dtypes=FLOAT_INT,
           out_dtype=float_out, tols=_LOW),
    OpInfo("ger", fw.ger, np.outer, _ger_samples, dtypes=FLOAT_INT),
    OpInfo("Tensor.ger", lambda a, b: a.ger(b), np.outer, _ger_samples, dtypes=(fw.float32,)),
)
