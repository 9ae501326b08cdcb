"""Anomaly detection (``fw.autograd.detect_anomaly``), as PyTorch's.

While it is on (process-wide, as in PyTorch), every autograd node records the traceback of
the forward call that created it. During backward, a node whose VJP raises, or (with
``check_nan``) returns a gradient containing NaN, is reported with that traceback: a
``UserWarning`` "Error detected in MulBackward0. Traceback of forward call that caused the
error: ...", also attached to the exception as a note. The NaN case raises
``AutogradError`` (a RuntimeError): "Function 'MulBackward0' returned nan values in its 0th
output." Off, it costs the engine one global read per node created and per backward call.
"""

from __future__ import annotations

import functools
import warnings

from . import extras

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "set_anomaly_enabled"]

_enabled = False
_check_nan = True


def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on."""
    return _enabled


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly detection also checks backward results for NaN."""
    return _check_nan


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Turn anomaly detection on or off (process-wide)."""
    global _enabled, _check_nan
    _enabled, _check_nan = bool(enabled), bool(check_nan)
    extras.refresh()


class detect_anomaly:  # noqa: N801  (named like torch.autograd.detect_anomaly)
    """Context manager and decorator that turns anomaly detection on inside the block.
    Slow: use it for debugging only."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", UserWarning, stacklevel=2)

    def __enter__(self):
        self._prev = (_enabled, _check_nan)
        set_anomaly_enabled(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        set_anomaly_enabled(*self._prev)
        return False

    def __call__(self, fn):
        check_nan = self.check_nan

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                guard = detect_anomaly(check_nan)
            with guard:
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:  # noqa: N801
    """Set anomaly detection to ``mode`` now; as a context manager, restore it on exit."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self._prev = (_enabled, _check_nan)
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        set_anomaly_enabled(*self._prev)
        return False
