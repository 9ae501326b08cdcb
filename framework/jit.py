"""``fw.jit``: the ``torch.jit`` calls that model code and deployment scripts make.

- :func:`trace` records a module (or a function) on example inputs through
  :func:`framework.export.export`, with every input dim dynamic where the program allows
  it (``Dim.AUTO``: a dim the program fixes, such as a linear layer's features, stays
  static). The result is a :class:`TracedModule`: an ``nn.Module`` with ``graph``,
  ``code`` and ``save``; :func:`load` reads it back (an ``fw.export`` archive: JSON and
  safetensors, never pickle).
- :func:`script` has no TorchScript compiler behind it: it returns its argument unchanged,
  which is what PyTorch does with ``PYTORCH_JIT=0``, so code that scripts helper functions
  at import time runs (eagerly). Use :func:`trace`, ``fw.export`` or ``fw.compile``.
- The decorators model code carries (``ignore``, ``unused``, ``export``, ``interface``) and
  ``is_scripting()`` (False), ``is_tracing()``, ``annotate``, ``fork``/``wait``
  (run at once) behave as they do outside TorchScript.
"""

from __future__ import annotations

from ._state import tls
from .errors import FwTypeError
from .nn.modules.module import Module
from .serialization import CheckpointError
from .tensor import Tensor

__all__ = ["trace", "script", "load", "save", "TracedModule", "ScriptModule", "ignore",
           "unused", "export", "interface", "is_scripting", "is_tracing", "annotate", "fork",
           "wait", "Final", "JitLoadError"]


class JitLoadError(CheckpointError, RuntimeError):
    """``fw.jit.load`` of a file that is not a saved traced module. A RuntimeError, as
    PyTorch's is: code that falls back to ``load`` a plain state dict catches that
    (``clip.load``: ``except RuntimeError: state_dict = torch.load(...)``)."""


class TracedModule(Module):
    """A traced program as an ``nn.Module`` (``torch.jit.ScriptModule``'s role)."""

    def __init__(self, program):
        super().__init__()
        self._program = program
        self.inner = program.module()

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)

    @property
    def graph(self):
        """The traced IR graph."""
        return self._program.graph

    @property
    def code(self) -> str:
        """The traced graph as readable text."""
        return str(self._program.graph)

    @property
    def program(self):
        """The underlying :class:`framework.export.ExportedProgram`."""
        return self._program

    def save(self, f, _extra_files=None) -> None:
        """Write the traced program to ``f`` (read back with :func:`load`)."""
        from .export import save as save_program
        save_program(self._program, f, extra_files=_extra_files)


ScriptModule = TracedModule


class _FunctionModule(Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def trace(func, example_inputs=None, optimize=None, check_trace: bool = True,
          check_inputs=None, check_tolerance: float = 1e-5, strict: bool = True,
          _force_outplace: bool = False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs=None, _store_inputs: bool = True) -> TracedModule:
    """Record ``func`` (an ``nn.Module`` or a function) called on ``example_inputs`` (a
    tensor or a tuple) as a :class:`TracedModule`. Input dims stay dynamic where the
    program allows. ``check_trace`` runs the traced module on the examples (and on
    ``check_inputs``) and compares with ``func`` (``check_tolerance``)."""
    from .export import Dim
    from .export import export as export_program
    if example_inputs is None and example_kwarg_inputs is None:
        raise FwTypeError("jit.trace: example_inputs (or example_kwarg_inputs) is required")
    args = () if example_inputs is None else (
        (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs))
    kwargs = dict(example_kwarg_inputs or {})
    module = func if isinstance(func, Module) else _FunctionModule(func)
    dynamic = tuple(Dim.AUTO if isinstance(a, Tensor) else None for a in args)
    traced = TracedModule(export_program(module, args, kwargs or None,
                                         dynamic_shapes=dynamic or None))
    if check_trace:
        for inputs in [args] + [tuple(c) if isinstance(c, (tuple, list)) else (c,)
                                for c in (check_inputs or [])]:
            _check_same(func(*inputs, **kwargs), traced(*inputs, **kwargs), check_tolerance)
    return traced


def _check_same(expected, got, tol) -> None:
    from .testing import assert_close
    assert_close(got, expected, rtol=tol, atol=tol)


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """``obj`` itself (no TorchScript compiler here; see the module docstring)."""
    return obj


def load(f, map_location=None, _extra_files=None) -> TracedModule:
    """A module saved by :meth:`TracedModule.save` (or ``fw.export.save``);
    ``map_location``: a device to move it to."""
    from .export import load as load_program
    try:
        program = load_program(f)
    except CheckpointError as e:
        if isinstance(e, JitLoadError):
            raise
        raise JitLoadError(f"jit.load: {e}") from e
    module = TracedModule(program)
    return module if map_location is None else module.to(map_location)


def save(m, f, _extra_files=None) -> None:
    """``m.save(f)`` for a :class:`TracedModule`."""
    if not isinstance(m, TracedModule):
        raise FwTypeError(f"jit.save: expected a module from fw.jit.trace, got "
                          f"{type(m).__name__} (use fw.save(model.state_dict(), f) for a "
                          "plain module)")
    m.save(f, _extra_files)


def ignore(drop=False, **kwargs):
    """Decorator: leave a function to Python (it always is here)."""
    return drop if callable(drop) else (lambda fn: fn)


def unused(fn):
    """Decorator: a method TorchScript would not compile (it runs as usual here)."""
    return fn


def export(fn):
    """Decorator: a method TorchScript would compile as an entry point (no-op here)."""
    return fn


def interface(obj):
    """Decorator: a TorchScript interface class (an ordinary class here)."""
    return obj


def is_scripting() -> bool:
    """False: code never runs under TorchScript here."""
    return False


def is_tracing() -> bool:
    """True while a trace (``fw.jit.trace``, ``fw.export``, ``fw.compile``) records the
    calling code."""
    return tls.tracer is not None


def annotate(the_type, the_value):
    """``the_value`` (a TorchScript type hint)."""
    return the_value


class _Future:
    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value

    def value(self):
        return self._value

    def done(self) -> bool:
        return True


def fork(func, *args, **kwargs) -> _Future:
    """Run ``func(*args, **kwargs)`` now and return its completed future."""
    return _Future(func(*args, **kwargs))


def wait(future):
    """The result of a :func:`fork`."""
    return future.wait()


class _FinalMeta(type):
    def __getitem__(cls, item):
        return item


class Final(metaclass=_FinalMeta):
    """``Final[T]`` in a module's annotations (T here)."""
