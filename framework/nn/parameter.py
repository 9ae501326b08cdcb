"""``nn.Parameter``: a tensor that a Module registers as a learnable parameter,
``nn.Buffer`` (a tensor a Module registers as a buffer when assigned as an attribute) and
the lazy placeholders ``UninitializedParameter`` / ``UninitializedBuffer``."""

from __future__ import annotations

from ..errors import ArgumentError
from ..tensor import Tensor, _init


class Parameter(Tensor):
    """A Tensor that is automatically registered as a parameter when assigned to a Module.

    ``Parameter(data, requires_grad=True)`` shares ``data``'s storage (as PyTorch does) and
    is a leaf of the autograd graph. Ops on a parameter return plain tensors.
    """

    def __new__(cls, data=None, requires_grad: bool = True):
        return object.__new__(cls)

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            from ..creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        _init(self, data._data, data.shape, data.dtype, data.device, data._storage)
        self._inference = data._inference  # shares data's storage, as a view does
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            p.grad = self.grad.detach().clone()
        memo[id(self)] = p
        return p

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (Tensor.__reduce_ex__(self, protocol), self.requires_grad))


def _rebuild_parameter(tensor_reduce, requires_grad):
    fn, args = tensor_reduce
    return Parameter(fn(*args).detach(), requires_grad)


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute
    (``self.running_mean = nn.Buffer(t, persistent=True)``); the module stores ``t``."""

    def __new__(cls, data=None, *, persistent: bool = True):
        return object.__new__(cls)

    def __init__(self, data=None, *, persistent: bool = True):
        if data is None:
            from ..creation import empty
            data = empty(0)
        _init(self, data._data, data.shape, data.dtype, data.device, data._storage)
        self._inference = data._inference
        self.persistent = persistent


class UninitializedTensorMixin:
    """Shared behaviour of the lazy placeholders: no shape until ``materialize(shape)``,
    which gives the tensor its data and turns it into ``cls_to_become`` in place (so
    anything holding the object, an optimizer included, sees the real tensor)."""

    cls_to_become: type = Tensor

    @property
    def shape(self):
        raise ArgumentError(f"Attempted to use an uninitialized parameter "
                            f"({type(self).__name__}). This error happens when you are using "
                            "a `LazyModule` or explicitly manipulating "
                            f"`nn.parameter.{type(self).__name__}` objects. When using "
                            "LazyModules call `forward` with a dummy batch to initialize the "
                            "parameters before calling framework functions")

    @shape.setter
    def shape(self, value) -> None:
        Tensor.shape.__set__(self, value)

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Allocate an uninitialized tensor of ``shape`` (on this placeholder's device and
        dtype unless given) and become ``cls_to_become``."""
        from ..creation import empty
        if isinstance(shape, int):
            shape = (shape,)
        data = empty(tuple(shape), device=self.device if device is None else device,
                     dtype=self.dtype if dtype is None else dtype)
        self.__class__ = self.cls_to_become
        self.data = data

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        return (type(self), (self.requires_grad,))

    def __deepcopy__(self, memo):
        copy = type(self)(self.requires_grad, self.device, self.dtype)
        memo[id(self)] = copy
        return copy


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (used by the ``Lazy*`` modules); it becomes
    a regular :class:`Parameter` on ``materialize``."""

    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        return object.__new__(cls)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        from ..creation import empty
        Parameter.__init__(self, empty(0, device=device, dtype=dtype), requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet; it becomes a regular tensor on
    ``materialize``."""

    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None,
                persistent: bool = True):
        return object.__new__(cls)

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True):
        from ..creation import empty
        data = empty(0, device=device, dtype=dtype)
        _init(self, data._data, data.shape, data.dtype, data.device, data._storage)
        self.persistent = persistent
        if requires_grad:
            self.requires_grad_(True)


def is_lazy(param) -> bool:
    """True for a lazy placeholder (an uninitialized parameter or buffer)."""
    return isinstance(param, UninitializedTensorMixin)
