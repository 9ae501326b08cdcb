"""framework: a torch-free deep-learning framework with PyTorch's habits.

``import framework as fw`` gives eager tensors on NumPy (and CUDA through Triton), autograd,
``nn``/``optim``/``data``, ``fw.compile`` (capture + fusion) and ``fw.onnx`` export.
Heavy pieces (the compiler, ONNX, the GPU backend) are imported on first use.
"""

from __future__ import annotations

import importlib

from . import _malloc  # noqa: F401  (keeps freed memory in-process on glibc; see module)
from . import _state as _state_module
from . import dtypes  # noqa: F401  (fw.dtypes)
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: F401
                       set_grad_enabled)
from .autograd.grad_mode import is_inference_mode_enabled  # noqa: F401
from .device import device, get_default_device, set_default_device  # noqa: F401
from .dtype_info import finfo, iinfo, typename  # noqa: F401
from .dtypes import (bfloat16, float16, float32, float64, get_default_dtype,  # noqa: F401
                     int8, int16, int32, int64, promote_types, result_type, set_default_dtype,
                     uint8, complex64, complex128)
from .dtypes import bool_ as bool  # noqa: F401,A001
from .ao.qtypes import (per_channel_affine, per_channel_affine_float_qparams,  # noqa: F401
                        per_channel_symmetric, per_tensor_affine, per_tensor_symmetric, qint8,
                        qint32, qscheme, quint8)
from .dtypes import DType as dtype  # noqa: F401,N813  (torch.dtype)
from .errors import (ArgumentError, AutogradError, DeviceError, DTypeError,  # noqa: F401
                     FrameworkError, FwIndexError, FwTypeError, GraphBreak, ShapeError)
from .ops import *  # noqa: F401,F403
from .ops import OPS  # noqa: F401
from .printing import set_printoptions  # noqa: F401
from .random import (Generator, default_generator, get_rng_state, initial_seed,  # noqa: F401
                     manual_seed, seed, set_rng_state)
from .settings import (are_deterministic_algorithms_enabled, get_num_threads,  # noqa: F401
                       get_num_interop_threads, is_deterministic_algorithms_warn_only_enabled,
                       set_num_interop_threads, set_num_threads, use_deterministic_algorithms)
from .tensor import Size, Tensor, is_tensor  # noqa: F401
from .legacy_constructors import (BFloat16Tensor, BoolTensor, ByteTensor,  # noqa: F401
                                  CharTensor, DoubleTensor, FloatTensor, HalfTensor,
                                  IntTensor, LongTensor, ShortTensor,
                                  set_default_tensor_type)
from . import tensor_methods  # noqa: F401,E402
from . import inplace_views  # noqa: F401,E402  (unsqueeze_, t_, ...)
from . import tensor_storage  # noqa: F401,E402  (untyped_storage, storage, is_set_to, map_)
from . import tensor_sharing  # noqa: F401,E402  (share_memory_, is_shared)
from .tensor_info import is_complex, is_same_size, is_signed  # noqa: F401,E402
from .control_flow import cond, while_loop  # noqa: F401,E402  (torch.cond)
from .backends import cpu as _cpu_backend  # noqa: E402
from .backends import cpu_conv as _cpu_conv  # noqa: E402,F401  (conv/pool ops + kernels)
from .backends import cpu_rnn as _cpu_rnn  # noqa: E402,F401  (lstm/gru/rnn ops + kernels)
from .backends import cpu_nn as _cpu_nn  # noqa: E402,F401  (nn composites' kernels)
from .backends import cpu_sort as _cpu_sort  # noqa: E402,F401  (the argsort kernel)
from .backends import cpu_linalg as _cpu_linalg  # noqa: E402,F401  (fw.linalg kernels)
from .backends import cpu_scatter_reduce as _cpu_scatter_reduce  # noqa: E402,F401
from .backends import cpu_complex as _cpu_complex  # noqa: E402,F401  (complex op kernels)
from .backends import cpu_fft as _cpu_fft  # noqa: E402,F401  (fw.fft kernels)
from .backends import cpu_quant as _cpu_quant  # noqa: E402,F401  (quantization kernels)
from .backends import cpu_attention as _cpu_attention  # noqa: E402,F401  (flash_attention)
linalg = importlib.import_module("framework.linalg")  # torch.linalg, not ops.linalg
special = importlib.import_module("framework.special")  # torch.special
fft = importlib.import_module("framework.fft")  # torch.fft
signal = importlib.import_module("framework.signal")  # torch.signal
distributed = importlib.import_module("framework.distributed")  # torch.distributed
_dynamo = importlib.import_module("framework._dynamo")  # torch._dynamo (config, reset)
# sparse tensors (torch.sparse): framework/sparse, its spmm kernel in backends/cpu_sparse
from .backends import cpu_sparse as _cpu_sparse  # noqa: E402,F401
sparse = importlib.import_module("framework.sparse")
from .sparse.ops import spmm  # noqa: E402,F401  (torch.spmm)
from .sparse import (layout, sparse_coo, sparse_coo_tensor, sparse_csr,  # noqa: E402,F401
                     sparse_csr_tensor, strided)
from .memory_formats import (channels_last, channels_last_3d,  # noqa: E402,F401
                            contiguous_format, memory_format, preserve_format)

half, float, double, long, int, short = float16, float32, float64, int64, int32, int16  # noqa: A001
cfloat, cdouble = complex64, complex128
from math import e, inf, nan, pi  # noqa: E402,F401  (torch.inf, torch.nan, torch.pi, torch.e)

_cpu_backend.install()
from .ops.complex_ops import enable_complex_ops as _enable_complex_ops  # noqa: E402

_enable_complex_ops()  # the allow-list, once every op is registered
from .out_arg import install as _install_out  # noqa: E402

_install_out(globals())  # out= on fw.add, fw.matmul, fw.sum, ... (framework/out_arg.py)

from .version import __version__  # noqa: E402,F401

# Submodules and functions loaded on first use, so `import framework` stays light.
_LAZY_MODULES = {"nn", "optim", "data", "cuda", "onnx", "profiler", "bench", "utils",
                 "serialization", "testing", "func", "amp", "distributions", "compiler",
                 "export", "ao", "quantization", "jit", "accelerator", "fx", "__future__",
                 "nested", "library", "hub", "version", "multiprocessing", "_logging",
                 "_inductor"}
_LAZY_ATTRS = {
    "compile": ("framework.compile_api", "compile"),
    "mark_dynamic": ("framework.compile_api", "mark_dynamic"),
    "grad": ("framework.func", "grad"),
    "value_and_grad": ("framework.func", "value_and_grad"),
    "vjp": ("framework.func", "vjp"),
    "jvp": ("framework.func", "jvp"),
    "vmap": ("framework.func_vmap", "vmap"),
    "save": ("framework.serialization", "save"),
    "load": ("framework.serialization", "load"),
    "load_torch_checkpoint": ("framework.torch_checkpoint", "load_torch_checkpoint"),
    "autocast": ("framework.amp", "autocast"),
    "is_autocast_enabled": ("framework.amp", "is_autocast_enabled"),
    "get_autocast_dtype": ("framework.amp", "get_autocast_dtype"),
    "is_autocast_cache_enabled": ("framework.amp", "is_autocast_cache_enabled"),
    "clear_autocast_cache": ("framework.amp", "clear_autocast_cache"),
    "is_anomaly_enabled": ("framework.autograd.anomaly", "is_anomaly_enabled"),
    "is_anomaly_check_nan_enabled": ("framework.autograd.anomaly",
                                     "is_anomaly_check_nan_enabled"),
    "set_anomaly_enabled": ("framework.autograd.anomaly", "set_anomaly_enabled"),
}


def __getattr__(name):
    if name in _LAZY_ATTRS:
        mod, attr = _LAZY_ATTRS[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name.startswith("_foreach_"):  # torch._foreach_mul_ & co. (framework/foreach_ops.py)
        table = importlib.import_module(f"{__name__}.foreach_ops").FOREACH
        if name in table:
            globals()[name] = table[name]
            return table[name]
    raise AttributeError(f"module 'framework' has no attribute {name!r}")


def is_floating_point(input) -> bool:
    """True for floating-point tensors."""
    return input.dtype.is_floating_point


def is_inference(input) -> bool:
    """True for an inference tensor (``torch.is_inference``; see ``Tensor.is_inference``)."""
    if not isinstance(input, Tensor):
        raise FwTypeError(f"is_inference(): argument 'input' must be Tensor, "
                          f"not {type(input).__name__}")
    return input.is_inference()


def _assert(condition, message):
    """``torch._assert``: ``assert condition, message`` written as a function (PyTorch's
    traceable assert; a one-element tensor condition is read with ``bool``)."""
    assert condition, message


def set_float32_matmul_precision(precision: str) -> None:
    """fp32 matmuls on GPUs: ``"highest"`` (default, full fp32 as PyTorch) or
    ``"high"``/``"medium"`` (TF32 tensor cores: faster, ~1e-3 relative error)."""
    if precision not in ("highest", "high", "medium"):
        raise ArgumentError(f"set_float32_matmul_precision: expected 'highest', 'high' or "
                            f"'medium', got {precision!r}")
    _state_module.float32_matmul_precision = precision


def get_float32_matmul_precision() -> str:
    """The current fp32 matmul precision setting."""
    return _state_module.float32_matmul_precision
