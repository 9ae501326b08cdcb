"""Dynamic quantized modules (PyTorch's ``torch.ao.nn.quantized.dynamic``, also
``framework.nn.quantized.dynamic``): weights quantized ahead of time, activations quantized
at every call from their own range. ``framework.ao.quantization.quantize_dynamic`` swaps
them in for float layers."""

from __future__ import annotations

from .linear import Linear, LinearReLU  # noqa: F401
from .rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell  # noqa: F401

__all__ = ["Linear", "LinearReLU", "LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell"]
