"""Dynamic quantized recurrent layers (PyTorch's ``torch.ao.nn.quantized.dynamic`` LSTM,
GRU, LSTMCell, GRUCell, RNNCell).

Every gate matrix (``weight_ih`` / ``weight_hh`` of each layer and direction) is held, with
its bias, by a dynamic quantized :class:`~.linear.Linear` (``ih_l0``, ``hh_l0``,
``ih_l0_reverse`` ...; state_dict keys ``ih_l0.weight``, ``ih_l0.weight_scale`` ...), so
each gate pre-activation is a dynamic quantized linear, as in PyTorch's
``QuantizedCellParamsDynamic`` (7-bit activations on x86). As PyTorch's CPU path does, a
layer applies its input linear to the whole sequence at once (one set of activation
qparams for all time steps) and its hidden linear at every step; the gate nonlinearities
and the state updates are PyTorch's, in float32.

Not supported (NotImplementedError): ``proj_size > 0`` and ``PackedSequence`` inputs.
Layers run as a Python loop over time steps, so ``fw.compile`` captures one graph per
sequence length (a symbolic length breaks the graph) and ONNX export unrolls the steps.
"""

from __future__ import annotations

from ..... import creation as C
from ..... import dtypes
from ....._state import tls
from .....errors import ArgumentError, DTypeError, GraphBreak, ShapeError
from .....nn.modules.module import Module
from .....ops.movement import cat, stack
from .... import qtypes
from ....quantization.utils import QuantizationError
from .linear import Linear, _check_dtype

__all__ = ["LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _lstm_step(gi, h, c, hh):
    gates = hh(h) + gi
    i, f, g, o = gates.chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _gru_step(gi, h, hh):
    ir, iz, inn = gi.chunk(3, -1)
    hr, hz, hn = hh(h).chunk(3, -1)
    reset, update = (hr + ir).sigmoid(), (hz + iz).sigmoid()
    new = (inn + hn * reset).tanh()
    return (h - new) * update + new


def _float_input(x, name):
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{name}: expected a floating-point input, got {x.dtype.name}")
    return x if x.dtype is dtypes.float32 else x.to(dtypes.float32)


def _steps(x, name) -> int:
    n = x.shape[0]
    if not isinstance(n, int):
        msg = f"{name}: a symbolic sequence length (the steps are a Python loop)"
        if tls.tracer is not None:
            tls.tracer.graph_break(msg)
        raise GraphBreak(msg)
    if n == 0:
        raise ShapeError(f"{name}: Expected sequence length to be larger than 0 in RNN")
    return n


class _RNNBase(Module):
    _MODE = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=qtypes.qint8):
        super().__init__()
        _check_dtype(dtype)
        self.mode, self.input_size, self.hidden_size = self._MODE, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.dtype = float(dropout), bidirectional, dtype
        self.proj_size = 0
        gate = _GATES[self._MODE] * hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            for d in range(dirs):
                size_in = input_size if layer == 0 else hidden_size * dirs
                sfx = self._suffix(layer, d)
                setattr(self, "ih" + sfx, Linear(size_in, gate, bias, dtype))
                setattr(self, "hh" + sfx, Linear(hidden_size, gate, bias, dtype))

    @staticmethod
    def _suffix(layer, direction) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Quantize every gate matrix of a float ``nn.LSTM`` / ``nn.GRU`` with its own
        ``qconfig.weight()`` observer."""
        from ..... import nn
        float_type = getattr(nn, cls.__name__)
        if type(mod) is not float_type:
            raise QuantizationError(f"nn.quantized.dynamic.{cls.__name__}.from_float only "
                                    f"works for nn.{cls.__name__}, got {type(mod).__name__}")
        if not hasattr(mod, "qconfig"):
            raise QuantizationError("Input float module must have qconfig defined")
        if mod.proj_size:
            raise NotImplementedError(f"dynamic quantized {cls.__name__}: proj_size > 0 "
                                      "(LSTM projections) is not supported")
        qconfig = mod.qconfig
        observer_dtype = (qconfig.weight().dtype if qconfig is not None and
                          qconfig.weight is not None else qtypes.qint8)
        new = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first,
                  mod.dropout, mod.bidirectional, dtype=observer_dtype)
        for layer in range(mod.num_layers):
            for d in range(2 if mod.bidirectional else 1):
                sfx = new._suffix(layer, d)
                for kind in ("ih", "hh"):
                    bias = getattr(mod, f"bias_{kind}{sfx}") if mod.bias else None
                    setattr(new, kind + sfx, Linear._from_weight(
                        getattr(mod, f"weight_{kind}{sfx}"), bias, qconfig))
        return new

    def _initial(self, hx, batch, x):
        dirs = 2 if self.bidirectional else 1
        want = (self.num_layers * dirs, batch, self.hidden_size)
        if hx is None:
            return C.zeros(want, device=x.device)
        hx = _float_input(hx, self._get_name())
        if tuple(hx.shape) != want:
            raise ShapeError(f"{self._get_name()}: hidden state has shape {list(hx.shape)}, "
                             f"expected {list(want)}")
        return hx

    def forward(self, input, hx=None):
        from .....nn.utils.rnn import PackedSequence
        name = self._get_name()
        if isinstance(input, PackedSequence):
            raise NotImplementedError(f"{name}: PackedSequence input is not supported by the "
                                      "dynamic quantized recurrent layers")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: expected a 2-D (unbatched) or 3-D input ending in "
                             f"input_size={self.input_size}, got shape {list(input.shape)}")
        batched = input.ndim == 3
        x = _float_input(input, name)
        x = (x.transpose(0, 1) if self.batch_first else x) if batched else x.unsqueeze(1)
        states = self._states(hx, x.shape[1], x, batched)
        out, finals = x, []
        for layer in range(self.num_layers):
            outs = []
            for d in range(2 if self.bidirectional else 1):
                idx = layer * (2 if self.bidirectional else 1) + d
                y, final = self._direction(out, [s[idx] for s in states], layer, d)
                outs.append(y)
                finals.append(final)
            out = cat(outs, -1) if len(outs) > 1 else outs[0]
        out = (out.transpose(0, 1) if self.batch_first else out) if batched else out.squeeze(1)
        finals = [stack([f[k] for f in finals]) for k in range(len(states))]
        if not batched:
            finals = [f.squeeze(1) for f in finals]
        out, finals = out.to(input.dtype), [f.to(input.dtype) for f in finals]
        return out, (tuple(finals) if len(finals) > 1 else finals[0])

    def _direction(self, x, state, layer, d):
        sfx = self._suffix(layer, d)
        gi = getattr(self, "ih" + sfx)(x)  # the whole sequence at once
        hh = getattr(self, "hh" + sfx)
        n = _steps(x, self._get_name())
        ys = [None] * n
        for t in (range(n - 1, -1, -1) if d else range(n)):
            state = self._step(gi[t], state, hh)
            ys[t] = state[0]
        return stack(ys), state

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + f", dtype={self.dtype}"


class LSTM(_RNNBase):
    """Dynamic quantized LSTM: ``(output, (h_n, c_n))``."""

    _MODE = "LSTM"

    def _states(self, hx, batch, x, batched):
        if hx is None:
            return [self._initial(None, batch, x), self._initial(None, batch, x)]
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ArgumentError("DynamicQuantizedLSTM: hx must be a tuple (h_0, c_0)")
        return [self._initial(h if batched else h.unsqueeze(1), batch, x) for h in hx]

    def _step(self, gi, state, hh):
        return _lstm_step(gi, state[0], state[1], hh)

    def _get_name(self) -> str:
        return "DynamicQuantizedLSTM"


class GRU(_RNNBase):
    """Dynamic quantized GRU: ``(output, h_n)``."""

    _MODE = "GRU"

    def _states(self, hx, batch, x, batched):
        return [self._initial(hx if hx is None or batched else hx.unsqueeze(1), batch, x)]

    def _step(self, gi, state, hh):
        return (_gru_step(gi, state[0], hh),)

    def _get_name(self) -> str:
        return "DynamicQuantizedGRU"


class _CellBase(Module):
    _GATE_COUNT = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=qtypes.qint8):
        super().__init__()
        _check_dtype(dtype)
        self.input_size, self.hidden_size, self.bias, self.dtype = (input_size, hidden_size,
                                                                    bias, dtype)
        g = self._GATE_COUNT * hidden_size
        self.ih = Linear(input_size, g, bias, dtype)
        self.hh = Linear(hidden_size, g, bias, dtype)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """Quantize a float cell's ``weight_ih`` / ``weight_hh``."""
        from ..... import nn
        if type(mod) is not getattr(nn, cls.__name__):
            raise QuantizationError(f"nn.quantized.dynamic.{cls.__name__}.from_float only "
                                    f"works for nn.{cls.__name__}, got {type(mod).__name__}")
        if not hasattr(mod, "qconfig"):
            raise QuantizationError("Input float module must have qconfig defined")
        qconfig = mod.qconfig
        kwargs = {"nonlinearity": mod.nonlinearity} if cls is RNNCell else {}
        new = cls(mod.input_size, mod.hidden_size, mod.bias, **kwargs)
        new.ih = Linear._from_weight(mod.weight_ih, mod.bias_ih, qconfig)
        new.hh = Linear._from_weight(mod.weight_hh, mod.bias_hh, qconfig)
        new.dtype = new.ih.dtype
        return new

    def _prepare(self, input, hx):
        name = self._get_name()
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: expected a 1-D or 2-D input ending in "
                             f"input_size={self.input_size}, got shape {list(input.shape)}")
        batched = input.ndim == 2
        x = _float_input(input, name)
        x = x if batched else x.unsqueeze(0)
        want = (x.shape[0], self.hidden_size)

        def state(t):
            if t is None:
                return C.zeros(want, device=x.device)
            t = _float_input(t if batched else t.unsqueeze(0), name)
            if tuple(t.shape) != want:
                raise ShapeError(f"{name}: hidden state has shape {list(t.shape)}, expected "
                                 f"{list(want)}")
            return t
        return x, state, batched

    def _out(self, t, input, batched):
        t = t if batched else t.squeeze(0)
        return t.to(input.dtype)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, dtype={self.dtype}"


class LSTMCell(_CellBase):
    """Dynamic quantized LSTM step: ``(h', c')``."""

    _GATE_COUNT = 4

    def forward(self, input, hx=None):
        x, state, batched = self._prepare(input, hx)
        h0, c0 = (None, None) if hx is None else hx
        h, c = _lstm_step(self.ih(x), state(h0), state(c0), self.hh)
        return self._out(h, input, batched), self._out(c, input, batched)

    def _get_name(self) -> str:
        return "DynamicQuantizedLSTMCell"


class GRUCell(_CellBase):
    """Dynamic quantized GRU step."""

    _GATE_COUNT = 3

    def forward(self, input, hx=None):
        x, state, batched = self._prepare(input, hx)
        return self._out(_gru_step(self.ih(x), state(hx), self.hh), input, batched)

    def _get_name(self) -> str:
        return "DynamicQuantizedGRUCell"


class RNNCell(_CellBase):
    """Dynamic quantized Elman RNN step (``tanh`` or ``relu``)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=qtypes.qint8):
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNNCell: unknown nonlinearity {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, state, batched = self._prepare(input, hx)
        pre = self.hh(state(hx)) + self.ih(x)
        h = pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
        return self._out(h, input, batched)

    def _get_name(self) -> str:
        return "DynamicQuantizedRNNCell"
