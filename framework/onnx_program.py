"""``ONNXProgram``: what ``fw.onnx.export(..., dynamo=True)`` returns, as PyTorch's
``torch.onnx.export(..., dynamo=True)`` does.

```python
onnx_program = fw.onnx.export(model, (x,), dynamo=True)
onnx_program.optimize()                 # inline functions, drop dead nodes/initializers
onnx_program.save("model.onnx")
(y,) = onnx_program(x)                  # runs in onnxruntime, returns fw tensors
proto = onnx_program.model_proto        # the onnx.ModelProto
```

PyTorch's ``.model`` is an ``onnx_ir.Model``; fw does not depend on onnx_ir, so ``.model``
is the same ``onnx.ModelProto`` as ``.model_proto`` (``print(onnx_program.model)`` shows
the graph as ONNX text). ``exported_program`` is the :class:`fw.export.ExportedProgram`
the model came from when one was exported, else None.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import ArgumentError, FwTypeError
from .tensor import Tensor

__all__ = ["ONNXProgram"]


class ONNXProgram:
    """An exported ONNX model with PyTorch's ``ONNXProgram`` methods."""

    def __init__(self, model_proto, exported_program=None):
        self._proto = model_proto
        self.exported_program = exported_program
        self._session = None

    @property
    def model_proto(self):
        """The ``onnx.ModelProto``."""
        return self._proto

    @property
    def model(self):
        """The model (an ``onnx.ModelProto`` here; PyTorch gives an ``onnx_ir.Model``)."""
        return self._proto

    def save(self, destination, *, include_initializers: bool = True,
             keep_initializers_as_inputs: bool = False, external_data: bool | None = None):
        """Write the model to ``destination`` (a path). ``include_initializers=False``
        leaves the weights out (they become inputs without data);
        ``keep_initializers_as_inputs`` also lists them as graph inputs; ``external_data``
        stores them in ``<destination>.data`` (default: only above 2 GB)."""
        import onnx

        from .onnx import _save
        from .onnx_options import place_weights
        model = self._proto
        if not include_initializers or keep_initializers_as_inputs:
            model = onnx.ModelProto()
            model.CopyFrom(self._proto)
            place_weights(model, {i.name for i in model.graph.initializer},
                          include_initializers, keep_initializers_as_inputs)
        if external_data is None:
            external_data = model.ByteSize() > 2 ** 31 - 1
        _save(onnx, model, os.fspath(destination), bool(external_data))

    def optimize(self) -> None:
        """Optimize the model in place: inline model-local functions, then remove nodes
        whose outputs nothing reads and initializers no node reads; the result is
        checked with ``onnx.checker``."""
        import onnx
        import onnx.inliner

        model = onnx.inliner.inline_local_functions(self._proto)
        _remove_dead(model.graph)
        onnx.checker.check_model(model)
        self._proto = model
        self.release()

    def initialize_inference_session(self, initializer=None) -> None:
        """Create the onnxruntime session ``__call__`` uses (``initializer``: a function
        of the serialized model returning a session; default: CPU onnxruntime)."""
        if initializer is not None:
            self._session = initializer(self._proto.SerializeToString())
            return
        import onnxruntime
        self._session = onnxruntime.InferenceSession(self._proto.SerializeToString(),
                                                     providers=["CPUExecutionProvider"])

    def release(self) -> None:
        """Drop the inference session (the next call creates a new one)."""
        self._session = None

    def __call__(self, *args, **kwargs):
        """Run the model in onnxruntime on fw tensors (positional, then keyword by input
        name); returns a list of fw tensors, one per model output."""
        from .creation import from_numpy
        if self._session is None:
            self.initialize_inference_session()
        names = [i.name for i in self._session.get_inputs()]
        flat = _flat(args) + _flat(tuple(kwargs.values()))
        if len(flat) != len(names):
            raise ArgumentError(f"ONNXProgram: the model takes {len(names)} inputs "
                                f"{names}, got {len(flat)} tensors")
        feed = {}
        for name, t in zip(names, flat):
            if not isinstance(t, Tensor):
                raise FwTypeError(f"ONNXProgram: input {name!r} must be a Tensor, got "
                                  f"{type(t).__name__}")
            feed[name] = t.numpy(force=True)
        outs = self._session.run(None, feed)
        return [from_numpy(np.ascontiguousarray(o)) for o in outs]

    def __repr__(self) -> str:
        import onnx
        return "ONNXProgram(\n" + onnx.printer.to_text(self._proto.graph) + "\n)"


def _flat(args) -> list:
    out = []
    for a in args:
        if isinstance(a, (tuple, list)):
            out += _flat(tuple(a))
        elif a is not None:
            out.append(a)
    return out


def _subgraph_reads(node) -> set:
    """Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing scope."""
    names = set()
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for n in g.node:
                names.update(n.input)
                names |= _subgraph_reads(n)
            names.update(o.name for o in g.output)
    return names


def _remove_dead(graph) -> None:
    """Drop nodes whose outputs are not needed for the graph outputs, then unused
    initializers."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output if o):
            keep.append(node)
            needed.update(i for i in node.input if i)
            needed |= _subgraph_reads(node)
    keep.reverse()
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
    inits = [i for i in graph.initializer if i.name in needed]
    if len(inits) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(inits)
