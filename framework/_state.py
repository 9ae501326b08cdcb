"""Thread-local dispatch state: grad mode, the active tracer and autocast (if any)."""

import threading


class _DispatchState(threading.local):
    grad_enabled = True
    inference_mode = False
    tracer = None  # set by compiler.capture while a function is being traced
    replaying_no_grad = False  # compiler autodiff replays a no_grad node (traces keep the mark)
    autocast = None  # framework.amp's state inside an autocast region, else None


tls = _DispatchState()


# fp32 matmul precision on GPUs ("highest": full fp32 products, PyTorch's default;
# "high"/"medium": TF32 tensor cores). Process-wide, as torch.set_float32_matmul_precision.
float32_matmul_precision = "highest"
