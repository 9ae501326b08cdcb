"""The Tensor: metadata + a backend buffer + an autograd link.

A tensor is a view of a storage. On the CPU the buffer is a NumPy array (a NumPy view of
its base's array when the tensor is a view), so writes through views are NumPy's own; the
``Storage`` object is shared by a base and all its views and carries the version counter
that autograd checks. Ops and methods are attached in :mod:`framework.tensor_methods`.
"""

from __future__ import annotations

import numpy as np

from . import dtypes
from ._state import tls
from .device import cpu, device, meta, to_device
from .errors import AutogradError, FwTypeError, GraphBreak


class Storage:
    """What a base tensor and its views share: the in-place version counter."""

    __slots__ = ("version", "__weakref__")

    def __init__(self):
        self.version = 0


class Size(tuple):
    """A shape: a tuple of dims with ``numel()``, as ``torch.Size`` (``Tensor.size()``
    returns one; ``Tensor.shape`` stays a plain tuple, which it equals)."""

    __slots__ = ()

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        n = 1
        for s in self:
            n = n * s
        return n

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(self, other))

    def __repr__(self) -> str:
        return f"framework.Size({list(self)})"


class Tensor:
    """An n-dimensional array with autograd, on a device ("cpu", "cuda" or "meta")."""

    __slots__ = ("_data", "_storage", "shape", "dtype", "device", "requires_grad", "_grad",
                 "grad_fn", "_output_nr", "_base", "_view_ops", "_hooks", "_retains_grad",
                 "_name", "_inference", "__weakref__", "__dict__")

    # Let ``ndarray <op> Tensor`` defer to Tensor's reflected operators.
    __array_priority__ = 1000
    # Let ``<sympy size expression> <op> Tensor`` (``(x.shape[1] - 2.5) * t`` with a dynamic
    # dim in a capture) defer too: sympy skips sympifying an operand with this attribute,
    # which would call float() on the tensor.
    _op_priority = 1000.0
    # How many times an in-place op gave this base a new autograd identity; a view stamped
    # with an older count has a stale grad_fn (see ops/inplace.py refresh_view).
    _ag_rev = 0
    # The forward-AD tangent (framework/autograd/forward_ad.py), set in the instance dict
    # only on dual tensors, so creating a tensor costs nothing more.
    _fw_grad = None

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        # PyTorch's legacy constructor: Tensor(2, 3) is an uninitialised 2x3 tensor,
        # Tensor([1, 2]) is float (the default dtype), Tensor(t) aliases t.
        from .legacy_constructors import legacy_new
        dt = dtypes.get_default_dtype() if dtype is None else dtypes.to_dtype(dtype)
        src = legacy_new(args, dt, device, "Tensor")
        for name in Tensor.__slots__[:-2]:
            setattr(self, name, getattr(src, name))
        if requires_grad:
            self.requires_grad = True

    # -- construction helpers (internal) -------------------------------------------------
    @classmethod
    def _wrap(cls, data, dtype, dev, shape=None, storage=None) -> Tensor:
        t = object.__new__(cls)
        _init(t, data, data.shape if shape is None else shape, dtype, dev,
              Storage() if storage is None else storage)
        return t

    # -- metadata --------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def dim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def size(self, dim: int | None = None):
        """The shape as a :class:`Size`, or one dimension of it."""
        if dim is None:
            return Size(self.shape)
        from .ops.shapes import normalize_dim
        return self.shape[normalize_dim(dim, len(self.shape), "size")]

    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for s in self.shape:
            n = n * s
        return n

    nelement = numel

    def element_size(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize

    def stride(self, dim: int | None = None):
        """Strides in elements (of the underlying view)."""
        if self.device is meta or self._data is None:
            from .ops.shapes import contiguous_strides
            st = contiguous_strides(self.shape)
        else:
            st = tuple(s // self.dtype.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def storage_offset(self) -> int:
        """Offset in elements of this view into its base's buffer."""
        if self.device.type == "cuda":
            return self._data.offset
        if self._base is None or self.device is not cpu:
            return 0
        base = self._base._data  # a view of detach()'s output: add that alias's own offset
        start = self._data.__array_interface__["data"][0]
        return ((start - base.__array_interface__["data"][0]) // self.dtype.itemsize
                + self._base.storage_offset())

    def is_contiguous(self, memory_format=None) -> bool:
        """True when elements are laid out row-major without gaps (or, with
        ``memory_format=fw.channels_last``, channel-innermost without gaps)."""
        if self.device is meta or self._data is None:
            return True
        if memory_format is not None and \
                getattr(memory_format, "name", None) != "contiguous_format":
            from .memory_formats import is_contiguous_as
            return is_contiguous_as(self, memory_format, rank_error=False)
        return bool(self._data.flags.c_contiguous)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a differentiable op (user-created tensors)."""
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_xpu(self) -> bool:
        """False: there is no Intel GPU backend (scripts test it beside ``is_cuda``)."""
        return self.device.type == "xpu"

    @property
    def is_mps(self) -> bool:
        """False: there is no Apple GPU backend."""
        return self.device.type == "mps"

    @property
    def is_meta(self) -> bool:
        return self.device is meta

    @property
    def _version(self) -> int:
        return self._storage.version

    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's storage but detached from autograd."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data
        self.shape = value.shape
        self.dtype = value.dtype
        self.device = value.device
        self._storage = value._storage

    @property
    def is_floating_point_type(self) -> bool:
        return self.dtype.is_floating_point

    def is_floating_point(self) -> bool:
        """True for float16, bfloat16, float32, float64 tensors."""
        return self.dtype.is_floating_point

    def get_device(self) -> int:
        """The CUDA device index, or -1 on the CPU."""
        return -1 if self.device.index is None else self.device.index

    def is_inference(self) -> bool:
        """True for an inference tensor: one made inside ``inference_mode()``, or a view of
        one. Outside the mode it cannot be updated in place, set to require grad, or saved
        for backward (``clone()`` gives a normal tensor)."""
        return self._inference

    # -- autograd --------------------------------------------------------------------------
    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (None until a backward pass reaches this leaf)."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            _check_assigned_grad(self, value)
        self._grad = value

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the ``.grad`` of graph leaves."""
        from .autograd import backward
        backward([self], None if gradient is None else [gradient], retain_graph=retain_graph,
                 create_graph=create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """A new tensor sharing storage, outside autograd."""
        tracer = tls.tracer
        if tracer is not None and tls.grad_enabled:
            # a stop-gradient node: the trace may be differentiated as a graph later
            from .ops.movement import DETACH
            from .ops.registry import apply
            return apply(DETACH, self)
        t = Tensor._wrap(self._data, self.dtype, self.device, self.shape, self._storage)
        t._base = self._base if self._base is not None else self
        t._inference = self._inference  # a view: an inference tensor's alias is one too
        if tracer is not None:
            tracer.alias(self, t)
        return t

    def detach_(self) -> Tensor:
        """Detach this tensor from the graph in place."""
        self.grad_fn = None
        self.requires_grad = False
        if self._fw_grad is not None:  # forward AD too, as PyTorch's detach_
            del self._fw_grad
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (leaves only, or turning it off)."""
        if not self.is_leaf and not requires_grad:
            raise AutogradError("requires_grad_: you can only change requires_grad flags of "
                                "leaf variables; use .detach() for a non-leaf tensor")
        if requires_grad and self.dtype.category < dtypes.FLOAT:
            raise AutogradError(f"requires_grad_: only floating point and complex tensors can "
                                f"require gradients, got dtype {self.dtype.name}")
        if requires_grad and self._inference and not tls.inference_mode:
            raise AutogradError("requires_grad_: Setting requires_grad=True on inference tensor "
                                "outside InferenceMode is not allowed.")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor after backward."""
        if not self.requires_grad:
            raise AutogradError("retain_grad: can't retain_grad on a tensor that has "
                                "requires_grad=False")
        if not self.is_leaf:
            import weakref
            node = self.grad_fn
            if node.retained is None:
                node.retained = {}
            node.retained[self._output_nr] = weakref.ref(self)
            self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient. Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise AutogradError("register_hook: cannot register a hook on a tensor that "
                                "doesn't require gradient")
        if self.grad_fn is not None:
            from .autograd import _add_hook_to_node
            hooks = _add_hook_to_node(self, hook)
            return _HookHandle(hooks, hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf after backward has accumulated its ``.grad``
        (its return value is ignored). Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise AutogradError("register_post_accumulate_grad_hook: cannot register a hook "
                                "on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise AutogradError("post accumulate grad hooks cannot be registered on non-leaf "
                                "tensors")
        from .autograd import PostAccumulateGradHook
        entry = PostAccumulateGradHook(hook)
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(entry)
        return _HookHandle(self._hooks, entry)

    # -- leaving the framework -------------------------------------------------------------
    def _host_array(self, what: str) -> np.ndarray:
        tracer = tls.tracer
        if tracer is not None:
            tracer.graph_break(what)
        if self.device is meta:
            raise GraphBreak(f"{what}: a meta tensor has no data (shape {self.shape})")
        if self.device is cpu:
            return self._data
        from .backends import get_backend
        return get_backend(self.device).to_numpy(self._data)

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU)."""
        if self.requires_grad and not force:
            raise AutogradError("numpy(): can't call numpy() on a tensor that requires grad; "
                                "use tensor.detach().numpy()")
        return self._host_array("Tensor.numpy()")

    def __array__(self, dtype=None, copy=None):
        arr = self._host_array("np.asarray(tensor)")
        return arr if dtype is None else arr.astype(dtype)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        """A NumPy ufunc's result on tensors comes back as a tensor, as in PyTorch
        (``np.sqrt(t)``; ``arr * t`` once the tensor's operator has deferred to NumPy).
        PyTorch turns a bool result into uint8, which is kept."""
        from .creation import from_numpy
        if array.dtype == np.bool_:
            array = array.astype(np.uint8)
        return from_numpy(array if array.flags.c_contiguous else array.copy())

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            from .errors import ArgumentError
            raise ArgumentError(f"item(): a Tensor with {self.numel()} elements cannot be "
                                f"converted to a Python scalar")
        return self._host_array("Tensor.item()").reshape(()).item()

    def tolist(self):
        """The data as nested Python lists (or a number for a 0-d tensor)."""
        return self._host_array("Tensor.tolist()").tolist()

    def __bool__(self) -> bool:
        if self.numel() != 1:
            from .errors import ArgumentError
            raise ArgumentError(f"bool(): the truth value of a tensor with {self.numel()} "
                                "elements is ambiguous")
        return bool(self._host_array("bool(tensor)").reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __format__(self, spec: str) -> str:
        # f"{loss:.4f}" works on one-element tensors, as in PyTorch
        if spec and self.numel() == 1 and self.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __contains__(self, element) -> bool:
        return bool((self == element).any())

    def __index__(self) -> int:
        if self.dtype.category != dtypes.INT or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    __hash__ = object.__hash__

    def __dlpack__(self, *args, **kwargs):
        return self._host_array("Tensor.__dlpack__()").__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._host_array("Tensor.__dlpack_device__()").__dlpack_device__()

    def __repr__(self) -> str:
        from .printing import tensor_repr
        return tensor_repr(self)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self._host_array("pickle(tensor)").copy(), self.dtype.name,
                           str(self.device), self.requires_grad))

    def __deepcopy__(self, memo):
        t = self.detach().clone()
        t.requires_grad = self.requires_grad
        if self.grad is not None:
            t.grad = self.grad.detach().clone()
        memo[id(self)] = t
        return t


def _init(t: Tensor, data, shape, dtype, dev, storage) -> None:
    t._data = data
    t._storage = storage
    t.shape = shape
    t.dtype = dtype
    t.device = dev
    t.requires_grad = False
    t._grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._base = None
    t._view_ops = ()
    t._hooks = None
    t._retains_grad = False
    t._name = None
    t._inference = tls.inference_mode if _inference_blocks else False


# Open ``inference_mode`` blocks in all threads (kept by autograd.grad_mode): while there
# are none, no tensor can be made in inference mode and ``_init`` skips the thread-local
# read. The thread-local flag stays the authority when there are some.
_inference_blocks = 0


def _check_assigned_grad(t: Tensor, g) -> None:
    """PyTorch's checks on ``t.grad = g``: a Tensor of ``t``'s dtype, device and size."""
    if not isinstance(g, Tensor) and not getattr(type(g), "_fw_sparse", False):  # sparse: ok
        raise FwTypeError(f"grad: assigned grad expected to be a Tensor or None but got grad of "
                          f"type {type(g).__name__}")
    if g is t:
        raise AutogradError("grad: can't assign Variable as its own grad")
    if g.dtype is not t.dtype:
        raise AutogradError(f"grad: assigned grad has data of a different type: attempting to "
                            f"assign a gradient with dtype {g.dtype.name} to a tensor with "
                            f"dtype {t.dtype.name}")
    if g.device is not t.device:
        raise AutogradError(f"grad: assigned grad has data located on a different device: "
                            f"attempting to assign a gradient on {g.device} to a tensor on "
                            f"{t.device}")
    if g.shape != t.shape:
        raise AutogradError(f"grad: assigned grad has data of a different size: attempting to "
                            f"assign a gradient of size {list(g.shape)} to a tensor of size "
                            f"{list(t.shape)}")


def _rebuild(array, dtype_name, dev, requires_grad):
    from .creation import tensor as _tensor_factory
    t = _tensor_factory(array, dtype=dtypes.from_name(dtype_name), device=dev)
    t.requires_grad = requires_grad
    return t


class _HookHandle:
    """Removes a registered hook."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        """Unregister the hook (idempotent)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def meta_tensor(shape, dtype, dev: device = meta) -> Tensor:
    """A tensor with a shape and dtype but no data (shapes may be sympy expressions)."""
    t = object.__new__(Tensor)
    _init(t, None, tuple(shape), dtype, dev, Storage())
    return t


def is_tensor(obj) -> bool:
    """True for framework tensors (and Parameters)."""
    return isinstance(obj, Tensor)


__all__ = ["Tensor", "Storage", "meta_tensor", "is_tensor", "to_device", "device"]
