"""Recurrent layers RNN, LSTM, GRU and the cells RNNCell, LSTMCell, GRUCell, with
PyTorch's parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), gate order and
initialisation ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` for every parameter.

The computation is :mod:`framework.nn.functional_rnn` (ops only, unrolled over time).

RNN, LSTM and GRU also take a :class:`~framework.nn.utils.rnn.PackedSequence` (as PyTorch):
each layer/direction runs the recurrent op once per run of time steps with the same batch
size, on the rows of the packed data that are live during that run (the batch is sorted by
decreasing length, so the live sequences are always the first ``b``). A sequence that ends
leaves its state in ``h_n``/``c_n``; in the reverse direction a sequence joins (from its
``h_0``) at its own last step. ``h_0`` is given and ``h_n`` returned in the original batch
order. The runs are read from ``batch_sizes`` on the host, so a packed forward graph-breaks
under ``fw.compile`` and is not exported to ONNX.

LSTM's ``proj_size = P > 0`` adds ``weight_hr_l{k}`` ``(P, hidden_size)`` per layer and
direction (after the biases, PyTorch's order) and projects the hidden state,
``h_t = W_hr (o_t * tanh(c_t))``: ``h_0``, ``h_n`` and the output have size ``P`` (``P * D``
for the output), ``c_0``/``c_n`` keep ``hidden_size``, ``weight_hh`` is
``(4 * hidden_size, P)`` and layers after the first take ``P * D`` inputs."""

from __future__ import annotations

import math

from ... import dtypes, ops as F
from ...autograd import no_grad
from ...creation import empty
from ...ops import rnn_ops
from ...errors import ArgumentError, FwTypeError, ShapeError
from ...tensor import Tensor
from .. import functional_rnn as FR
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNBase(Module):
    """Shared parameters, checks and ``repr`` of RNN, LSTM and GRU."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ArgumentError(f"{name}: hidden_size must be a positive int, got "
                                f"{hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ArgumentError(f"{name}: num_layers must be a positive int, got "
                                f"{num_layers!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or \
                isinstance(dropout, bool):
            raise ArgumentError(f"{name}: dropout should be a number in range [0, 1] "
                                f"representing the probability of an element being zeroed, "
                                f"got {dropout!r}")
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or proj_size < 0:
            raise ArgumentError(f"{name}: proj_size should be a positive integer or zero to "
                                f"disable projections, got {proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ArgumentError(f"{name}: proj_size argument is only supported for LSTM, not "
                                f"RNN or GRU")
        if proj_size >= hidden_size:
            raise ArgumentError(f"{name}: proj_size has to be smaller than hidden_size, got "
                                f"proj_size={proj_size}, hidden_size={hidden_size}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dirs = 2 if bidirectional else 1
        gate = FR.GATES[mode] * hidden_size
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
        real = proj_size or hidden_size     # the size of h (and of each layer's output)
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                size_in = input_size if layer == 0 else real * dirs
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gate, size_in)), ("weight_hh", (gate, real))]
                if bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                for pname, shape in shapes:
                    setattr(self, pname + sfx, Parameter(empty(shape, dtype=dt, device=device)))
                    self._flat_weights_names.append(pname + sfx)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        with no_grad():
            for p in self.parameters():
                p.uniform_(-stdv, stdv)

    @property
    def all_weights(self):
        """Per layer/direction lists of parameters (PyTorch's ``all_weights``)."""
        per = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        ws = [getattr(self, n) for n in self._flat_weights_names]
        return [ws[i:i + per] for i in range(0, len(ws), per)]

    def _weight_groups(self):
        """``(w_ih, w_hh, b_ih, b_hh, w_hr)`` per layer/direction, absent ones ``None``."""
        groups = []
        for w in self.all_weights:
            b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
            groups.append((w[0], w[1], b_ih, b_hh, w[-1] if self.proj_size else None))
        return groups

    def flatten_parameters(self) -> None:
        """PyTorch packs the weights into one cuDNN buffer here (a no-op off cuDNN). The
        recurrent ops here read each parameter where it is, on every backend, so there is
        nothing to pack: scripts that call this after loading a model keep working."""
        return None

    def _state_sizes(self):
        """Sizes of ``h`` and of ``c``: ``proj_size`` (if set) and ``hidden_size``."""
        return self.proj_size or self.hidden_size, self.hidden_size

    def _prepare(self, input, hx):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise FwTypeError(f"{name}: input must be a Tensor or a PackedSequence, got "
                              f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ShapeError(f"{name}: expected input to be 2-D or 3-D, got {input.ndim}-D "
                             f"(shape {list(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]}")
        batched = input.ndim == 3
        sizes = self._state_sizes()
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        n = x.shape[1]
        dirs = 2 if self.bidirectional else 1

        def state(t, what):
            want = (self.num_layers * dirs, n, sizes[what == "cell"])
            if t is None:  # broadcast zeros: the batch size may be symbolic when traced
                return F.zeros((want[0], 1, want[2]), dtype=x.dtype,
                               device=x.device).expand(want)
            t = t if batched else t.unsqueeze(1)
            if tuple(t.shape) != want:
                shown = want if batched else (want[0], want[2])
                raise ShapeError(f"{name}: expected {what} size {list(shown)}, got "
                                 f"{list(t.shape if batched else t.squeeze(1).shape)}")
            return t

        if self.mode == "LSTM":
            if hx is None:
                hx = (None, None)
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ArgumentError(f"{name}: hx must be a tuple (h_0, c_0)")
            return x, (state(hx[0], "hidden"), state(hx[1], "cell")), batched
        if isinstance(hx, (tuple, list)):
            raise ArgumentError(f"{name}: hx must be a Tensor, got a {type(hx).__name__}")
        return x, state(hx, "hidden"), batched

    def forward(self, input, hx=None):
        """Run the network; returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for LSTM).
        A :class:`PackedSequence` input gives a :class:`PackedSequence` output."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        x, h0, batched = self._prepare(input, hx)
        out, hn = FR.rnn_layers(self.mode, x, h0, self._weight_groups(), self.num_layers,
                                self.bidirectional, self.dropout, self.training)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
            hn = tuple(h.squeeze(1) for h in hn) if isinstance(hn, tuple) else hn.squeeze(1)
        return out, hn

    # -- packed input ------------------------------------------------------------------
    def _forward_packed(self, input, hx):
        name = type(self).__name__
        data, batch_sizes, sorted_indices, unsorted_indices = input
        bs = [int(v) for v in batch_sizes.tolist()]
        if data.ndim != 2 or data.shape[1] != self.input_size:
            raise ShapeError(f"{name}: expected packed data of shape (sum(lengths), "
                             f"{self.input_size}), got {list(data.shape)}")
        if not bs or min(bs) <= 0 or any(a < b for a, b in zip(bs, bs[1:])) or \
                sum(bs) != data.shape[0]:
            raise ShapeError(f"{name}: invalid PackedSequence: batch_sizes {bs} must be "
                             f"positive, non-increasing and sum to data.shape[0] = "
                             f"{data.shape[0]}")
        n, dirs = bs[0], 2 if self.bidirectional else 1
        sizes = self._state_sizes()

        def state(t, what):
            want = (self.num_layers * dirs, n, sizes[what == "cell"])
            if t is None:
                return F.zeros(want, dtype=data.dtype, device=data.device)
            if not isinstance(t, Tensor) or tuple(t.shape) != want:
                shape = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ShapeError(f"{name}: expected {what} size {list(want)}, got {shape}")
            return t if sorted_indices is None else \
                t.index_select(1, sorted_indices.to(t.device))

        if self.mode == "LSTM":
            hx = (None, None) if hx is None else hx
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ArgumentError(f"{name}: hx must be a tuple (h_0, c_0)")
            h0, c0 = state(hx[0], "hidden"), state(hx[1], "cell")
        else:
            if isinstance(hx, (tuple, list)):
                raise ArgumentError(f"{name}: hx must be a Tensor, got a {type(hx).__name__}")
            h0, c0 = state(hx, "hidden"), None
        runs, t0, row = [], 0, 0                      # (first row, steps, batch) per run
        for t in range(1, len(bs) + 1):
            if t == len(bs) or bs[t] != bs[t0]:
                runs.append((row, t - t0, bs[t0]))
                row, t0 = row + (t - t0) * bs[t0], t
        layer_in, h_n, c_n, groups = data, [], [], self._weight_groups()
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                idx = layer * dirs + d
                y, h, c = self._packed_direction(layer_in, runs, h0[idx],
                                                 None if c0 is None else c0[idx],
                                                 groups[idx], d == 1)
                outs.append(y)
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if dirs == 1 else F.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = FR._dropout(layer_in, self.dropout)
        hn = [F.stack(h_n, 0)] + ([F.stack(c_n, 0)] if c0 is not None else [])
        if unsorted_indices is not None:
            hn = [t.index_select(1, unsorted_indices.to(t.device)) for t in hn]
        out = PackedSequence(layer_in, batch_sizes, sorted_indices, unsorted_indices)
        return out, (tuple(hn) if c0 is not None else hn[0])

    def _packed_direction(self, x, runs, h0, c0, weights, reverse):
        """One layer/direction over packed rows ``x``: ``(y rows, h_n, c_n or None)``."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights

        def op(xs, h, c):
            if self.mode == "LSTM":
                return rnn_ops.lstm(xs, h, c, w_ih, w_hh, b_ih, b_hh, w_hr, reverse=reverse)
            if self.mode == "GRU":
                return rnn_ops.gru(xs, h, w_ih, w_hh, b_ih, b_hh, reverse=reverse) + (None,)
            return rnn_ops.rnn(xs, h, w_ih, w_hh, b_ih, b_hh, reverse=reverse,
                               nonlinearity="relu" if self.mode == "RNN_RELU" else "tanh") \
                + (None,)

        def take(row, steps, b):
            return x[row:row + steps * b].reshape(steps, b, x.shape[1])

        ys = []
        if not reverse:             # a sequence that ends leaves its state behind
            h, c, done = h0, c0, []
            for row, steps, b in runs:
                if b < h.shape[0]:
                    done.append((h[b:], None if c is None else c[b:]))
                    h, c = h[:b], (None if c is None else c[:b])
                y, h, c = op(take(row, steps, b), h, c)
                ys.append(y.reshape(steps * b, y.shape[2]))
            done.append((h, c))
            h = F.cat([p[0] for p in reversed(done)], 0)
            c = None if c0 is None else F.cat([p[1] for p in reversed(done)], 0)
        else:                       # a sequence joins, from its h_0, at its last step
            b_last = runs[-1][2]
            h, c = h0[:b_last], (None if c0 is None else c0[:b_last])
            for row, steps, b in reversed(runs):
                if b > h.shape[0]:
                    h = F.cat([h, h0[h.shape[0]:b]], 0)
                    c = None if c0 is None else F.cat([c, c0[c.shape[0]:b]], 0)
                y, h, c = op(take(row, steps, b), h, c)
                ys.append(y.reshape(steps * b, y.shape[2]))
            ys.reverse()
        return (ys[0] if len(ys) == 1 else F.cat(ys, 0)), h, c

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        return s


def _no_proj(name, proj_size):
    # PyTorch rejects the keyword itself on RNN and GRU, whatever its value
    if proj_size is not None:
        raise ArgumentError(f"{name}: proj_size argument is only supported for LSTM, not RNN "
                            f"or GRU")


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 *, proj_size=None):
        _no_proj("RNN", proj_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from "
                                f"'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o, as PyTorch)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n, as PyTorch)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, *, proj_size=None):
        _no_proj("GRU", proj_size)
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------
class RNNCellBase(Module):
    """Shared parameters (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) of the
    cells."""

    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dt = dtypes.to_dtype(dtype) if dtype is not None else dtypes.get_default_dtype()
        g = self._gates * hidden_size
        self.weight_ih = Parameter(empty((g, input_size), dtype=dt, device=device))
        self.weight_hh = Parameter(empty((g, hidden_size), dtype=dt, device=device))
        if bias:
            self.bias_ih = Parameter(empty((g,), dtype=dt, device=device))
            self.bias_hh = Parameter(empty((g,), dtype=dt, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _prepare(self, input, hx):
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ShapeError(f"{name}: expected input to be 1-D or 2-D, got {input.ndim}-D")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has inconsistent input_size: got "
                             f"{input.shape[-1]}, expected {self.input_size}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        want = (x.shape[0], self.hidden_size)

        def state(t):
            if t is None:
                return F.zeros((1, want[1]), dtype=x.dtype, device=x.device).expand(want)
            t = t if batched else t.unsqueeze(0)
            if tuple(t.shape) != want:
                raise ShapeError(f"{name}: hidden state has shape {list(t.shape)}, expected "
                                 f"{list(want)}")
            return t

        if isinstance(hx, (tuple, list)):
            return x, tuple(state(t) for t in hx), batched
        return x, state(hx), batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNNCell: unknown nonlinearity {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        """``h'`` from ``input`` (N, I) and ``hx`` (N, H)."""
        x, h, batched = self._prepare(input, hx)
        fn = FR.rnn_tanh_cell if self.nonlinearity == "tanh" else FR.rnn_relu_cell
        out = fn(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step; returns ``(h', c')``."""

    _gates = 4

    def forward(self, input, hx=None):
        """``(h', c')`` from ``input`` and ``hx = (h, c)``."""
        x, state, batched = self._prepare(input, (None, None) if hx is None else hx)
        h, c = FR.lstm_cell(x, state, self.weight_ih, self.weight_hh, self.bias_ih,
                            self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step."""

    _gates = 3

    def forward(self, input, hx=None):
        """``h'`` from ``input`` and ``hx``."""
        x, h, batched = self._prepare(input, hx)
        out = FR.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else out.squeeze(0)
