"""Recurrent networks: stacked, (bi)directional ``rnn_layers`` over the per-layer ops
``lstm``/``gru``/``rnn`` (``framework/ops/rnn_ops.py``: one op per layer and direction, a
NumPy loop on the CPU, an unrolled decomposition elsewhere, BPTT as its VJP), and the
single-step cells written with public ops.

Gate orders are PyTorch's: LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
"""

from __future__ import annotations

from .. import ops as F
from ..amp.autocast import autocast_op
from ..errors import ArgumentError, ShapeError
from ..ops import rnn_ops
from ..ops.creation_ops import uniform

__all__ = ["rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell", "rnn_layers"]

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _lin(x, w, b):
    out = F.matmul(x, w.t())
    return out if b is None else out + b


# ---------------------------------------------------------------------------------------
# single steps, given the input projection ``xg = x @ W_ih^T + b_ih``
def _rnn_step(xg, h, w_hh, b_hh, relu):
    pre = xg + _lin(h, w_hh, b_hh)
    return F.relu(pre) if relu else F.tanh(pre)


def _lstm_step(xg, h, c, w_hh, b_hh):
    gates = xg + _lin(h, w_hh, b_hh)
    i, f, g, o = F.chunk(gates, 4, -1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    return F.sigmoid(o) * F.tanh(c), c


def _gru_step(xg, h, w_hh, b_hh):
    hg = _lin(h, w_hh, b_hh)
    xr, xz, xn = F.chunk(xg, 3, -1)
    hr, hz, hn = F.chunk(hg, 3, -1)
    r = F.sigmoid(xr + hr)
    z = F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)
    return (1 - z) * n + z * h


# ---------------------------------------------------------------------------------------
# cells (one time step, PyTorch's RNNCell/LSTMCell/GRUCell functional forms)
@autocast_op("rnn_tanh_cell")
def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh, relu=False)


@autocast_op("rnn_relu_cell")
def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh, relu=True)


@autocast_op("lstm_cell")
def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step; ``hx = (h, c)``; returns ``(h', c')``."""
    h, c = hx
    return _lstm_step(_lin(input, w_ih, b_ih), h, c, w_hh, b_hh)


@autocast_op("gru_cell")
def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step."""
    return _gru_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh)


# ---------------------------------------------------------------------------------------
def _dropout(x, p):
    keep = uniform(x.shape, dtype=x.dtype, device=x.device) >= p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


def rnn_layers(mode, input, hx, weights, num_layers, bidirectional=False, dropout=0.0,
               training=True):
    """Run a stacked (bi)directional recurrent network over a sequence-first input.

    mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
    input: ``(T, N, I)``; hx: ``(L*D, N, H)`` (a ``(h, c)`` pair for LSTM).
    weights: per layer and direction (forward first), ``(w_ih, w_hh, b_ih, b_hh)`` with
    ``None`` biases allowed, and for LSTM optionally a fifth ``w_hr (P, H)`` (a projection,
    PyTorch's ``proj_size``; then ``h`` and the output have size ``P``).
    Returns ``(output (T, N, D*H), h_n)`` with ``h_n = (h, c)`` for LSTM.
    """
    if mode not in GATES:
        raise ArgumentError(f"rnn: unknown mode {mode!r}")
    if input.ndim != 3:
        raise ShapeError(f"rnn: expected a 3-D sequence-first input, got {list(input.shape)}")
    dirs = 2 if bidirectional else 1
    if len(weights) != num_layers * dirs:
        raise ArgumentError(f"rnn: expected {num_layers * dirs} weight groups, got "
                            f"{len(weights)}")
    h0, c0 = hx if mode == "LSTM" else (hx, None)
    layer_in = input
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            idx = layer * dirs + d
            w_ih, w_hh, b_ih, b_hh, *w_hr = weights[idx]
            if w_hr and w_hr[0] is not None and mode != "LSTM":
                raise ArgumentError(f"rnn: a projection weight is only supported for LSTM, "
                                    f"not {mode}")
            if mode == "LSTM":
                out, h, c = rnn_ops.lstm(layer_in, h0[idx], c0[idx], w_ih, w_hh, b_ih, b_hh,
                                         w_hr[0] if w_hr else None, reverse=d == 1)
                c_n.append(c)
            elif mode == "GRU":
                out, h = rnn_ops.gru(layer_in, h0[idx], w_ih, w_hh, b_ih, b_hh, reverse=d == 1)
            else:
                out, h = rnn_ops.rnn(layer_in, h0[idx], w_ih, w_hh, b_ih, b_hh,
                                     nonlinearity="relu" if mode == "RNN_RELU" else "tanh",
                                     reverse=d == 1)
            outs.append(out)
            h_n.append(h)
        layer_in = outs[0] if dirs == 1 else F.cat(outs, -1)
        if dropout and training and layer < num_layers - 1:
            layer_in = _dropout(layer_in, dropout)
    h_n = F.stack(h_n, 0)
    return layer_in, ((h_n, F.stack(c_n, 0)) if mode == "LSTM" else h_n)
