"""``fw.compile`` and ``fw.mark_dynamic``: the user-facing side of the compiler.

The compiler package is imported on first use, so ``import framework`` stays light.
"""

from __future__ import annotations


def compile(fn=None, *, backend="auto", dynamic=None, fullgraph=False, mode=None):
    """Capture ``fn`` (a function or an ``nn.Module``) and run it as generated code.

    Usable as ``@fw.compile``, ``@fw.compile(...)`` and ``fw.compile(model)``.

    - ``backend``: "auto" (NumPy code on the CPU, Triton kernels on CUDA), "numpy" or
      "triton".
    - ``dynamic``: None (a dim that changes becomes symbolic on recapture), True (every
      input dim symbolic from the start), False (always specialize).
    - ``fullgraph``: raise :class:`framework.errors.GraphBreak` instead of falling back to
      eager when something cannot be captured.
    - ``mode``: None (time compiled vs eager on the first calls and keep the faster one),
      "always" (always run the compiled code) or "reduce-overhead" (on CUDA: replay the
      compiled code as CUDA graphs; on the CPU: as None).

    The result has ``stats()``, ``graph(*args)`` and ``code(*args)``.
    """
    if callable(backend):
        raise NotImplementedError(
            "compile: a custom backend callable (PyTorch's backend(gm: torch.fx.GraphModule, "
            "example_inputs)) is not supported: fw has no torch.fx graphs to hand it; "
            "inspect the captured graph with compiled.graph(*args) and the generated code "
            "with compiled.code(*args), or fw._dynamo.explain(fn)(*args)")
    if backend not in ("auto", "numpy", "triton", "inductor"):
        from .errors import ArgumentError
        raise ArgumentError(f"compile: unknown backend {backend!r} (expected 'auto', "
                            "'numpy' or 'triton')")
    if mode not in (None, "default", "always", "reduce-overhead", "max-autotune"):
        from .errors import ArgumentError
        raise ArgumentError(f"compile: unknown mode {mode!r} (expected None, 'always' or "
                            "'reduce-overhead')")

    def wrap(f):
        from compiler.runtime import CompiledFunction
        if hasattr(f, "forward") and hasattr(f, "named_parameters"):
            return _CompiledModule(f, CompiledFunction(f, backend=backend, dynamic=dynamic,
                                                       fullgraph=fullgraph, mode=mode))
        return CompiledFunction(f, backend=backend, dynamic=dynamic,
                                fullgraph=fullgraph, mode=mode)

    return wrap if fn is None else wrap(fn)


class _CompiledModule:
    """``fw.compile(model)``: calls go through the compiled forward; attributes (parameters,
    ``train()``, ``state_dict()``...) are the module's own."""

    def __init__(self, module, compiled):
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled", compiled)

    def __call__(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name):
        if name in ("stats", "graph", "code", "kernels"):
            return getattr(self._compiled, name)
        return getattr(self._orig_mod, name)

    def __setattr__(self, name, value):
        setattr(self._orig_mod, name, value)

    def __repr__(self) -> str:
        return f"Compiled({self._orig_mod!r})"


def mark_dynamic(t, dim: int) -> None:
    """Make dimension ``dim`` of ``t`` symbolic the next time a compiled function sees it."""
    from compiler.capture import mark_dynamic as _mark
    _mark(t, dim)
