"""``fw._dynamo``: the ``torch._dynamo`` names that training scripts use, mapped onto
:func:`framework.compile`'s machinery.

- ``config.cache_size_limit`` (and its newer name ``recompile_limit``): how many captures a
  compiled function may make before it stops recompiling and runs eagerly (8 by default,
  as PyTorch). Other ``config`` names raise ``AttributeError``: there is nothing behind them.
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

    def __getattr__(self, name):
        if name in self._LIMIT_NAMES:
            from compiler import runtime
            return runtime.RECOMPILE_LIMIT
        raise AttributeError(f"fw._dynamo.config has no option {name!r} (supported: "
                             f"{', '.join(self._LIMIT_NAMES)})")

    def __setattr__(self, name, value):
        if name not in self._LIMIT_NAMES:
            raise AttributeError(f"fw._dynamo.config has no option {name!r} (supported: "
                                 f"{', '.join(self._LIMIT_NAMES)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            from .errors import ArgumentError
            raise ArgumentError(f"fw._dynamo.config.{name} must be a positive int, got "
                                f"{value!r}")
        from compiler import runtime
        runtime.RECOMPILE_LIMIT = value


config = _Config()
