"""``fw.signal`` (``torch.signal``): signal-processing helpers modelled on SciPy's
``scipy.signal``. So far its ``windows`` module."""

from . import windows  # noqa: F401

__all__ = ["windows"]
