"""The recurrent layer ops (``lstm``, ``gru``, ``rnn``: one layer and direction over a
sequence, see framework/ops/rnn_ops.py) as ONNX's native LSTM / GRU / RNN nodes.

ONNX orders the gate blocks differently from PyTorch (LSTM ``i o f c`` vs ``i f g o``;
GRU ``z r h`` vs ``r z n``), so the weight and bias rows are permuted with one Gather each.
PyTorch's GRU applies the reset gate after the recurrent matmul: ONNX
``linear_before_reset=1``. float64 layers use the decomposition (onnxruntime has no double
kernels for these ops), and so do projected LSTMs (PyTorch's ``proj_size``: ONNX's LSTM
has no output projection); the decomposition is unrolled, so it needs a static sequence
length.
"""

from __future__ import annotations

import numpy as np

from framework import dtypes

from . import DECOMPOSE, lowering
from .nn import _wide_inputs, float_compute
from .elementwise import narrowed

# position in the PyTorch layout of each ONNX gate block
_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}


def _lower(ctx, node, kind):
    n_states = 2 if kind == "lstm" else 1
    x, *rest = node.inputs
    states, (w_ih, w_hh, *biases) = rest[:n_states], rest[n_states:]
    dt = x.dtype
    if node.attrs.get("proj"):
        if not isinstance(x.shape[0], int):
            raise NotImplementedError(
                "onnx export: LSTM with proj_size: ONNX's LSTM node has no output projection "
                "(W_hr), and the unrolled form it is exported as needs a static sequence "
                "length; drop the dynamic axis on the sequence dimension")
        return DECOMPOSE
    if dt is dtypes.float64:
        # valid ONNX, but onnxruntime's LSTM/GRU/RNN kernels are float32-only: keep the
        # model runnable (and exact) with the unrolled decomposition instead
        return DECOMPOSE
    cd = float_compute(dt)
    names = _wide_inputs(ctx, [x] + list(states) + [w_ih, w_hh] + list(biases), dt, cd)
    xn, state_names = names[0], names[1:1 + n_states]
    wn, rn, *bn = names[1 + n_states:]
    hidden = int(w_hh.shape[1])
    rows = np.concatenate([np.arange(b * hidden, (b + 1) * hidden) for b in _ORDER[kind]])
    perm = ctx.const(rows.astype(np.int64), "gate_order")
    zero = ctx.ints([0])

    def weight(name):  # PyTorch rows -> ONNX rows, with the direction axis in front
        return ctx.emit("Unsqueeze", [ctx.emit("Gather", [name, perm], axis=0), zero])

    bias = None
    if bn:
        bias = ctx.emit("Concat", [ctx.emit("Gather", [b, perm], axis=0) for b in bn], axis=0)
        bias = ctx.emit("Unsqueeze", [bias, zero])
    inits = [ctx.emit("Unsqueeze", [s, zero]) for s in state_names]
    attrs = {"hidden_size": hidden,
             "direction": "reverse" if node.attrs["reverse"] else "forward"}
    if kind == "gru":
        attrs["linear_before_reset"] = 1
    if kind == "rnn":
        attrs["activations"] = ["Tanh" if node.attrs["nonlinearity"] == "tanh" else "Relu"]
    op_type = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[kind]
    outs = ctx.emit(op_type, [xn, weight(wn), weight(rn), bias, None] + inits,
                    num_outputs=1 + n_states, **attrs)
    y = ctx.emit("Squeeze", [outs[0], ctx.ints([1])])      # (T, 1, N, H) -> (T, N, H)
    finals = [ctx.emit("Squeeze", [o, zero]) for o in outs[1:]]
    return [narrowed(ctx, o, cd, dt) for o in [y] + finals]


@lowering("lstm")
def _lstm(ctx, node):
    return _lower(ctx, node, "lstm")


@lowering("gru")
def _gru(ctx, node):
    return _lower(ctx, node, "gru")


@lowering("rnn")
def _rnn(ctx, node):
    return _lower(ctx, node, "rnn")
