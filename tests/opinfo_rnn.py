"""OpInfo records: the recurrent layer ops ``lstm``, ``gru``, ``rnn`` (one layer and
direction over a sequence), against a NumPy loop over PyTorch's cell equations; the LSTM
also with a projection ``w_hr`` (``proj_size``)."""

from __future__ import annotations

import numpy as np

import framework as fw
from framework.ops import rnn_ops
from tests.opinfo import OpInfo, Sample, make, register_opinfo, rng

_DTYPES = (fw.float32, fw.float64)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _ref(kind):
    def ref(x, *rest, reverse=False, nonlinearity="tanh"):
        n_states = 2 if kind == "lstm" else 1
        states, (w_ih, w_hh, *b) = list(rest[:n_states]), rest[n_states:]
        w_hr = b.pop() if len(b) % 2 else None      # lstm(..., b_ih, b_hh, w_hr)
        b_ih, b_hh = b if b else (0.0, 0.0)
        h = states[0]
        c = states[1] if kind == "lstm" else None
        hs = w_hh.shape[0] // rnn_ops.GATES[kind]
        ys = [None] * x.shape[0]
        for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
            gi, gh = x[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            if kind == "lstm":
                a = gi + gh
                c = _sig(a[:, hs:2 * hs]) * c + _sig(a[:, :hs]) * np.tanh(a[:, 2 * hs:3 * hs])
                h = _sig(a[:, 3 * hs:]) * np.tanh(c)
                h = h if w_hr is None else h @ w_hr.T
            elif kind == "gru":
                r = _sig(gi[:, :hs] + gh[:, :hs])
                z = _sig(gi[:, hs:2 * hs] + gh[:, hs:2 * hs])
                n = np.tanh(gi[:, 2 * hs:] + r * gh[:, 2 * hs:])
                h = (1 - z) * n + z * h
            else:
                a = gi + gh
                h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
            ys[t] = h
        return (np.stack(ys), h, c) if kind == "lstm" else (np.stack(ys), h)
    return ref


def _samples(kind, seed):
    g_count = rnn_ops.GATES[kind]

    def samples(dt):
        g = rng(seed)

        def m(*shape, scale=1.0):
            return (make(shape, dt, g, low=-1.0, high=1.0) * scale).astype(dt.np)
        hs, t, n, i = 3, 4, 2, 5
        states = tuple(m(n, hs) for _ in range(2 if kind == "lstm" else 1))
        w = (m(g_count * hs, i, scale=0.5), m(g_count * hs, hs, scale=0.5))
        b = (m(g_count * hs, scale=0.5), m(g_count * hs, scale=0.5))
        extra = {"nonlinearity": "relu"} if kind == "rnn" else {}
        proj = []
        if kind == "lstm":      # proj_size 2: h0 (N, 2), w_hh (4*H, 2), w_hr (2, H)
            proj = [Sample((m(t, n, i), m(n, 2), states[1], w[0], m(g_count * hs, 2, scale=0.5))
                           + b + (m(2, hs, scale=0.5),), {"reverse": True}, name="proj")]
        return proj + [Sample((m(t, n, i),) + states + w + b, name="bias"),
                Sample((m(t, n, i),) + states + w, {"reverse": True, **extra},
                       name="reverse-nobias", grad=kind != "rnn"),  # relu: kinks
                Sample((m(1, 1, i),) + tuple(s[:1] for s in states) + w, name="one-step")]
    return samples


register_opinfo(
    OpInfo("lstm", rnn_ops.lstm, _ref("lstm"), _samples("lstm", 40), dtypes=_DTYPES,
           op="lstm"),
    OpInfo("gru", rnn_ops.gru, _ref("gru"), _samples("gru", 41), dtypes=_DTYPES, op="gru"),
    OpInfo("rnn", rnn_ops.rnn, _ref("rnn"), _samples("rnn", 42), dtypes=_DTYPES, op="rnn"),
)
