"""``framework.utils``: PyTorch-style import paths. ``framework.utils.data`` is the same
module object as ``framework.data`` (and its submodules ``dataset``, ``sampler``,
``dataloader``), so ``from framework.utils.data import DataLoader`` works as in torch.
``framework.utils.checkpoint`` is activation checkpointing (``torch.utils.checkpoint``)."""

import sys as _sys

from .. import data  # noqa: F401

for _name in ("dataset", "sampler", "dataloader", "collate", "distributed"):
    _sys.modules[f"{__name__}.data.{_name}"] = _sys.modules[f"framework.data.{_name}"]
_sys.modules[f"{__name__}.data"] = data


def __getattr__(name):
    if name == "checkpoint":  # fw.utils.checkpoint, loaded on first use (as torch.utils)
        import importlib
        return importlib.import_module(f"{__name__}.checkpoint")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
