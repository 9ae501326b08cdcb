"""Write files in ``torch.save``'s zip format without PyTorch, for the loader's tests.

The layout is PyTorch's: ``<name>/data.pkl`` (pickle protocol 2), ``<name>/data/<key>``
(raw little-endian storages), ``<name>/byteorder``, ``<name>/version``. Tensors pickle as
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
OrderedDict())`` with the storage as the persistent id ``("storage", torch.<T>Storage,
key, location, numel)``; parameters as ``torch._utils._rebuild_parameter(tensor,
requires_grad, OrderedDict())``.
"""

import collections
import io
import pickle
import zipfile

import numpy as np

STORAGE_NAMES = {"float64": "DoubleStorage", "float32": "FloatStorage",
                 "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
                 "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage",
                 "int8": "CharStorage", "uint8": "ByteStorage", "bool": "BoolStorage",
                 "complex64": "ComplexFloatStorage"}


class Global:
    """A reference written as the pickle GLOBAL ``module\\nname`` (never resolved here)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle requires reduce callables to be callable
        raise TypeError("a stand-in for a PyTorch global")


class _Reduce:
    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else \
            (self.func, self.args, self.state)


class Storage:
    """One storage: a flat array saved as ``data/<key>``."""

    def __init__(self, array, key, location="cpu"):
        self.array, self.key, self.location = np.ascontiguousarray(array).ravel(), key, location


def tensor(storage, offset=0, size=None, stride=None, requires_grad=False):
    """A tensor record viewing ``storage`` (default: all of it, 1-D)."""
    size = (storage.array.size,) if size is None else tuple(size)
    if stride is None:
        stride = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
    hooks = _Reduce(Global("collections", "OrderedDict"), ())
    return _Reduce(Global("torch._utils", "_rebuild_tensor_v2"),
                   (storage, offset, size, tuple(stride), requires_grad, hooks))


def parameter(tensor_record, requires_grad=True):
    hooks = _Reduce(Global("collections", "OrderedDict"), ())
    return _Reduce(Global("torch._utils", "_rebuild_parameter"),
                   (tensor_record, requires_grad, hooks))


def ordered_dict(items, metadata=None):
    """``collections.OrderedDict`` as a state dict pickles: REDUCE, then SETITEMS, then the
    ``_metadata`` attribute through BUILD."""
    od = collections.OrderedDict(items)
    if metadata is not None:
        od._metadata = metadata
    return od


class _Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, storages):
        super().__init__(file, protocol=2)
        self.storages = storages

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            self.storages[obj.key] = obj
            name = STORAGE_NAMES[obj.array.dtype.name]
            return ("storage", Global("torch", name), obj.key, obj.location, obj.array.size)
        return None

    def _save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[Global] = _save_global_ref


def write(obj, f=None, name="archive", byteorder="little"):
    """Write ``obj`` (built from :func:`tensor`, :func:`parameter`, dicts...) as a torch.save
    zip to ``f`` (a path or file object; default: a new BytesIO, returned)."""
    f = io.BytesIO() if f is None else f
    storages = {}
    buf = io.BytesIO()
    _Pickler(buf, storages).dump(obj)
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", buf.getvalue())
        z.writestr(f"{name}/byteorder", byteorder)
        for key, st in storages.items():
            arr = st.array if byteorder == "little" else st.array.byteswap()
            z.writestr(f"{name}/data/{key}", arr.tobytes())
        z.writestr(f"{name}/version", "3\n")
    if isinstance(f, io.BytesIO):
        f.seek(0)
    return f
