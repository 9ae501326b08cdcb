"""Checkpoints: ``fw.save(obj, f)`` / ``fw.load(f)`` in the safetensors format.

A checkpoint is an ordinary safetensors file (readable by ``safetensors.numpy.load_file``
or any other safetensors reader). Every tensor or NumPy array in ``obj`` is one entry of
the file, named by its path in ``obj`` (``"fc.weight"`` for a state dict, ``"state.0.exp_avg"``
for an optimizer state dict). The rest of the structure -- dicts (key order and non-string
keys kept, OrderedDict and Counter restored), lists, tuples, sets, numbers (inf/nan too),
strings, bytes, None, bools, dtypes, devices, dataclass instances (a model config:
class name and fields, rebuilt on load only for allowed classes, see ``load``) and
``argparse.Namespace`` (a script's ``args``, rebuilt under the same rule) -- is JSON
in the file's metadata under
``"fw.structure"``. bfloat16 data is stored as U16 with the dtype recorded in the structure
(``safetensors.numpy`` has no bfloat16); complex64/complex128 data (safetensors has no
complex dtype) as F32/F64 with a trailing dimension of 2 (real, imaginary), likewise
recorded, so it round-trips.

Loading never executes code: there is no pickle anywhere. Pickle files (``torch.save``,
``pickle.dump``), zip archives, non-safetensors and truncated or corrupted files raise
:class:`CheckpointError` naming the file and the problem. A safetensors file without the
structure entry (e.g. downloaded weights) loads as a dict of tensors.

Writes are atomic: the file is written to a temporary file in the same directory, flushed
and fsync'ed, then renamed over the target with ``os.replace``, so a crash mid-save leaves
the previous checkpoint intact.

Aliasing: one tensor object appearing several times in ``obj`` is stored once and comes
back as one object; distinct tensors that share storage (views) are stored as independent
copies and do not share storage after loading.
"""

from __future__ import annotations

import argparse
import base64
import collections
import dataclasses
import importlib
import json
import math
import os
import tempfile

import numpy as np

from . import dtypes
from .device import device as _device_cls
from .errors import ArgumentError, FrameworkError
from .tensor import Tensor

_FORMAT = "fw.checkpoint/1"


class CheckpointError(FrameworkError, ValueError):
    """A file that is not a framework checkpoint, or one that is damaged."""


# -- save ----------------------------------------------------------------------------------
class _Encoder:
    """Walks ``obj``: tensors/arrays go to ``arrays`` (by unique name), the rest to JSON."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._memo: dict[int, str] = {}
        self._active: set[int] = set()

    def encode(self, obj, path: list):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, bool):
            return obj if type(obj) is int else int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"$t": "float", "v": repr(obj)}
        if isinstance(obj, Tensor):
            return self._tensor(obj, path)
        if isinstance(obj, np.ndarray):
            name = self._store(obj, path)
            return {"$t": "ndarray", "name": name, "dtype": obj.dtype.name}
        if isinstance(obj, np.generic):
            return {"$t": "npscalar", "dtype": obj.dtype.name, "v": self.encode(obj.item(), path)}
        if isinstance(obj, bytes):
            return {"$t": "bytes", "v": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, dtypes.DType):
            return {"$t": "dtype", "v": obj.name}
        if isinstance(obj, _device_cls):
            return {"$t": "device", "v": str(obj)}
        if id(obj) in self._active:
            raise ArgumentError(f"fw.save: {_where(path)} contains itself (a reference cycle); "
                                "checkpoints must be trees")
        self._active.add(id(obj))
        try:
            return self._container(obj, path)
        finally:
            self._active.discard(id(obj))

    def _container(self, obj, path):
        if isinstance(obj, dict):
            kind = ("counter" if isinstance(obj, collections.Counter) else
                    "odict" if isinstance(obj, collections.OrderedDict) else "dict")
            keys, values = [], []
            for k, v in obj.items():
                if not isinstance(k, (str, int, float, bool, tuple, type(None))):
                    raise ArgumentError(f"fw.save: dict key {k!r} of type {type(k).__name__} "
                                        f"at {_where(path)} is not supported (use str, int, "
                                        "float, bool, None or tuples of them)")
                keys.append(self.encode(k, path + [k]))
                values.append(self.encode(v, path + [k]))
            return {"$t": kind, "k": keys, "v": values}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = [f.name for f in dataclasses.fields(obj)]
            return {"$t": "dataclass", "cls": _class_path(type(obj)), "k": fields,
                    "v": [self.encode(getattr(obj, k), path + [k]) for k in fields]}
        if isinstance(obj, tuple):
            node = {"$t": "tuple", "v": [self.encode(v, path + [i]) for i, v in enumerate(obj)]}
            if hasattr(obj, "_fields"):  # named tuples come back as plain tuples
                node["fields"] = list(obj._fields)
            return node
        if isinstance(obj, list):
            return [self.encode(v, path + [i]) for i, v in enumerate(obj)]
        if isinstance(obj, (set, frozenset)):
            kind = "frozenset" if isinstance(obj, frozenset) else "set"
            return {"$t": kind, "v": [self.encode(v, path) for v in obj]}
        if type(obj) is argparse.Namespace:  # a script's ``"args": args`` checkpoint entry
            items = vars(obj)
            return {"$t": "namespace", "k": list(items),
                    "v": [self.encode(v, path + [k]) for k, v in items.items()]}
        raise ArgumentError(f"fw.save: cannot save an object of type {type(obj).__name__} at "
                            f"{_where(path)}; checkpoints hold tensors, NumPy arrays, numbers, "
                            "strings, bytes, None, dtypes, devices, dataclasses, "
                            "argparse.Namespace and dicts/lists/tuples of them (fw.save never "
                            "pickles)"
                            + _module_hint(obj))

    def _tensor(self, t: Tensor, path):
        if t.device.type == "meta":
            raise ArgumentError(f"fw.save: the tensor at {_where(path)} is a meta tensor and "
                                "has no data to save")
        name = self._memo.get(id(t))
        if name is None:
            arr = t.detach().to("cpu").numpy()
            name = self._store(arr, path)
            self._memo[id(t)] = name
        node = {"$t": "tensor", "name": name, "dtype": t.dtype.name, "device": str(t.device)}
        if t.requires_grad:
            node["requires_grad"] = True
        if type(t).__name__ == "Parameter":
            node["parameter"] = True
        return node

    def _store(self, arr: np.ndarray, path) -> str:
        if arr.dtype.name == "bfloat16":
            arr = arr.view(np.uint16)
        elif arr.dtype.kind == "c":  # (real, imag) pairs: the dtype is in the structure
            arr = np.ascontiguousarray(arr)
            arr = arr.view(arr.real.dtype).reshape(arr.shape + (2,))
        elif arr.dtype.kind not in "biuf":
            raise ArgumentError(f"fw.save: NumPy array of dtype {arr.dtype} at {_where(path)} "
                                "cannot be stored in a safetensors file")
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 1
        while name in self.arrays or name == "__metadata__":
            n += 1
            name = f"{base}#{n}"
        self.arrays[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
        return name


def _where(path) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


def save(obj, f, pickle_module=None, pickle_protocol=None, **kwargs) -> None:
    """Save ``obj`` to the path or binary file object ``f`` as a safetensors checkpoint.

    ``pickle_module``/``pickle_protocol`` are accepted for PyTorch compatibility and
    ignored: nothing is ever pickled. Writes to a path are atomic (see the module docs).
    """
    import safetensors.numpy
    enc = _Encoder()
    structure = enc.encode(obj, [])
    metadata = {"format": "np", "fw.format": _FORMAT,
                "fw.structure": json.dumps(structure, allow_nan=False)}
    if hasattr(f, "write"):
        f.write(safetensors.numpy.save(enc.arrays, metadata=metadata))
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArgumentError(f"fw.save: directory {directory!r} of {path!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    os.close(fd)
    try:
        _set_mode(tmp, path)
        safetensors.numpy.save_file(enc.arrays, tmp, metadata=metadata)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _set_mode(tmp: str, path: str) -> None:
    """Give the new file the permissions the target has (or would get from the umask)."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- load ----------------------------------------------------------------------------------
def _read(f) -> tuple[bytes, str]:
    if hasattr(f, "read"):
        return f.read(), getattr(f, "name", "<file object>")
    path = os.fspath(f)
    if not os.path.exists(path):
        raise FileNotFoundError(f"fw.load: no such file: {path!r}")
    with open(path, "rb") as fh:
        return fh.read(), path


def _check_header(data: bytes, where: str) -> dict:
    """Parse and validate the safetensors header; on failure say what the file is instead
    (a pickle, a zip archive, truncated, corrupted)."""
    header, problem = _parse_header(data)
    if problem is None:
        return header
    stripped = data.rstrip()
    if data[:1] == b"\x80" or (data[:1] in (b"(", b"]", b"}") and stripped[-1:] == b"."):
        raise CheckpointError(f"fw.load: {where!r} is a pickle file (as written by pickle.dump "
                              "or torch.save's legacy format); fw.load never unpickles, because "
                              "unpickling can execute arbitrary code. Convert it to safetensors "
                              "with the program that wrote it.")
    if data[:4] == b"PK\x03\x04":
        raise CheckpointError(f"fw.load: {where!r} is a zip archive (torch.save's default "
                              "format, which contains a pickle); fw.load only reads "
                              "safetensors files. Read a torch.save file with "
                              "fw.load_torch_checkpoint(path), which rebuilds only tensors, "
                              "containers and numbers and runs nothing from the file, then "
                              "fw.save it.")
    raise CheckpointError(f"fw.load: {where!r} {problem}")


def _parse_header(data: bytes):
    """(header, None) for a well-formed safetensors file, else (None, what is wrong)."""
    if len(data) < 8:
        return None, (f"is too short ({len(data)} bytes) to be a safetensors checkpoint: it "
                      "is empty or truncated")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        if n > 100_000_000:
            return None, ("is not a safetensors file (its first 8 bytes do not encode a "
                          "plausible header length)")
        return None, f"is truncated: its header needs {n} bytes but only {len(data) - 8} follow"
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"is not a safetensors file or its header is corrupted ({exc})"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            return None, f"has a corrupted header entry for tensor {name!r}"
    if end > len(data) - 8 - n:
        return None, (f"is truncated: its tensors need {end} bytes of data but only "
                      f"{len(data) - 8 - n} are present")
    return header, None


def _resolve_location(map_location, saved: str):
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return map_location.get(saved, saved)
    if isinstance(map_location, (str, _device_cls)):
        return str(map_location)
    raise ArgumentError(f"fw.load: map_location must be None, a device, a string or a dict "
                        f"of device strings, got {type(map_location).__name__}")


class _Decoder:
    def __init__(self, arrays, where, map_location, weights_only=True):
        self.arrays, self.where, self.map_location = arrays, where, map_location
        self.weights_only = weights_only
        self._tensors: dict[str, Tensor] = {}

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("$t")
        try:
            return self._tagged(kind, node)
        except FrameworkError:
            raise
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise CheckpointError(f"fw.load: {self.where!r} has a corrupted structure entry "
                                  f"of kind {kind!r} ({type(exc).__name__}: {exc})") from None

    def _tagged(self, kind, node):
        if kind in ("dict", "odict", "counter"):
            pairs = [(_hashable(self.decode(k)), self.decode(v))
                     for k, v in zip(node["k"], node["v"])]
            out = {"dict": dict, "odict": collections.OrderedDict,
                   "counter": collections.Counter}[kind]()
            for k, v in pairs:
                out[k] = v
            return out
        if kind == "tuple":
            return tuple(self.decode(v) for v in node["v"])
        if kind in ("set", "frozenset"):
            items = (_hashable(self.decode(v)) for v in node["v"])
            return set(items) if kind == "set" else frozenset(items)
        if kind == "float":
            return float(node["v"])
        if kind == "bytes":
            return base64.b64decode(node["v"])
        if kind == "dtype":
            return dtypes.from_name(node["v"])
        if kind == "device":
            return _device_cls(node["v"])
        if kind == "npscalar":
            return _np_dtype(node["dtype"]).type(self.decode(node["v"]))
        if kind == "ndarray":
            return self._array(node["name"], node["dtype"]).copy()
        if kind == "tensor":
            return self._tensor(node)
        if kind == "dataclass":
            return self._dataclass(node)
        if kind == "namespace":
            return self._namespace(node)
        raise ValueError(f"unknown entry kind {kind!r}")

    def _dataclass(self, node):
        """A dataclass instance: its class from add_safe_globals, or imported by name when
        the caller passed ``weights_only=False`` (PyTorch's rule for non-tensor globals)."""
        path = node["cls"]
        cls = _SAFE_GLOBALS.get(path)
        if cls is None and not self.weights_only:
            module, _, qualname = path.partition(":")
            try:
                cls = importlib.import_module(module)
                for part in qualname.split("."):
                    cls = getattr(cls, part)
            except (ImportError, AttributeError) as exc:
                raise CheckpointError(f"fw.load: {self.where!r} holds an instance of {path}, "
                                      f"which cannot be imported ({exc})") from None
        if cls is None:
            raise CheckpointError(
                f"fw.load: {self.where!r} holds an instance of the dataclass {path}, which is "
                "not an allowed global while weights_only=True; pass weights_only=False if "
                "you trust the file, or allow the class with "
                "fw.serialization.add_safe_globals([cls])")
        values = dict(zip(node["k"], (self.decode(v) for v in node["v"])))
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in values.items() if k in init})
        for k, v in values.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj

    def _namespace(self, node):
        """An ``argparse.Namespace``: allowed with ``weights_only=False`` or after
        ``add_safe_globals([argparse.Namespace])``, as in PyTorch."""
        if self.weights_only and _class_path(argparse.Namespace) not in _SAFE_GLOBALS:
            raise CheckpointError(
                f"fw.load: {self.where!r} holds an argparse.Namespace, which is not an allowed "
                "global while weights_only=True; pass weights_only=False if you trust the "
                "file, or allow it with fw.serialization.add_safe_globals([argparse.Namespace])")
        return argparse.Namespace(**dict(zip(node["k"], (self.decode(v) for v in node["v"]))))

    def _array(self, name, dtype_name):
        if name not in self.arrays:
            raise CheckpointError(f"fw.load: {self.where!r} is corrupted: the structure refers "
                                  f"to tensor {name!r}, which is not in the file")
        arr = self.arrays[name]
        if dtype_name == "bfloat16":
            arr = arr.view(_np_dtype("bfloat16"))
        elif dtype_name in ("complex64", "complex128"):
            arr = np.ascontiguousarray(arr).view(np.dtype(dtype_name))[..., 0]
        return arr

    def _tensor(self, node):
        name = node["name"]
        if name in self._tensors:
            return self._tensors[name]
        from .creation import tensor as make_tensor
        dt = dtypes.from_name(node["dtype"])
        arr = self._array(name, dt.name)
        t = make_tensor(np.array(arr, dtype=dt.np, copy=True), dtype=dt)
        saved = node.get("device", "cpu")
        if callable(self.map_location):
            moved = self.map_location(t, saved)
            t = t if moved is None else moved
        else:
            location = _resolve_location(self.map_location, saved)
            if location != "cpu":
                t = t.to(location)
        if node.get("parameter"):
            from .nn import Parameter
            t = Parameter(t, requires_grad=bool(node.get("requires_grad")))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        self._tensors[name] = t
        return t


def _np_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args):
    """Load a checkpoint written by :func:`save` (or any safetensors file) from a path or a
    binary file object. ``map_location`` (a device, a string, a dict mapping saved device
    strings to new ones, or ``fn(tensor, saved_device) -> tensor``) moves tensors;
    ``mmap``/``pickle_module`` are accepted for PyTorch compatibility: nothing is unpickled.
    Saved dataclass instances (a model's config) come back when their class was passed to
    :func:`add_safe_globals`, or, with ``weights_only=False``, by importing it by name."""
    import safetensors.numpy
    if map_location is not None and not callable(map_location):
        _resolve_location(map_location, "cpu")  # validate early
    data, where = _read(f)
    header = _check_header(data, where)
    try:
        arrays = safetensors.numpy.load(data)
    except Exception as exc:  # safetensors' own validation (SafetensorError, KeyError...)
        raise CheckpointError(f"fw.load: {where!r} is not a valid safetensors file: "
                              f"{exc}") from None
    meta = header.get("__metadata__") or {}
    decoder = _Decoder(arrays, where, map_location, weights_only=weights_only is not False)
    if "fw.structure" not in meta:
        names = [k for k in header if k != "__metadata__"]
        names.sort(key=lambda k: header[k]["data_offsets"][0])
        return collections.OrderedDict(
            (k, decoder._tensor({"name": k, "dtype": _fw_dtype(arrays[k], k, where)}))
            for k in names)
    try:
        structure = json.loads(meta["fw.structure"])
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"fw.load: {where!r} has a corrupted structure entry "
                              f"({exc})") from None
    return decoder.decode(structure)


def _fw_dtype(arr: np.ndarray, name: str, where: str) -> str:
    try:
        return dtypes.from_numpy(arr.dtype).name
    except Exception:
        raise CheckpointError(f"fw.load: tensor {name!r} in {where!r} has dtype {arr.dtype}, "
                              "which the framework does not support") from None


_SAFE_GLOBALS: dict = {}


def _class_path(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def add_safe_globals(safe_globals) -> None:
    """Allow ``fw.load(weights_only=True)`` to rebuild instances of these dataclasses (or
    ``argparse.Namespace``)."""
    for cls in safe_globals:
        if isinstance(cls, tuple):  # PyTorch's (class, "name") form
            cls = cls[0]
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)) and \
                cls is not argparse.Namespace:
            raise ArgumentError(f"add_safe_globals: {cls!r} is not a dataclass; checkpoints "
                                "hold only dataclass and argparse.Namespace instances besides "
                                "plain data")
        _SAFE_GLOBALS[_class_path(cls)] = cls


def get_safe_globals() -> list:
    """The classes :func:`add_safe_globals` allowed."""
    return list(_SAFE_GLOBALS.values())


def clear_safe_globals() -> None:
    """Forget every class :func:`add_safe_globals` allowed."""
    _SAFE_GLOBALS.clear()


__all__ = ["save", "load", "CheckpointError", "add_safe_globals", "get_safe_globals",
           "clear_safe_globals"]


def _module_hint(obj) -> str:
    """For ``fw.save(model, path)`` (PyTorch's whole-model pickle): how to do it here."""
    from .nn.modules.module import Module
    if isinstance(obj, Module):
        return ("; to save a model, save its weights with fw.save(model.state_dict(), path) "
                "and restore them into a new instance with model.load_state_dict(fw.load(path))")
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return "; save its state_dict() instead"
    return ""
