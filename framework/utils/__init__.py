"""``framework.utils``: PyTorch-style import paths. ``framework.utils.data`` is the same
module object as ``framework.data`` (and its submodules ``dataset``, ``sampler``,
``dataloader``), so ``from framework.utils.data import DataLoader`` works as in torch.
``framework.utils.checkpoint`` is activation checkpointing (``torch.utils.checkpoint``);
``benchmark``, ``flop_counter``, ``module_tracker``, ``_pytree`` and ``hooks`` are the
speed-experiment and container tools of the same names under ``torch.utils``."""

import sys as _sys

from .. import data  # noqa: F401

for _name in ("dataset", "sampler", "dataloader", "collate", "distributed"):
    _sys.modules[f"{__name__}.data.{_name}"] = _sys.modules[f"framework.data.{_name}"]
_sys.modules[f"{__name__}.data"] = data


_LAZY = ("checkpoint", "benchmark", "flop_counter", "module_tracker", "_pytree", "hooks",
         "tensorboard")


def __getattr__(name):
    if name == "swap_tensors":
        from .swap import swap_tensors
        return swap_tensors
    if name in _LAZY:  # fw.utils.checkpoint etc., loaded on first use (as torch.utils)
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
