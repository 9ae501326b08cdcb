"""Buffer protocol used by the launchers, and a NumPy-backed buffer for the interpreter.

Launchers in this package accept any object that offers

* ``shape``      -- tuple of Python ints,
* ``dtype``      -- a NumPy dtype (``str(dtype)`` is what Triton mangles: ``float16``,
  ``bfloat16`` (ml_dtypes), ``float32``, ``int32``, ``int64`` ...),
* ``data_ptr()`` -- address of the first element,
* ``stride()``   -- tuple of strides **in elements** (torch convention); objects without it
  may instead have NumPy-style byte ``strides``.

:class:`HostBuffer` implements that protocol over a NumPy array and additionally the
handful of torch-like methods that ``TRITON_INTERPRET=1`` calls on kernel arguments
(``untyped_storage``, ``new_empty``, ``set_``, ``cpu``, ``copy_``, ``storage_offset``,
``size``). Host memory *is* the interpreter's "device" memory, so they all return ``self``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["HostBuffer", "host_empty", "interpreter_enabled", "strides_of"]


def interpreter_enabled() -> bool:
    """Return True when Triton kernels run in the interpreter (``TRITON_INTERPRET=1``).

    Reads ``triton.knobs.runtime.interpret`` when available (triton >= 3.4) and falls back
    to the environment variable. The interpreter must be switched on before the
    ``@triton.jit`` decorators of this package run (i.e. before it is imported).
    """
    try:
        import triton

        return bool(triton.knobs.runtime.interpret)
    except AttributeError:  # pragma: no cover - older triton without knobs
        return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def strides_of(buf) -> tuple[int, ...]:
    """Element strides of a buffer as Python ints: ``buf.stride()``, else NumPy-style byte
    ``buf.strides`` divided by the item size."""
    if callable(getattr(buf, "stride", None)):
        return tuple(int(s) for s in buf.stride())
    itemsize = np.dtype(buf.dtype).itemsize
    return tuple(int(s) // itemsize for s in buf.strides)


class HostBuffer:
    """A NumPy array exposed through the buffer protocol Triton's interpreter expects."""

    __slots__ = ("array",)

    def __init__(self, array):
        """Wrap ``array`` (no copy). Byte strides must be multiples of the item size."""
        array = np.asarray(array)
        if any(s % array.itemsize for s in array.strides):
            raise ValueError(
                f"strides {array.strides} are not multiples of itemsize {array.itemsize}"
            )
        self.array = array

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def empty(cls, shape, dtype) -> HostBuffer:
        """Allocate an uninitialised contiguous buffer (signature of the ``empty`` callable)."""
        return cls(np.empty(tuple(int(s) for s in shape), dtype=np.dtype(dtype)))

    @classmethod
    def zeros(cls, shape, dtype) -> HostBuffer:
        """Allocate a zero-filled contiguous buffer."""
        return cls(np.zeros(tuple(int(s) for s in shape), dtype=np.dtype(dtype)))

    # -- buffer protocol ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape as a tuple of ints."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        """NumPy dtype of the elements."""
        return self.array.dtype

    def data_ptr(self) -> int:
        """Address of the first element of the (possibly strided) view."""
        return int(self.array.__array_interface__["data"][0])

    def stride(self, dim: int | None = None):
        """Strides in elements (all dims, or one dim)."""
        st = tuple(int(s) // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[dim]

    def numpy(self) -> np.ndarray:
        """The wrapped array (shares memory)."""
        return self.array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"HostBuffer(shape={self.shape}, dtype={self.dtype}, stride={self.stride()})"

    # -- methods the Triton interpreter calls (torch.Tensor look-alikes) ------------------
    def size(self, dim: int | None = None):
        """Shape (torch spelling)."""
        return self.shape if dim is None else self.shape[dim]

    def storage_offset(self) -> int:
        """Always 0: ``data_ptr()`` already points at the first element."""
        return 0

    def untyped_storage(self) -> HostBuffer:
        """Host memory is the storage: return self."""
        return self

    def cpu(self) -> HostBuffer:
        """Already on the host: return self."""
        return self

    def new_empty(self, *args, **kwargs) -> HostBuffer:
        """Return self; the interpreter immediately calls :meth:`set_` on the result."""
        return self

    def set_(self, *args, **kwargs) -> HostBuffer:
        """No-op: the interpreter re-points the view at the same memory."""
        return self

    def copy_(self, other) -> HostBuffer:
        """Copy ``other`` into self (a no-op when the interpreter copies self onto self)."""
        if other is not self:
            np.copyto(self.array, np.asarray(other))
        return self


def host_empty(shape, dtype) -> HostBuffer:
    """``empty(shape, dtype)`` allocator for launchers running under the interpreter."""
    return HostBuffer.empty(shape, dtype)
