"""User-defined Triton kernels on fw tensors: ``add_kernel[grid](x, y, out, n, BLOCK_SIZE=4)``
with fw "cuda" tensors, as PyTorch users write them (the tutorials' vector-add recipe).

A launch (``JITFunction.run``, and the interpreter's ``InterpretedFunction.run`` on the
simulated device) hands Triton each fw tensor argument's device buffer, which carries what
Triton reads from a tensor (``data_ptr()`` of the view's first element, ``dtype``) and, on
the simulated device, what Triton's interpreter calls. A CPU tensor is refused, as Triton
refuses one in PyTorch. Inside ``fw.compile`` a launch is a graph break: fw's graphs hold
only the kernels fw generates (PyTorch's ``torch.compile`` puts user kernels in the graph),
so the function runs eagerly, or ``fullgraph=True`` raises with that reason.
"""

from __future__ import annotations

from .._state import tls
from ..errors import DeviceError


def _device_buffer(a):
    """``a``'s device buffer when ``a`` is an fw tensor (tuples looked into), else ``a``."""
    from ..tensor import Tensor
    if isinstance(a, tuple):
        return tuple(_device_buffer(x) for x in a)
    if not isinstance(a, Tensor):
        return a
    if tls.tracer is not None:
        tls.tracer.graph_break("a user-defined Triton kernel launch (fw.compile graphs hold "
                               "only kernels fw generates; launch it outside the compiled "
                               "function, or drop fullgraph=True to run this one eagerly)")
    if a.device.type != "cuda":
        raise DeviceError(f"Triton kernel launch: argument {a.dtype.name}{list(a.shape)} is on "
                          f"{a.device}; Triton kernels take cuda tensors (.to('cuda'))")
    return a._data


def _unwrapping(run):
    def launch(self, *args, **kwargs):
        return run(self, *map(_device_buffer, args),
                   **{k: _device_buffer(v) for k, v in kwargs.items()})
    launch._fw_unwraps = True
    launch.__doc__ = run.__doc__
    return launch


def install() -> None:
    """Make Triton's launchers accept fw tensors (once; idempotent)."""
    from triton.runtime import interpreter, jit
    for cls in (jit.JITFunction, interpreter.InterpretedFunction):
        if not getattr(cls.run, "_fw_unwraps", False):
            cls.run = _unwrapping(cls.run)
