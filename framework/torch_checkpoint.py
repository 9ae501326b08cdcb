"""Read checkpoints written by PyTorch's ``torch.save`` without PyTorch, and without running
anything from the file.

A ``torch.save`` file (the zip format, PyTorch >= 1.6) holds ``<name>/data.pkl``, a pickle
of the saved object whose tensors point at raw storages ``<name>/data/<key>``, and
``<name>/byteorder``. The pickle is read by an unpickler that resolves only an allowlist of
globals, each mapped to a constructor of ours: tensors and parameters
(``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``), storage types (the dtype of a
storage), dtypes, ``collections.OrderedDict``, ``torch.Size``, ``torch.device``, sets,
``_codecs.encode`` (protocol-2 bytes) and NumPy scalars. Any other global (a class of the
saving program, ``os.system``...) raises :class:`~framework.serialization.CheckpointError`
naming it; nothing is imported or called by name. This is the same guarantee as PyTorch's
``torch.load(weights_only=True)``.

Tensors come back as ``fw.Tensor`` (``nn.Parameter`` for saved parameters), each with its own
copy of the data: tensors that shared a storage in PyTorch do not share memory here (as with
:func:`framework.load`).
"""

from __future__ import annotations

import codecs
import collections
import io
import os
import pickle
import sys
import zipfile

import numpy as np

from . import dtypes
from .device import cpu
from .errors import DeviceError
from .serialization import CheckpointError
from .tensor import Tensor

# the legacy typed storage classes PyTorch pickles as a storage's type (torch.FloatStorage...)
_STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}
_DTYPE_NAMES = {
    "float64": "float64", "double": "float64", "float32": "float32", "float": "float32",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
    "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "short": "int16",
    "int8": "int8", "uint8": "uint8", "bool": "bool", "complex64": "complex64",
    "cfloat": "complex64", "complex128": "complex128", "cdouble": "complex128",
}


class _StorageType:
    """A saved storage's type: only its dtype matters."""

    def __init__(self, name: str):
        self.name, self.dtype = name, dtypes.to_dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage read from the archive: a flat NumPy array of its dtype."""

    def __init__(self, array: np.ndarray, dtype, location: str):
        self.array, self.dtype, self.location = array, dtype, location


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2``: a tensor viewing ``storage`` (copied out)."""
    if not isinstance(storage, _Storage):
        raise CheckpointError("torch checkpoint: a tensor's storage is not a storage record")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    flat = storage.array
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    if storage_offset < 0 or any(s < 0 for s in stride) or storage_offset + span > flat.size:
        raise CheckpointError(f"torch checkpoint: a tensor of size {list(size)} and stride "
                              f"{list(stride)} at offset {storage_offset} does not fit its "
                              f"storage of {flat.size} elements")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[storage_offset:], size,
                                           tuple(s * item for s in stride), writeable=False)
    dt = storage.dtype
    out = Tensor._wrap(np.array(view), dt, cpu)
    place = _place(storage.location)
    if place is not cpu:
        out = out.to(place)
    return out.requires_grad_(True) if requires_grad and dt.is_floating_point else out


def _rebuild_tensor(storage, storage_offset, size, stride):
    """``torch._utils._rebuild_tensor`` (older files)."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    """``torch._utils._rebuild_parameter(_with_state)``: an ``nn.Parameter``."""
    from .nn.parameter import Parameter
    if not isinstance(data, Tensor):
        raise CheckpointError("torch checkpoint: a parameter's data is not a tensor")
    return Parameter(data.detach(), requires_grad=bool(requires_grad))


def _place(location: str):
    """The device a ``location`` tag (``"cpu"``, ``"cuda:0"``, ``"meta"``) maps to: cuda
    only when one is available (else the PyTorch-style error)."""
    from .device import meta, to_device
    if location.startswith("cpu"):
        return cpu
    if location == "meta":
        return meta
    if location.startswith("cuda"):
        from . import cuda
        if not cuda.is_available():
            raise DeviceError("torch checkpoint: attempting to deserialize a tensor saved on "
                              f"{location!r}, but no CUDA device is available; pass "
                              "map_location='cpu' to load it on the CPU")
        return to_device("cuda")
    raise CheckpointError(f"torch checkpoint: unknown storage location {location!r}")


def _device(kind, index=None):
    from .device import device
    return device(kind) if index is None else device(kind, index)


def _numpy_scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar``: a NumPy scalar from its dtype and raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError("torch checkpoint: a NumPy scalar of an object dtype is not allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name, align=False, copy=False):
    dt = np.dtype(name)
    if dt.hasobject:
        raise CheckpointError("torch checkpoint: NumPy object dtypes are not allowed")
    return dt


def _allowed_globals() -> dict:
    from .nn.parameter import Parameter
    from .tensor import Size
    table = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.nn.parameter", "Parameter"): Parameter,
        ("torch", "Size"): Size,
        ("torch", "device"): _device,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("_codecs", "encode"): codecs.encode,
        ("numpy.core.multiarray", "scalar"): _numpy_scalar,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
        ("numpy", "dtype"): _numpy_dtype,
    }
    for name in _STORAGE_DTYPES:
        table[("torch", name)] = _StorageType(name)
    table[("torch.storage", "UntypedStorage")] = _StorageType("UntypedStorage")
    for name, fw_name in _DTYPE_NAMES.items():
        table[("torch", name)] = dtypes.to_dtype(fw_name)
    return table


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str,
                 where: str, map_location=None):
        from .device import to_device
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix, self.byteorder, self.where = archive, prefix, byteorder, where
        # map_location replaces every storage's saved location tag
        self.location = None if map_location is None else str(to_device(map_location))
        self.allowed = _allowed_globals()
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"fw.load_torch_checkpoint: {self.where!r} refers to the global "
                f"{module}.{name}, which is not a tensor, container or number type; only "
                "weights and plain data can be loaded (nothing from the file is run). Load "
                "the state_dict instead of a whole pickled object.") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            raise CheckpointError(f"fw.load_torch_checkpoint: {self.where!r} has an unknown "
                                  f"persistent record {pid!r:.80}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"fw.load_torch_checkpoint: {self.where!r} has a storage of "
                                  f"unknown type {storage_type!r:.60}")
        key = key.decode() if isinstance(key, bytes) else str(key)
        location = location.decode() if isinstance(location, bytes) else str(location)
        location = self.location or location
        if key not in self.storages:
            self.storages[key] = _Storage(self._read_storage(key, storage_type.dtype, numel),
                                          storage_type.dtype, location)
        return self.storages[key]

    def _read_storage(self, key: str, dt, numel: int) -> np.ndarray:
        name = f"{self.prefix}data/{key}"
        try:
            raw = self.archive.read(name)
        except KeyError:
            raise CheckpointError(f"fw.load_torch_checkpoint: {self.where!r} is missing the "
                                  f"storage {name!r}") from None
        itemsize = np.dtype(dt.np).itemsize
        if len(raw) < numel * itemsize or len(raw) % itemsize:
            raise CheckpointError(f"fw.load_torch_checkpoint: storage {name!r} in "
                                  f"{self.where!r} holds {len(raw)} bytes, not {numel} "
                                  f"{dt.name} elements (truncated or corrupted)")
        flat = np.frombuffer(raw, dtype=dt.np)
        return flat.byteswap() if self.byteorder != sys.byteorder else flat


def load_torch_checkpoint(f, map_location=None):
    """Load a file written by PyTorch's ``torch.save`` (its zip format) from a path or a
    binary file object: state dicts, optimizer states and nested containers of tensors and
    plain data. Tensors go to the device they were saved on unless ``map_location`` (a
    device or string, e.g. ``"cpu"``) says otherwise. The file is never executed: only
    tensor, container and number types are rebuilt (see the module docstring)."""
    where = os.fspath(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file>")
    try:
        archive = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        raise CheckpointError(f"fw.load_torch_checkpoint: {where!r} is not a zip archive; only "
                              "torch.save's default (zip) format is read, not the legacy "
                              "format of PyTorch < 1.6") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"fw.load_torch_checkpoint: {where!r} is a zip archive but "
                                  "not a torch.save file (no single data.pkl entry)")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        unpickler = _Unpickler(archive.read(pickles[0]), archive, prefix, byteorder, where,
                               map_location)
        try:
            obj = unpickler.load()
        except (CheckpointError, DeviceError):
            raise
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, KeyError,
                IndexError, AttributeError) as exc:
            raise CheckpointError(f"fw.load_torch_checkpoint: {where!r} has a corrupted "
                                  f"data.pkl ({type(exc).__name__}: {exc})") from None
    return obj

