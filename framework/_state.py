"""Thread-local dispatch state: grad mode and the active tracer (if any)."""

import threading


class _DispatchState(threading.local):
    grad_enabled = True
    inference_mode = False
    tracer = None  # set by compiler.capture while a function is being traced


tls = _DispatchState()
