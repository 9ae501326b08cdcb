"""Recurrent networks as compositions of public ops (matmul, sigmoid, tanh, stack).

Each layer/direction projects the whole input sequence with one matmul
(``x @ W_ih^T + b_ih`` for every time step at once), then loops over time with only the
recurrent ``h @ W_hh^T`` inside the loop. Gate orders are PyTorch's: LSTM ``i, f, g, o``;
GRU ``r, z, n`` with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

Nothing special is recorded: a trace (and an ONNX export) sees the unrolled cell steps,
not a native LSTM/GRU node.
"""

from __future__ import annotations

from .. import ops as F
from ..errors import ArgumentError, ShapeError
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
def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh, relu=False)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """``h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return _rnn_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh, relu=True)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step; ``hx = (h, c)``; returns ``(h', c')``."""
    h, c = hx
    return _lstm_step(_lin(input, w_ih, b_ih), h, c, w_hh, b_hh)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step."""
    return _gru_step(_lin(input, w_ih, b_ih), hx, w_hh, b_hh)


# ---------------------------------------------------------------------------------------
def _run_direction(mode, xg, h, c, w_hh, b_hh, reverse):
    """Loop one direction of one layer over time; xg: (T, N, G*H) projected input."""
    steps = range(xg.shape[0] - 1, -1, -1) if reverse else range(xg.shape[0])
    outs = []
    for t in steps:
        x_t = xg[t]
        if mode == "LSTM":
            h, c = _lstm_step(x_t, h, c, w_hh, b_hh)
        elif mode == "GRU":
            h = _gru_step(x_t, h, w_hh, b_hh)
        else:
            h = _rnn_step(x_t, h, w_hh, b_hh, relu=mode == "RNN_RELU")
        outs.append(h)
    if reverse:
        outs.reverse()
    return F.stack(outs, 0), h, c


def _dropout(x, p):
    keep = uniform(x.shape, dtype=x.dtype, device=x.device) >= p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


def rnn_layers(mode, input, hx, weights, num_layers, bidirectional=False, dropout=0.0,
               training=True):
    """Run a stacked (bi)directional recurrent network over a sequence-first input.

    mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
    input: ``(T, N, I)``; hx: ``(L*D, N, H)`` (a ``(h, c)`` pair for LSTM).
    weights: per layer and direction (forward first), ``(w_ih, w_hh, b_ih, b_hh)`` with
    ``None`` biases allowed.
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
            w_ih, w_hh, b_ih, b_hh = weights[idx]
            xg = _lin(layer_in, w_ih, b_ih)                   # (T, N, G*H), one matmul
            c_init = c0[idx] if c0 is not None else None
            out, h, c = _run_direction(mode, xg, h0[idx], c_init, w_hh, b_hh, reverse=d == 1)
            outs.append(out)
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        layer_in = outs[0] if dirs == 1 else F.cat(outs, -1)
        if dropout and training and layer < num_layers - 1:
            layer_in = _dropout(layer_in, dropout)
    h_n = F.stack(h_n, 0)
    return layer_in, ((h_n, F.stack(c_n, 0)) if mode == "LSTM" else h_n)
