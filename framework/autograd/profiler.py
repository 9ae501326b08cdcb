"""``torch.autograd.profiler``: the older names of :mod:`framework.profiler`'s profiler
(``profile``, ``record_function``), as scripts written for PyTorch 1.x import them."""

from ..profiler import profile, record_function  # noqa: F401

__all__ = ["profile", "record_function"]
