"""``nn.Parameter``: a tensor that a Module registers as a learnable parameter, and
``nn.Buffer`` (a tensor a Module registers as a buffer when assigned as an attribute)."""

from __future__ import annotations

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


def is_lazy(param) -> bool:
    """Lazy (uninitialised) parameters are not supported; always False."""
    return False
