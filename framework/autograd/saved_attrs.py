"""``grad_fn._saved_<name>``: the tensors (and scalars) a node saved for backward, read
the way PyTorch's generated nodes expose them (for debugging and for the saved-tensor
hooks tutorial): ``MulBackward0._saved_self`` / ``_saved_other``, ``ExpBackward0._saved_result``,
``PowBackward0._saved_exponent``.

Inputs are named ``self`` then ``other`` (``exponent`` for ``pow``), or by the op's meta
parameter names past the second; outputs are ``result`` (``result0``, ``result1``... for
several). A saved input comes back as the same tensor object; an output as a new tensor
on the same storage (with the node as its ``grad_fn``), as in PyTorch. Under
``saved_tensors_hooks`` each access calls the unpack hook.
"""

from __future__ import annotations

import inspect

from ..errors import AutogradError
from ..tensor import Tensor

_SECOND = {"pow": "exponent", "float_power": "exponent"}


def _input_names(op) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(op.meta).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = ["self", _SECOND.get(op.name, "other")]
    return names + params[2:]


def saved_attribute(node, name: str):
    """The value of ``node._saved_<name>``; AttributeError when the node has no such
    saved value."""
    from .graph import SavedTensor
    missing = AttributeError(f"'{node.name()}' object has no attribute '_saved_{name}'")
    if getattr(node.op, "group", None) == "custom":  # custom Functions: ctx.saved_tensors
        raise missing
    if node.freed:
        raise AutogradError(
            "Trying to backward through the graph a second time (or directly access saved "
            "tensors after they have already been freed). Saved intermediate values of the "
            "graph are freed when you call .backward() or autograd.grad(). Specify "
            "retain_graph=True if you need to backward through the graph a second time or "
            "if you need to access saved tensors after calling backward.")
    if name.startswith("result") and node.op.saves_output:
        idx = name[len("result"):]
        metas = node.out_meta
        if (idx == "" and len(metas) == 1) or (idx.isdigit() and int(idx) < len(metas)):
            i = int(idx or 0)
            return _saved_output(node, i, metas[i], SavedTensor)
        raise missing
    names = _input_names(node.op)
    if name not in names or names.index(name) >= len(node.args):
        raise missing
    i = names.index(name)
    a = node.args[i]
    if isinstance(a, SavedTensor):
        return a.unpack(f"input {i} of {node.op.name}")
    if isinstance(a, Tensor):
        if node.versions[i] is None:  # not read by this node's VJP: nothing was saved
            return None
        return a
    return a  # a scalar argument (pow's exponent)


def _saved_output(node, i, meta, saved_cls):
    shape, dtype, dev, data, storage, version = meta
    if isinstance(data, saved_cls):
        t = data.unpack(f"output {i} of {node.op.name}")
    else:
        if storage.version != version:
            raise AutogradError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: output {i} of {node.op.name} is at version "
                f"{storage.version}; expected version {version}")
        t = Tensor._wrap(data, dtype, dev, shape, storage)
    if t.grad_fn is None:
        t = Tensor._wrap(t._data, t.dtype, t.device, t.shape, t._storage)
        t.requires_grad, t.grad_fn, t._output_nr = True, node, i
    return t
