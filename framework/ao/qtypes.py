"""PyTorch's quantized dtypes and quantization schemes as named markers: ``fw.qint8``,
``fw.quint8``, ``fw.qint32`` and ``fw.per_tensor_affine`` & co. (re-exported at the top
level, as ``torch.qint8`` is).

They configure observers and fake quantization (:mod:`framework.ao.quantization`); they are
not tensor dtypes: this framework has no quantized tensors, quantized values live in plain
``int8``/``uint8``/``int32`` tensors (:attr:`QDType.storage`), so ``fw.zeros(2,
dtype=fw.qint8)`` raises a DTypeError saying so.
"""

from __future__ import annotations

from .. import dtypes

__all__ = ["QDType", "QScheme", "qint8", "quint8", "qint32", "qscheme",
           "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
           "per_channel_symmetric", "per_channel_affine_float_qparams"]


class QDType:
    """A quantized dtype marker: its integer range and the dtype that stores its values."""

    is_quantized = True
    __slots__ = ("name", "min", "max", "storage")

    def __init__(self, name, lo, hi, storage):
        self.name, self.min, self.max, self.storage = name, lo, hi, storage

    @property
    def bits(self) -> int:
        """Bits per value (PyTorch's ``iinfo(dtype).bits``)."""
        return self.storage.itemsize * 8

    @property
    def is_signed(self) -> bool:
        """True for qint8 and qint32."""
        return self.min < 0

    def tensor_dtype_error(self) -> str:
        """What ``to_dtype`` says when this marker is given as a tensor dtype."""
        return (f"{self!r} is a quantized dtype marker, not a tensor dtype: quantized tensors "
                f"are not supported. Store quantized values as {self.storage!r} (see "
                "framework.ao.quantization.quantized_decomposed) or simulate quantization "
                "with fake_quantize_per_tensor_affine")

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (_qdtype, (self.name,))


class QScheme:
    """A quantization scheme marker (``torch.qscheme``)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self) -> str:
        return f"framework.{self.name}"

    def __reduce__(self):
        return (_qscheme, (self.name,))


qscheme = QScheme  # torch.qscheme, the type of the scheme markers
qint8 = QDType("qint8", -128, 127, dtypes.int8)
quint8 = QDType("quint8", 0, 255, dtypes.uint8)
qint32 = QDType("qint32", -(2 ** 31), 2 ** 31 - 1, dtypes.int32)
per_tensor_affine = QScheme("per_tensor_affine")
per_tensor_symmetric = QScheme("per_tensor_symmetric")
per_channel_affine = QScheme("per_channel_affine")
per_channel_symmetric = QScheme("per_channel_symmetric")
per_channel_affine_float_qparams = QScheme("per_channel_affine_float_qparams")

_QDTYPES = {d.name: d for d in (qint8, quint8, qint32)}
_QSCHEMES = {s.name: s for s in (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
                                 per_channel_symmetric, per_channel_affine_float_qparams)}


def _qdtype(name):
    return _QDTYPES[name]


def _qscheme(name):
    return _QSCHEMES[name]
