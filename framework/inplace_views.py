"""In-place view methods: ``unsqueeze_``, ``squeeze_``, ``transpose_``, ``t_``,
``swapdims_`` and ``swapaxes_``.

As in PyTorch, they change the tensor's own shape and strides (same storage, same Python
object) and return it. The new layout is computed with the out-of-place view op, and the
tensor takes over that view's data, shape and autograd link; the storage's version counter
is bumped, so a tensor saved for backward with the old layout is caught at backward time.
"""

from __future__ import annotations

from . import ops as F
from ._state import tls
from .errors import AutogradError
from .tensor import Tensor


def _rebind(self: Tensor, name: str, new: Tensor) -> Tensor:
    """Make ``self`` take ``new``'s layout (``new`` is a view of ``self``)."""
    tracer = tls.tracer
    if tracer is not None:
        inf = tracer.fn.info.get(id(self))
        if inf is None or inf.external is not None or inf.src is not None:
            # the caller's tensor (or a view) would have to change shape after every call
            tracer.graph_break(f"Tensor.{name}() on a tensor from outside the function or "
                               "on a view")
        tracer.fn.define(self, tracer.value_of(new), None)
    else:
        self._data = new._data
    self.shape = new.shape
    self._storage.version += 1
    if tls.grad_enabled and new.requires_grad:
        self.grad_fn, self._output_nr = new.grad_fn, new._output_nr
    return self


def _make(name: str, fn):
    def method(self, *args, **kwargs):
        if tls.grad_enabled and self.requires_grad and self.grad_fn is None:
            raise AutogradError(f"{name}: a leaf Variable that requires grad is being used in "
                                "an in-place operation.")
        return _rebind(self, name, fn(self, *args, **kwargs))
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: change this tensor's shape and strides."
    return method


Tensor.unsqueeze_ = _make("unsqueeze_", F.unsqueeze)
Tensor.squeeze_ = _make("squeeze_", F.squeeze)
Tensor.transpose_ = _make("transpose_", F.transpose)
Tensor.t_ = _make("t_", F.t)
Tensor.swapdims_ = _make("swapdims_", F.swapdims)
Tensor.swapaxes_ = _make("swapaxes_", F.swapaxes)
