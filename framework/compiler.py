"""``fw.compiler``: the ``torch.compiler`` helpers around :func:`framework.compile`.

- :func:`is_compiling`: True while a capture traces the code that asks.
- :func:`disable`: a function that is never captured (a graph break where a capture
  reaches it: the compiled function then runs eagerly, or raises under ``fullgraph``).
- :func:`reset`: forget every compiled function's graphs (and what recompiles learned).
- :func:`list_backends`: the backend names ``fw.compile`` accepts.
- :func:`explain`: what a capture of a function makes of it, without running it
  (``torch._dynamo.explain``): graphs, ops, graph breaks and their reasons.
- :func:`set_stance`: run compiled functions eagerly, or forbid recompiles, for a while.
- :func:`allow_in_graph`, :func:`cudagraph_mark_step_begin`: accepted for PyTorch scripts;
  what they ask for is already how capture and CUDA graphs work here (see each).

The compiled functions live in the top-level ``compiler`` package; this module only
imports it when called.
"""

from __future__ import annotations

import functools
import warnings

from ._state import tls

__all__ = ["is_compiling", "disable", "reset", "list_backends", "explain", "ExplainOutput",
           "set_stance", "allow_in_graph", "cudagraph_mark_step_begin"]

_STANCES = ("default", "force_eager", "eager_on_recompile", "fail_on_recompile")


def is_compiling() -> bool:
    """True while ``fw.compile`` (or ``fw.grad``/``fw.vmap``, which capture too) traces the
    calling code, False when it runs eagerly or as generated code."""
    return tls.tracer is not None


def disable(fn=None, recursive=True):
    """``fn`` made uncapturable: called eagerly as usual, but a capture that reaches it
    stops there (a graph break naming it), so the enclosing compiled function runs eagerly
    (``fullgraph=True`` raises :class:`framework.errors.GraphBreak`). A compiled function
    passed in is returned as its original, uncompiled function. Usable as a decorator,
    with or without arguments. ``recursive=False`` is not supported (there is no partial
    capture to resume in)."""
    if not recursive:
        raise NotImplementedError("fw.compiler.disable(recursive=False): functions it calls "
                                  "cannot be captured on their own (a graph break runs the "
                                  "whole compiled function eagerly)")
    if fn is None:
        return functools.partial(disable, recursive=recursive)
    inner = getattr(fn, "_orig_mod", None) or getattr(fn, "__wrapped__", None) \
        if _is_compiled(fn) else fn
    name = getattr(inner, "__name__", type(inner).__name__)

    @functools.wraps(inner)
    def eager_only(*args, **kwargs):
        tracer = tls.tracer
        if tracer is not None:
            tracer.graph_break(f"fw.compiler.disable({name})")
        return inner(*args, **kwargs)
    eager_only._fw_disabled = True
    return eager_only


def _is_compiled(fn) -> bool:
    from compiler.runtime import CompiledFunction
    return isinstance(fn, CompiledFunction) or hasattr(fn, "_compiled")


def reset() -> None:
    """Drop the graphs of every compiled function, and what they learned (dynamic dims,
    a decision to run eagerly), as if none had been called yet."""
    from compiler.runtime import live_compiled_functions
    for cf in live_compiled_functions():
        cf.reset()


def list_backends() -> list:
    """The ``backend=`` values ``fw.compile`` accepts ("inductor" is an alias of "auto";
    "eager" and "aot_eager" capture but run eagerly)."""
    return ["auto", "numpy", "triton", "eager", "aot_eager"]


class ExplainOutput:
    """What :func:`explain` found: ``graphs`` (the captured graphs), ``graph_count``,
    ``graph_break_count``, ``break_reasons``, ``ops_per_graph`` (op names) and
    ``op_count``; ``str()`` gives a summary."""

    def __init__(self, graphs, break_reasons):
        self.graphs = graphs
        self.graph_count = len(graphs)
        self.break_reasons = break_reasons
        self.graph_break_count = len(break_reasons)
        self.ops_per_graph = [[n.op.name for n in g.nodes] for g in graphs]
        self.op_count = sum(len(ops) for ops in self.ops_per_graph)

    def __str__(self) -> str:
        lines = [f"Graph Count: {self.graph_count}",
                 f"Graph Break Count: {self.graph_break_count}",
                 f"Op Count: {self.op_count}"]
        if self.break_reasons:
            lines.append("Break Reasons:")
            lines += [f"  Break Reason {i + 1}: {r}" for i, r in enumerate(self.break_reasons)]
        for i, ops in enumerate(self.ops_per_graph):
            lines.append(f"Ops per Graph {i + 1}: {', '.join(ops)}")
        return "\n".join(lines)

    __repr__ = __str__


def explain(fn, *args, **kwargs):
    """``explain(fn)(*args, **kwargs)`` (or ``explain(fn, *args, **kwargs)``): capture
    ``fn`` on these arguments as ``fw.compile`` would, without running it, and report
    the graph or the graph break (an :class:`ExplainOutput`). A capture here is all or
    nothing: a break means the compiled function runs eagerly."""
    from compiler.runtime import CompiledFunction

    def run(*a, **kw):
        cf = CompiledFunction(fn, mode="always")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            entry = cf._build(a, kw, store=False)
        if entry is not None:
            return ExplainOutput([entry.graph], [])
        reasons = cf._stats["graph_breaks"] or [cf.eager_reason or
                                                 "optimizer state is created on the first "
                                                 "call (captured from the second)"]
        return ExplainOutput([], reasons)
    return run(*args, **kwargs) if args or kwargs else run


def _apply_stance(stance: str) -> str:
    from compiler import runtime
    prev, runtime.STANCE = runtime.STANCE, stance
    return prev


class set_stance:  # noqa: N801  (a function in PyTorch; a class so it is also a context)
    """``torch.compiler.set_stance``: how compiled functions behave from now on.

    - "default": capture, cache and recompile as usual;
    - "force_eager": every compiled function runs its Python eagerly;
    - "eager_on_recompile": cached compiled code still runs, but a call that would capture
      (a recompile, or a first call) runs eagerly instead;
    - "fail_on_recompile": such a call raises ``compiler.runtime.RecompileError``.

    Called plainly it sets the stance; as a context manager (``with
    fw.compiler.set_stance("force_eager"):``) or a decorator it applies only inside.
    ``skip_guard_eval_unsafe`` and ``force_backend`` are not supported."""

    def __init__(self, stance: str = "default", *, skip_guard_eval_unsafe: bool = False,
                 force_backend=None):
        from .errors import ArgumentError
        if stance not in _STANCES:
            raise ArgumentError(f"set_stance: unknown stance {stance!r} (expected one of "
                                f"{', '.join(_STANCES)})")
        if skip_guard_eval_unsafe or force_backend is not None:
            raise NotImplementedError("set_stance: skip_guard_eval_unsafe and force_backend "
                                      "are not supported (guards are always checked; the "
                                      "backend is fw.compile's)")
        self.stance = stance
        self.prev = _apply_stance(stance)

    def __enter__(self):
        _apply_stance(self.stance)
        return self

    def __exit__(self, *exc):
        _apply_stance(self.prev)
        return False

    def __call__(self, fn):
        _apply_stance(self.prev)  # as a decorator it only applies inside ``fn``

        @functools.wraps(fn)
        def with_stance(*args, **kwargs):
            prev = _apply_stance(self.stance)
            try:
                return fn(*args, **kwargs)
            finally:
                _apply_stance(prev)
        return with_stance


def allow_in_graph(fn):
    """``fn`` itself. PyTorch's Dynamo treats such a function as one opaque graph node
    instead of tracing its bytecode; here a capture always records the ops a function
    calls, so every function is already in the graph (one that cannot be captured, e.g.
    one reading tensor values on the host, is a graph break either way)."""
    return fn


def cudagraph_mark_step_begin() -> None:
    """Nothing to do: ``mode="reduce-overhead"`` returns fresh copies of a graph's outputs
    (see ``compiler/cudagraphs.py``), so no replay overwrites a tensor an earlier step
    returned, which is what this call protects against in PyTorch."""
