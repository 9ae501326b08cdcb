"""``nn.utils.rnn``: packed variable-length sequences, as ``torch.nn.utils.rnn``.

A :class:`PackedSequence` stores a batch of sequences of different lengths time-major
without padding: ``data`` holds, for each time step ``t``, the rows of the
``batch_sizes[t]`` sequences that are still running (the sequences sorted by decreasing
length), so ``data.shape[0] == sum(lengths)``. ``sorted_indices`` / ``unsorted_indices``
record the permutation when the batch was not sorted (``enforce_sorted=False``).

Packing and unpacking are single ``index_select`` / ``cat`` / ``stack`` ops, so gradients
flow through them. The layout is computed on the host from the lengths (``batch_sizes``
is always an int64 CPU tensor), so under ``fw.compile`` these functions graph-break
(``.tolist()``), and they are not exported to ONNX.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import dtypes, ops as F
from ...creation import tensor as _tensor
from ...errors import ArgumentError, DeviceError, FwTypeError, ShapeError
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence",
           "pad_packed_sequence", "pad_sequence", "unpad_sequence", "pack_sequence",
           "unpack_sequence"]


class _PackedSequenceBase(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def invert_permutation(permutation):
    """The inverse of a 1-D permutation tensor (``None`` stays ``None``)."""
    if permutation is None:
        return None
    perm = np.asarray(permutation.tolist(), dtype=np.int64)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=np.int64)
    return _tensor(inv, dtype=dtypes.int64, device=permutation.device)


class PackedSequence(_PackedSequenceBase):
    """Holds the ``data`` and ``batch_sizes`` of a packed batch of sequences (see the module
    docstring). Build it with :func:`pack_padded_sequence` or :func:`pack_sequence`, not
    directly; like PyTorch's, it is a named tuple ``(data, batch_sizes, sorted_indices,
    unsorted_indices)``."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        """``PackedSequence(data, batch_sizes, sorted_indices=None, unsorted_indices=None)``
        (``unsorted_indices`` defaults to the inverse of ``sorted_indices``)."""
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not isinstance(data, (list, tuple)) or len(data) != 2:
                raise ArgumentError("PackedSequence: pass data and batch_sizes, or a "
                                    "(data, batch_sizes) pair as data")
            data, batch_sizes = data
        if not isinstance(data, Tensor) or not isinstance(batch_sizes, Tensor):
            raise FwTypeError(f"PackedSequence: data and batch_sizes must be Tensors, got "
                              f"{type(data).__name__} and {type(batch_sizes).__name__}")
        if batch_sizes.device.type != "cpu":
            raise DeviceError("PackedSequence: batch_sizes should always be on CPU. Instances "
                              "of PackedSequence should never be created manually. They "
                              "should be instantiated by functions like pack_sequence and "
                              "pack_padded_sequences in nn.utils.rnn.")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """``data`` converted with ``Tensor.to(*args, **kwargs)``; the indices follow it to
        its device; ``batch_sizes`` stays on the CPU. Returns ``self`` when nothing changes."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t):
            return None if t is None else t.to(data.device)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def cuda(self, *args, **kwargs):
        """The sequence on a CUDA device (``cuda()``, ``cuda(1)``, ``cuda("cuda:0")``)."""
        device = args[0] if args else kwargs.pop("device", None)
        if isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device if device is not None else "cuda", **kwargs)

    def cpu(self, *args, **kwargs):
        """The sequence on the CPU."""
        return self.to("cpu", *args, **kwargs)

    def double(self):
        """``data`` as float64."""
        return self.to(dtype=dtypes.float64)

    def float(self):
        """``data`` as float32."""
        return self.to(dtype=dtypes.float32)

    def half(self):
        """``data`` as float16."""
        return self.to(dtype=dtypes.float16)

    def long(self):
        """``data`` as int64."""
        return self.to(dtype=dtypes.int64)

    def int(self):
        """``data`` as int32."""
        return self.to(dtype=dtypes.int32)

    def short(self):
        """``data`` as int16."""
        return self.to(dtype=dtypes.int16)

    def char(self):
        """``data`` as int8."""
        return self.to(dtype=dtypes.int8)

    def byte(self):
        """``data`` as uint8."""
        return self.to(dtype=dtypes.uint8)

    @property
    def is_cuda(self) -> bool:
        """True when ``data`` is on a CUDA device."""
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        """Always False (there is no pinned host memory)."""
        return False


# ---------------------------------------------------------------------------------------
# host-side layout
def _lengths_list(lengths, name):
    """``lengths`` (a list/tuple of ints or a 1-D CPU integer tensor) as a list of ints."""
    if isinstance(lengths, Tensor):
        if lengths.device.type != "cpu":
            raise DeviceError(f"{name}: 'lengths' argument should be a 1D CPU int64 tensor, "
                              f"but got 1D {lengths.device.type} {lengths.dtype.name} tensor")
        if lengths.ndim != 1:
            raise ShapeError(f"{name}: 'lengths' must be 1-D, got shape {list(lengths.shape)}")
        if lengths.dtype.is_floating_point:
            lengths = lengths.to(dtypes.int64)
        return [int(v) for v in lengths.tolist()]
    if not isinstance(lengths, (list, tuple, np.ndarray)):
        raise FwTypeError(f"{name}: 'lengths' must be a list of ints or a 1-D CPU int64 "
                          f"tensor, got {type(lengths).__name__}")
    out = []
    for v in lengths:
        if isinstance(v, Tensor):
            v = v.item()
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            raise FwTypeError(f"{name}: 'lengths' must hold integers, got {v!r}") from None
    return out


def _batch_sizes(lengths_sorted):
    """``batch_sizes[t]`` = number of sequences longer than ``t`` (lengths decreasing)."""
    lens = np.asarray(lengths_sorted, dtype=np.int64)
    return (lens[None, :] > np.arange(int(lens[0]))[:, None]).sum(1).astype(np.int64)


def _packed_rows(batch_sizes, batch):
    """Row indices into a time-major ``(T*B, *)`` flattening for each packed row."""
    return np.concatenate([t * batch + np.arange(b, dtype=np.int64)
                           for t, b in enumerate(batch_sizes)])


def _index(rows, device):
    return _tensor(np.asarray(rows, dtype=np.int64), dtype=dtypes.int64, device=device)


# ---------------------------------------------------------------------------------------
def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch ``input`` (``(T, B, *)``, or ``(B, T, *)`` with
    ``batch_first=True``) of sequences with the given ``lengths`` (a list of ints or a 1-D
    CPU int64 tensor). With ``enforce_sorted=True`` the lengths must be decreasing;
    ``enforce_sorted=False`` sorts the batch and records the permutation in
    ``sorted_indices``. Returns a :class:`PackedSequence`; differentiable in ``input``."""
    name = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise FwTypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    lens = _lengths_list(lengths, name)
    if input.ndim < 2:
        raise ShapeError(f"{name}: input must have at least 2 dimensions (T, B, *), got shape "
                         f"{list(input.shape)}")
    if input.numel() == 0:
        raise ShapeError(f"{name}: Cannot pack empty tensors (input shape "
                         f"{list(input.shape)}).")
    x = input.transpose(0, 1) if batch_first else input
    t_len, batch = x.shape[0], x.shape[1]
    if len(lens) != batch:
        raise ShapeError(f"{name}: Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{len(lens)} (batch_size={batch})")
    if min(lens) <= 0:
        raise ArgumentError(f"{name}: Length of all samples has to be greater than 0, but "
                            f"found an element in 'lengths' that is <= 0 (lengths={lens})")
    if max(lens) > t_len:
        raise ShapeError(f"{name}: a length in 'lengths' ({max(lens)}) is larger than the "
                         f"sequence dimension of input (size {t_len}, input shape "
                         f"{list(input.shape)}, batch_first={batch_first})")
    sorted_indices = None
    if enforce_sorted:
        if any(a < b for a, b in zip(lens, lens[1:])):
            raise ArgumentError(f"{name}: `lengths` array must be sorted in decreasing order "
                                f"when `enforce_sorted` is True. You can pass "
                                f"`enforce_sorted=False` to pack_padded_sequence and/or "
                                f"pack_sequence to sidestep this requirement if you do not "
                                f"need ONNX exportability. (lengths={lens})")
    else:
        order = np.argsort(-np.asarray(lens, dtype=np.int64), kind="stable")
        lens = [lens[i] for i in order]
        sorted_indices = _index(order, input.device)
        x = x.index_select(1, sorted_indices)
    bs = _batch_sizes(lens)
    rows = _index(_packed_rows(bs, batch), input.device)
    data = x.reshape((t_len * batch,) + tuple(x.shape[2:])).index_select(0, rows)
    return PackedSequence(data, _tensor(bs, dtype=dtypes.int64), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of :func:`pack_padded_sequence`: returns ``(padded, lengths)`` with
    ``padded`` of shape ``(T, B, *)`` (``(B, T, *)`` with ``batch_first=True``), the batch
    in its original order, ``T = total_length`` if given (at least the longest length)
    and ``lengths`` an int64 CPU tensor. Differentiable in ``sequence.data``."""
    name = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise FwTypeError(f"{name}: sequence must be a PackedSequence, got "
                          f"{type(sequence).__name__}")
    bs = np.asarray(sequence.batch_sizes.tolist(), dtype=np.int64)
    max_len = int(bs.size)
    if total_length is not None:
        if total_length < max_len:
            raise ArgumentError(f"{name}: Expected total_length to be at least the length of "
                                f"the longest sequence in input, but got "
                                f"total_length={total_length} and max sequence length being "
                                f"{max_len}")
        max_len = int(total_length)
    data = sequence.data
    batch = int(bs[0]) if bs.size else 0
    if int(bs.sum()) != data.shape[0]:
        raise ShapeError(f"{name}: data has {data.shape[0]} rows but batch_sizes sum to "
                         f"{int(bs.sum())}")
    # every padded slot (t, b) reads packed row src[t, b]; the padding reads an extra row
    src = np.full((max_len, batch), data.shape[0], dtype=np.int64)
    offset = 0
    for t, b in enumerate(bs):
        src[t, :b] = offset + np.arange(b)
        offset += int(b)
    pad_row = F.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype,
                     device=data.device)
    ext = F.cat([data, pad_row], 0)
    padded = ext.index_select(0, _index(src.reshape(-1), data.device))
    padded = padded.reshape((max_len, batch) + tuple(data.shape[1:]))
    lengths = (bs[None, :] > np.arange(batch)[:, None]).sum(1).astype(np.int64)
    if sequence.unsorted_indices is not None:
        unsorted = sequence.unsorted_indices
        padded = padded.index_select(1, unsorted.to(data.device))
        lengths = lengths[np.asarray(unsorted.tolist(), dtype=np.int64)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, _tensor(lengths, dtype=dtypes.int64)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack a list of ``(L_i, *)`` tensors into ``(T, B, *)`` (``(B, T, *)`` with
    ``batch_first=True``), ``T = max L_i``, filling with ``padding_value`` on the
    ``padding_side`` (``"right"`` or ``"left"``). Differentiable."""
    name = "pad_sequence"
    if padding_side not in ("left", "right"):
        raise ArgumentError(f"{name}: Expected padding_side to be one of left or right, but "
                            f"got {padding_side!r}.")
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise ArgumentError(f"{name}: received an empty list of sequences")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise FwTypeError(f"{name}: sequences[{i}] must be a Tensor, got "
                              f"{type(s).__name__}")
        if s.ndim < 1 or tuple(s.shape[1:]) != tuple(sequences[0].shape[1:]):
            raise ShapeError(f"{name}: every sequence must have shape (L, *) with the same "
                             f"trailing dimensions; sequences[0] has shape "
                             f"{list(sequences[0].shape)}, sequences[{i}] has shape "
                             f"{list(s.shape)}")
    first = sequences[0]
    max_len = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        s = s.to(device=first.device, dtype=first.dtype)
        missing = max_len - s.shape[0]
        if missing:
            fill = F.full((missing,) + tuple(s.shape[1:]), padding_value, dtype=s.dtype,
                          device=s.device)
            s = F.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    return F.stack(rows, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of unpadded sequences (``padded_sequences[:L_b, b]``) from a right-padded
    batch and its ``lengths`` (list or 1-D tensor). Differentiable."""
    name = "unpad_sequence"
    if not isinstance(padded_sequences, Tensor) or padded_sequences.ndim < 2:
        raise ShapeError(f"{name}: padded_sequences must be a Tensor of at least 2 dimensions")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    lens = _lengths_list(lengths, name) if not isinstance(lengths, Tensor) else \
        [int(v) for v in lengths.reshape(-1).tolist()]
    if len(lens) != x.shape[0]:
        raise ShapeError(f"{name}: got {len(lens)} lengths for a batch of {x.shape[0]}")
    if any(v < 0 or v > x.shape[1] for v in lens):
        raise ShapeError(f"{name}: lengths {lens} out of range for sequences of length "
                         f"{x.shape[1]}")
    return [x[b, :n] for b, n in enumerate(lens)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of ``(L_i, *)`` tensors: ``pack_padded_sequence(pad_sequence(sequences),
    lengths, enforce_sorted=enforce_sorted)``."""
    sequences = list(sequences)
    if not sequences:
        raise ArgumentError("pack_sequence: received an empty list of sequences")
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """The list of sequences (original order) held by a :class:`PackedSequence`."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
