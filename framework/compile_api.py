"""``fw.compile`` and ``fw.mark_dynamic``: the user-facing side of the compiler.

The compiler package is imported on first use, so ``import framework`` stays light.
"""

from __future__ import annotations


def compile(fn=None, *, backend="auto", dynamic=None, fullgraph=False, mode=None,
            options=None, disable=False):
    """Capture ``fn`` (a function or an ``nn.Module``) and run it as generated code.

    Usable as ``@fw.compile``, ``@fw.compile(...)`` and ``fw.compile(model)``.

    - ``backend``: "auto" (NumPy code on the CPU, Triton kernels on CUDA; "inductor" is
      the same), "numpy" or "triton"; "eager" / "aot_eager" capture as usual (guards,
      recompiles, graph breaks, ``fullgraph``) but run the function eagerly, PyTorch's
      debugging backends.
    - ``dynamic``: None (a dim or an int argument that changes becomes symbolic on
      recapture), True (every input dim and int argument symbolic from the start), False
      (always specialize). Int values 0 and 1, and bools, stay specialized.
    - ``fullgraph``: raise :class:`framework.errors.GraphBreak` instead of falling back to
      eager when something cannot be captured.
    - ``mode``: None (time compiled vs eager on the first calls and keep the faster one),
      "always" (always run the compiled code) or "reduce-overhead" (on CUDA: replay the
      compiled code as CUDA graphs; on the CPU: as None).

    - ``options``: inductor options; ``{"triton.cudagraphs": True}`` is
      ``mode="reduce-overhead"``, ``max_autotune`` (the autotuner always runs for
      reductions), the other names PyTorch documents are accepted with a warning that
      they change nothing here, and unknown names raise. Not together with ``mode``.
    - ``disable``: True returns ``fn`` itself, uncompiled.

    The result has ``stats()``, ``graph(*args)`` and ``code(*args)``.
    """
    if disable:
        return (lambda f: f) if fn is None else fn
    if options is not None:
        mode = _mode_from_options(options, mode)
    if callable(backend):
        raise NotImplementedError(
            "compile: a custom backend callable (PyTorch's backend(gm: torch.fx.GraphModule, "
            "example_inputs)) is not supported: fw has no torch.fx graphs to hand it; "
            "inspect the captured graph with compiled.graph(*args) and the generated code "
            "with compiled.code(*args), or fw._dynamo.explain(fn)(*args)")
    if backend not in ("auto", "numpy", "triton", "inductor", "eager", "aot_eager"):
        from .errors import ArgumentError
        raise ArgumentError(f"compile: unknown backend {backend!r} (expected 'auto', "
                            "'numpy', 'triton', 'inductor', 'eager' or 'aot_eager')")
    if mode not in (None, "default", "always", "reduce-overhead", "max-autotune"):
        from .errors import ArgumentError
        raise ArgumentError(f"compile: unknown mode {mode!r} (expected None, 'always' or "
                            "'reduce-overhead')")

    def wrap(f):
        from compiler.runtime import CompiledFunction
        if hasattr(f, "forward") and hasattr(f, "named_parameters"):
            return _optimized_module_class()(
                f, CompiledFunction(f, backend=backend, dynamic=dynamic, fullgraph=fullgraph,
                                    mode=mode))
        return CompiledFunction(f, backend=backend, dynamic=dynamic,
                                fullgraph=fullgraph, mode=mode)

    return wrap if fn is None else wrap(fn)


def _optimized_module_class():
    """``OptimizedModule``, made on first use (``framework.nn`` imports this module)."""
    global _OPTIMIZED
    if _OPTIMIZED is not None:
        return _OPTIMIZED
    from .nn.modules.module import Module

    class OptimizedModule(Module):
        """``fw.compile(model)``, as PyTorch's: an ``nn.Module`` holding the original as the
        submodule ``_orig_mod`` (so ``state_dict()`` keys start with ``_orig_mod.``, as
        scripts that strip that prefix expect), whose calls run the compiled forward.
        Other attributes are read from the original module; ``stats()``, ``graph()``,
        ``code()`` and ``kernels()`` are the compiled function's."""

        def __init__(self, module, compiled):
            super().__init__()
            self._orig_mod = module
            object.__setattr__(self, "_compiled", compiled)

        def forward(self, *args, **kwargs):
            return self._compiled(*args, **kwargs)

        def __getattr__(self, name):
            if name in ("stats", "graph", "code", "kernels"):
                return getattr(self.__dict__["_compiled"], name)
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._modules["_orig_mod"], name)

    _OPTIMIZED = OptimizedModule
    return OptimizedModule


_OPTIMIZED = None


def mark_dynamic(t, dim: int) -> None:
    """Make dimension ``dim`` of ``t`` symbolic the next time a compiled function sees it."""
    from compiler.capture import mark_dynamic as _mark
    _mark(t, dim)


# inductor options PyTorch documents that have no counterpart here (a warning, not an error)
_NO_EFFECT_OPTIONS = {"epilogue_fusion", "max_autotune_pointwise", "max_autotune_gemm",
                      "fallback_random", "shape_padding", "graph_diagram", "trace.enabled",
                      "trace.graph_diagram", "coordinate_descent_tuning",
                      "triton.unique_kernel_names", "freezing", "layout_optimization"}


def _mode_from_options(options, mode):
    """The ``mode`` that ``compile(options=...)`` amounts to (see :func:`compile`)."""
    import warnings

    from .errors import ArgumentError
    if mode is not None:
        raise ArgumentError("compile: either mode or options can be given, not both")
    if not isinstance(options, dict):
        raise ArgumentError(f"compile: options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - _NO_EFFECT_OPTIONS - {"triton.cudagraphs", "max_autotune"})
    if unknown:
        raise ArgumentError(f"compile: unexpected optimization option(s) {unknown}; fw "
                            "knows 'triton.cudagraphs' and 'max_autotune'")
    ignored = sorted(set(options) & _NO_EFFECT_OPTIONS)
    if ignored:
        warnings.warn(f"compile: options {ignored} change nothing in fw's compiler",
                      stacklevel=3)
    if options.get("triton.cudagraphs"):
        return "reduce-overhead"
    return "max-autotune" if options.get("max_autotune") else None
