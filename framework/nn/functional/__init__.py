"""``framework.nn.functional`` (``F``): the functional forms of every layer.

Activations, losses, normalizations, linear maps, dropout and embedding live here; the
convolution/pooling/interpolation and attention forms come from
``framework.nn.functional_conv`` and ``framework.nn.functional_attention`` and are
re-exported under the same names (when those modules are present).
"""

from __future__ import annotations

import importlib
import importlib.util

from ._activation import *  # noqa: F401,F403
from ._activation import __all__ as _act_all
from ._ctc import ctc_loss  # noqa: F401
from ._loss import *  # noqa: F401,F403
from ._loss import __all__ as _loss_all
from ._misc import *  # noqa: F401,F403
from ._misc import __all__ as _misc_all
from ._norm import *  # noqa: F401,F403
from ._norm import __all__ as _norm_all

__all__ = list(_act_all) + list(_loss_all) + list(_misc_all) + list(_norm_all) + ["ctc_loss"]


def _reexport(module_name: str) -> None:
    """Copy the public names of a sibling functional module into this namespace, without
    shadowing names defined here; silently skip when the module does not exist yet."""
    full = f"framework.nn.{module_name}"
    if importlib.util.find_spec(full) is None:
        return
    mod = importlib.import_module(full)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, v in vars(mod).items()
                 if not n.startswith("_") and callable(v) and
                 getattr(v, "__module__", None) == full]
    g = globals()
    for n in names:
        if n not in g:
            g[n] = getattr(mod, n)
            __all__.append(n)


def _siblings() -> list:
    """``framework/nn/functional_*.py`` modules (conv, resample, attention, ...)."""
    import pkgutil

    import framework.nn as _nn
    return sorted(i.name for i in pkgutil.iter_modules(_nn.__path__)
                  if i.name.startswith("functional_"))


for _m in ["functional_conv", "functional_resample", "functional_attention"] + _siblings():
    _reexport(_m)
