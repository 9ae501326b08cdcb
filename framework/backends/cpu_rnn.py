"""NumPy kernels for the recurrent ops ``lstm``, ``gru``, ``rnn`` (see ops/rnn_ops.py):
the input projection of every step in one matmul, then a plain loop over time."""

from __future__ import annotations

import numpy as np

from ..ops import rnn_ops  # noqa: F401  (registers the ops these kernels serve)
from .cpu import IMPLS, impl


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _prepare(x, w_ih, biases):
    cd = np.float32 if x.dtype.itemsize < 4 else x.dtype
    xg = np.matmul(x.astype(cd, copy=False), w_ih.astype(cd, copy=False).T)
    b_hh = None
    if biases:
        xg = xg + biases[0].astype(cd, copy=False)
        b_hh = biases[1].astype(cd, copy=False)
    return cd, xg, b_hh


def _steps(t_len, reverse):
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


@impl("lstm")
def lstm(x, h0, c0, w_ih, w_hh, *rest, reverse, proj=False):
    """LSTM layer: returns (y, h_T, c_T); with ``proj`` the last operand is ``w_hr``."""
    biases, w_hr = (rest[:-1], rest[-1]) if proj else (rest, None)
    cd, xg, b_hh = _prepare(x, w_ih, biases)
    w = w_hh.astype(cd, copy=False).T
    w_r = None if w_hr is None else w_hr.astype(cd, copy=False).T
    h, c = h0.astype(cd), c0.astype(cd)
    hs = c.shape[-1]
    y = np.empty(x.shape[:2] + (h.shape[-1],), cd)
    for t in _steps(x.shape[0], reverse):
        a = xg[t] + h @ w
        if b_hh is not None:
            a += b_hh
        i, f = _sigmoid(a[:, :hs]), _sigmoid(a[:, hs:2 * hs])
        g, o = np.tanh(a[:, 2 * hs:3 * hs]), _sigmoid(a[:, 3 * hs:])
        c = f * c + i * g
        h = o * np.tanh(c)
        if w_r is not None:
            h = h @ w_r
        y[t] = h
    dt = x.dtype
    return y.astype(dt, copy=False), h.astype(dt, copy=False), c.astype(dt, copy=False)


@impl("gru")
def gru(x, h0, w_ih, w_hh, *biases, reverse):
    """GRU layer: returns (y, h_T)."""
    cd, xg, b_hh = _prepare(x, w_ih, biases)
    w = w_hh.astype(cd, copy=False).T
    h = h0.astype(cd)
    hs = h.shape[-1]
    y = np.empty(x.shape[:2] + (hs,), cd)
    for t in _steps(x.shape[0], reverse):
        hg = h @ w
        if b_hh is not None:
            hg += b_hh
        r = _sigmoid(xg[t, :, :hs] + hg[:, :hs])
        z = _sigmoid(xg[t, :, hs:2 * hs] + hg[:, hs:2 * hs])
        n = np.tanh(xg[t, :, 2 * hs:] + r * hg[:, 2 * hs:])
        h = (1 - z) * n + z * h
        y[t] = h
    return y.astype(x.dtype, copy=False), h.astype(x.dtype, copy=False)


@impl("rnn")
def rnn(x, h0, w_ih, w_hh, *biases, nonlinearity, reverse):
    """Elman RNN layer: returns (y, h_T)."""
    cd, xg, b_hh = _prepare(x, w_ih, biases)
    w = w_hh.astype(cd, copy=False).T
    h = h0.astype(cd)
    y = np.empty(x.shape[:2] + (h.shape[-1],), cd)
    for t in _steps(x.shape[0], reverse):
        a = xg[t] + h @ w
        if b_hh is not None:
            a += b_hh
        h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
        y[t] = h
    return y.astype(x.dtype, copy=False), h.astype(x.dtype, copy=False)


def install() -> None:
    """Attach these kernels to their ops (also done by ``framework.backends.cpu.install``)."""
    from ..ops.registry import OPS
    for name in ("lstm", "gru", "rnn"):
        OPS[name].impls["cpu"] = IMPLS[name]
