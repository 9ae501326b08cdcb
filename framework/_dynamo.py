"""``fw._dynamo``: the ``torch._dynamo`` names that training scripts use, mapped onto
:func:`framework.compile`'s machinery.

- ``config.cache_size_limit`` (and its newer name ``recompile_limit``): how many captures a
  compiled function may make before it stops recompiling and runs eagerly (8 by default,
  as PyTorch).
- ``config.suppress_errors``: True (here the default) runs a function eagerly, with a
  warning, when the compiler fails on it; False raises the compiler's error (PyTorch's
  default).
  Other ``config`` names raise ``AttributeError``: there is nothing behind them.
- ``reset``, ``explain``, ``disable``, ``is_compiling``: as ``fw.compiler``'s.
- ``mark_dynamic``: as ``fw.mark_dynamic``.
"""

from __future__ import annotations

from .compile_api import mark_dynamic
from .compiler import disable, explain, is_compiling, reset

__all__ = ["config", "reset", "explain", "disable", "is_compiling", "mark_dynamic"]


class _Config:
    """``torch._dynamo.config``: the recompile limit; unknown names are an error."""

    _LIMIT_NAMES = ("cache_size_limit", "recompile_limit")
    _NAMES = _LIMIT_NAMES + ("suppress_errors",)

    def __getattr__(self, name):
        from compiler import runtime
        if name in self._LIMIT_NAMES:
            return runtime.RECOMPILE_LIMIT
        if name == "suppress_errors":
            return runtime.SUPPRESS_ERRORS
        raise AttributeError(f"fw._dynamo.config has no option {name!r} (supported: "
                             f"{', '.join(self._NAMES)})")

    def __setattr__(self, name, value):
        if name not in self._NAMES:
            raise AttributeError(f"fw._dynamo.config has no option {name!r} (supported: "
                                 f"{', '.join(self._NAMES)})")
        from compiler import runtime
        if name == "suppress_errors":
            runtime.SUPPRESS_ERRORS = bool(value)
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            from .errors import ArgumentError
            raise ArgumentError(f"fw._dynamo.config.{name} must be a positive int, got "
                                f"{value!r}")
        runtime.RECOMPILE_LIMIT = value


config = _Config()
