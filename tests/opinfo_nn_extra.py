"""OpInfo records: ``pdist`` (``fw.pdist`` / ``F.pdist``), the 3-D adaptive max pool and
max unpool, fractional max pooling with fixed ``_random_samples``, and the in-place
activations ``F.elu_``, ``hardtanh_``, ``leaky_relu_``, ``threshold_``, ``celu_``,
``selu_``. All are compositions of registered ops (no ``op`` of their own).

The NumPy references are written from PyTorch's formulas; the fractional samples are
multiples of 1/8 and the window spacings exact, so the reference (float64) and the
framework (any float dtype) place the windows identically.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

import framework as fw
import framework.nn.functional as F
from tests.opinfo import FLOATS, OpInfo, Sample, make, register_opinfo, rng, transposed

_LOW = {fw.float16: (5e-2, 2e-2), fw.bfloat16: (3e-1, 5e-2)}


# -- pdist ------------------------------------------------------------------------------
def ref_pdist(x, p=2.0):
    """Condensed distances: rows i < j in row-major order."""
    n = x.shape[0]
    out = []
    for i in range(n):
        for j in range(i + 1, n):
            d = np.abs(x[i] - x[j])
            if p == 0:
                out.append(float(np.count_nonzero(d)))
            elif p == math.inf:
                out.append(float(d.max()) if d.size else 0.0)
            else:
                out.append(float((d ** p).sum() ** (1.0 / p)))
    return np.array(out, dtype=np.float64)


def _pdist_samples(dt):
    g = rng(70)
    x = make((5, 3), dt, g)
    return [Sample((x,), name="p2"),
            Sample((x, 1.0), name="p1"),
            Sample((transposed(make((4, 3), dt, g)), 3.0), name="p3-T"),
            Sample((x, 0.5), name="p0.5"),
            Sample((x, 1.5), name="p1.5"),
            Sample((x, math.inf), name="pinf"),
            Sample((x, 0.0), name="p0"),
            Sample((make((1, 3), dt, g),), name="one-row"),
            Sample((make((3, 0), dt, g),), name="no-cols", grad=False)]


# -- 3-D adaptive max pool / max unpool --------------------------------------------------
def _bounds(n, o):
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def ref_adaptive_max3d(x, output_size, return_indices=False):
    out = (output_size,) * 3 if isinstance(output_size, int) else tuple(output_size)
    sp = x.shape[-3:]
    vals = np.zeros(x.shape[:-3] + out)
    idx = np.zeros(x.shape[:-3] + out, np.int64)
    for o in itertools.product(*[range(v) for v in out]):
        sl = tuple(slice(*_bounds(sp[d], out[d])[o[d]]) for d in range(3))
        win = x[(Ellipsis,) + sl]
        flat = win.reshape(win.shape[:-3] + (-1,))
        a = flat.argmax(-1)
        vals[(Ellipsis,) + o] = np.take_along_axis(flat, a[..., None], -1)[..., 0]
        loc = np.unravel_index(a, win.shape[-3:])
        idx[(Ellipsis,) + o] = np.ravel_multi_index(
            tuple(loc[d] + sl[d].start for d in range(3)), sp)
    return (vals, idx) if return_indices else vals


def _adaptive3d_samples(dt):
    g = rng(71)
    return [Sample((make((1, 2, 4, 6, 6), dt, g), (2, 3, 3)), name="uniform"),
            Sample((make((2, 1, 5, 7, 6), dt, g), (2, 3, 4)), name="ragged"),
            Sample((make((2, 3, 4, 5), dt, g), 2), name="unbatched")]


def _unpool3d_samples(dt):
    """Values with the indices a 2x2x2 max pool (stride 2) of a 4x4x4 input could give."""
    g = rng(72)
    x = make((2, 2, 2, 2, 2), dt, g)
    grid = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1)  # (2, 2, 2, 3)
    off = g.integers(0, 2, size=x.shape + (3,))
    pos = 2 * grid + off
    idx = (pos[..., 0] * 16 + pos[..., 1] * 4 + pos[..., 2]).astype(np.int64)
    return [Sample((x, idx, 2), name="k2"),
            Sample((x[0], idx[0], 2, None, 0, (5, 4, 5)), name="unbatched-output_size")]


def ref_unpool3d(x, idx, kernel_size, stride=None, padding=0, output_size=None):
    s = kernel_size if stride is None else stride
    out = tuple(output_size)[-3:] if output_size is not None else tuple(
        (n - 1) * s - 2 * padding + kernel_size for n in x.shape[-3:])
    flat = np.zeros(x.shape[:-3] + (int(np.prod(out)),))
    np.put_along_axis(flat, idx.reshape(idx.shape[:-3] + (-1,)),
                      x.reshape(x.shape[:-3] + (-1,)), -1)
    return flat.reshape(x.shape[:-3] + out)


# -- fractional max pooling ----------------------------------------------------------------
def frac_starts(u, n, o, k, np_dtype=np.float64):
    """PyTorch's interval sequence for one (sample, channel) and dim, in ``np_dtype``."""
    t = np_dtype
    seq = np.zeros(o, np.int64)
    if o > 1:
        alpha = t(t(n - k) / t(o - 1))
        for i in range(o - 1):
            seq[i] = int(t(t(t(i) + t(u)) * alpha)) - int(t(t(u) * alpha))
    if o > 0:
        seq[o - 1] = n - k
    return seq


def ref_fractional(x, samples, kernel_size, output_size, np_dtype=np.float64,
                   return_indices=False):
    """Fractional max pooling over the last ``nd`` dims of a batched input."""
    nd = samples.shape[-1]
    k = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
    out = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    sp = x.shape[-nd:]
    cols = (1, 0) if nd == 2 else (0, 1, 2)
    vals = np.zeros(x.shape[:2] + out, x.dtype)
    idx = np.zeros(x.shape[:2] + out, np.int64)
    for b, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        starts = [frac_starts(samples[b, c, cols[d]], sp[d], out[d], k[d], np_dtype)
                  for d in range(nd)]
        for o in itertools.product(*[range(v) for v in out]):
            sl = tuple(slice(starts[d][o[d]], starts[d][o[d]] + k[d]) for d in range(nd))
            win = x[(b, c) + sl]
            a = int(win.reshape(-1).argmax())
            loc = np.unravel_index(a, win.shape)
            vals[(b, c) + o] = win.reshape(-1)[a]
            idx[(b, c) + o] = np.ravel_multi_index(
                tuple(loc[d] + sl[d].start for d in range(nd)), sp)
    return (vals, idx) if return_indices else vals


def _eighths(shape, g):
    """Samples in [0, 1) on a 1/8 grid (exact in every float dtype)."""
    return g.integers(0, 8, size=shape) / 8.0


def _frac2d_samples(dt):
    g = rng(73)
    # alpha = (7 - 2) / (3 - 1) = 2.5 and (8 - 2) / (4 - 1) = 2: exact
    return [Sample((make((2, 3, 7, 8), dt, g), _eighths((2, 3, 2), g).astype(dt.np), 2,
                    (3, 4)), name="k2"),
            Sample((make((1, 2, 8, 7), dt, g), _eighths((1, 2, 2), g).astype(dt.np), (3, 2),
                    (3, 3)), name="k32")]


def _frac3d_samples(dt):
    g = rng(74)
    return [Sample((make((1, 2, 7, 8, 6), dt, g), _eighths((1, 2, 3), g).astype(dt.np), 2,
                    (3, 4, 3)), name="k2")]


def _frac2d(x, samples, k, out, return_indices=False):
    return F.fractional_max_pool2d(x, k, out, return_indices=return_indices,
                                   _random_samples=samples)


def _frac3d(x, samples, k, out, return_indices=False):
    return F.fractional_max_pool3d(x, k, out, return_indices=return_indices,
                                   _random_samples=samples)


# -- in-place activations ------------------------------------------------------------------
def _act_samples(dt, kinks=(0.0,), extra=()):
    """Values kept 0.25 away from the activation's kinks; one transposed, one 0-d."""
    g = rng(75)
    out = []
    for name, shape in (("2d", (3, 4)), ("0d", ()), ("empty", (0, 2))):
        x = make(shape, dt, g).astype(np.float64)
        for kink in kinks:
            near = np.abs(x - kink) < 0.25
            x = np.where(near, x + 0.5, x)
        out.append(Sample((x.astype(dt.np),) + tuple(extra), name=name))
    out.append(Sample((transposed(out[0].args[0]),) + tuple(extra), name="T"))
    return out


_SELU_A, _SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _elu_ref(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _inplace_records():
    def rec(name, fn, ref, samples):
        return OpInfo(name, fn, ref, samples, dtypes=FLOATS, inplace=True, tols=_LOW)
    return [
        rec("F.elu_", F.elu_, _elu_ref, lambda dt: _act_samples(dt, extra=(0.7,))),
        rec("F.selu_", F.selu_, lambda x: _SELU_S * _elu_ref(x, _SELU_A), _act_samples),
        rec("F.celu_", F.celu_,
            lambda x, a=1.0: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0) / a)),
            lambda dt: _act_samples(dt, extra=(2.0,))),
        rec("F.hardtanh_", F.hardtanh_, lambda x, lo=-1.0, hi=1.0: np.clip(x, lo, hi),
            lambda dt: _act_samples(dt, kinks=(-1.0, 1.0))),
        rec("F.leaky_relu_", F.leaky_relu_, lambda x, s=0.01: np.where(x > 0, x, x * s),
            lambda dt: _act_samples(dt, extra=(0.2,))),
        rec("F.threshold_", F.threshold_, lambda x, t, v: np.where(x > t, x, v),
            lambda dt: _act_samples(dt, kinks=(0.5,), extra=(0.5, -3.0))),
    ]


register_opinfo(
    OpInfo("pdist", fw.pdist, ref_pdist, _pdist_samples, dtypes=FLOATS, tols=_LOW),
    OpInfo("F.adaptive_max_pool3d", F.adaptive_max_pool3d, ref_adaptive_max3d,
           _adaptive3d_samples, dtypes=FLOATS),
    OpInfo("F.adaptive_max_pool3d_indices",
           lambda x, o: F.adaptive_max_pool3d(x, o, return_indices=True),
           lambda x, o: ref_adaptive_max3d(x, o, True), _adaptive3d_samples, dtypes=FLOATS,
           out_dtype=lambda dt: (dt, fw.int64)),
    OpInfo("F.max_unpool3d", F.max_unpool3d, ref_unpool3d, _unpool3d_samples, dtypes=FLOATS),
    OpInfo("F.fractional_max_pool2d", _frac2d, ref_fractional, _frac2d_samples,
           dtypes=FLOATS),
    OpInfo("F.fractional_max_pool2d_indices", lambda *a: _frac2d(*a, return_indices=True),
           lambda *a: ref_fractional(*a, return_indices=True), _frac2d_samples,
           dtypes=FLOATS, out_dtype=lambda dt: (dt, fw.int64)),
    OpInfo("F.fractional_max_pool3d", _frac3d, ref_fractional, _frac3d_samples,
           dtypes=FLOATS),
    OpInfo("F.fractional_max_pool3d_indices", lambda *a: _frac3d(*a, return_indices=True),
           lambda *a: ref_fractional(*a, return_indices=True), _frac3d_samples,
           dtypes=FLOATS, out_dtype=lambda dt: (dt, fw.int64)),
    *_inplace_records(),
)
