"""``torch.autograd.Variable``: the pre-0.4 wrapper, kept (as in PyTorch) for old code.

Since PyTorch 0.4 a Variable *is* a Tensor: ``Variable(t, requires_grad=True)`` returns a
tensor sharing ``t``'s data as a new leaf, and ``isinstance(t, Variable)`` holds for every
tensor."""

from __future__ import annotations

from ..errors import FwTypeError
from ..tensor import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Deprecated: ``Variable(t, requires_grad=False)`` is ``t.detach().requires_grad_(...)``
    (a leaf sharing ``t``'s data); use tensors directly."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise FwTypeError(f"Variable data has to be a tensor, but got "
                              f"{type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)
