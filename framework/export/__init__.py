"""``fw.export``: PyTorch's ``torch.export`` for this framework.

```python
ep = fw.export.export(model, (x,), dynamic_shapes={"x": {0: fw.export.Dim("batch", max=64)}})
print(ep)                       # the graph, its signature and the dims' ranges
y = ep.module()(x)              # an nn.Module that runs the graph
fw.export.save(ep, "m.pt2")     # a zip: the graph as JSON + the weights as safetensors
ep2 = fw.export.load("m.pt2")
fw.onnx.export(ep, (x,), "m.onnx")   # dynamic dims become named ONNX dims
```

See docs/export.md.
"""

from .archive import load, save
from .dims import ConstraintViolationError, Dim, dims
from .program import ExportedProgram, ValueRange, default_decompositions
from .signature import (ConstantArgument, ExportGraphSignature, InputKind, InputSpec,
                        OutputKind, OutputSpec, TensorArgument)
from .tracing import export

__all__ = ["export", "Dim", "dims", "ExportedProgram", "ExportGraphSignature", "InputKind",
           "InputSpec", "OutputKind", "OutputSpec", "TensorArgument", "ConstantArgument",
           "ConstraintViolationError", "ValueRange", "default_decompositions", "save", "load"]
