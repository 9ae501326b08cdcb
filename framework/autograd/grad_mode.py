"""Grad-mode switches (thread-local), usable as context managers and decorators."""

from __future__ import annotations

import functools
import importlib
import inspect
import threading

from .._state import tls

# The module, not the package's ``tensor`` factory function of the same name.
_tensor = importlib.import_module("..tensor", __package__)
_blocks_lock = threading.Lock()


class _GradModeGuard:
    """Base: set grad mode on enter, restore it on exit; also works as a decorator."""

    _target = True

    def __enter__(self):
        self._prev = (tls.grad_enabled, tls.inference_mode)
        tls.grad_enabled = self._target
        return self

    def __exit__(self, *exc):
        tls.grad_enabled, tls.inference_mode = self._prev
        return False

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._ctor_args()):
                return fn(*args, **kwargs)
        return wrapper

    def _wrap_generator(self, fn):
        """A generator runs in this mode at every resumption (as PyTorch's decorators)."""
        def guard():
            return self.__class__(*self._ctor_args())

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            gen = fn(*args, **kwargs)
            try:
                with guard():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with guard():
                            gen.close()
                        raise
                    except BaseException as e:
                        with guard():
                            response = gen.throw(e)
                    else:
                        with guard():
                            response = gen.send(request)
            except StopIteration as e:
                return e.value
        return wrapper

    def _ctor_args(self):
        return ()


class _BareDecorator(_GradModeGuard):
    """``@no_grad`` without parentheses works too (as in PyTorch 2)."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_BareDecorator):  # noqa: N801
    """Disable gradient recording inside the block."""

    _target = False


class enable_grad(_BareDecorator):  # noqa: N801
    """Enable gradient recording inside the block."""

    _target = True


class set_grad_enabled(_GradModeGuard):  # noqa: N801
    """Set grad mode to ``mode``; takes effect immediately, and restores on block exit."""

    def __init__(self, mode: bool):
        self._target = bool(mode)
        self._prev = (tls.grad_enabled, tls.inference_mode)
        tls.grad_enabled = self._target

    def __enter__(self):
        return self

    def _ctor_args(self):
        return (self._target,)


class inference_mode(_GradModeGuard):  # noqa: N801
    """Like no_grad (tensors made inside never record history)."""

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)  # bare @inference_mode on a function

    def __init__(self, mode: bool = True):
        self._target = not mode
        self._mode = mode

    def __enter__(self):
        super().__enter__()
        with _blocks_lock:  # tells Tensor creation to look at tls.inference_mode
            _tensor._inference_blocks += 1
        tls.inference_mode = self._mode
        return self

    def __exit__(self, *exc):
        super().__exit__(*exc)
        with _blocks_lock:
            _tensor._inference_blocks -= 1
        return False

    def _ctor_args(self):
        return (self._mode,)


def is_grad_enabled() -> bool:
    """True when ops record autograd history."""
    return tls.grad_enabled


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()``."""
    return tls.inference_mode
