"""Helpers for the GPU suite: device tensors that keep a sample's strides, comparisons."""

from __future__ import annotations

import numpy as np

import framework as fw


def cuda_like(t: fw.Tensor) -> fw.Tensor:
    """A cuda tensor with ``t``'s values, dtype, shape and (positive) strides."""
    from framework.backends.cuda import CudaBuffer, empty
    from framework.backends import cuda_runtime as rt
    arr = t.detach().numpy()
    if arr.flags.c_contiguous or arr.size == 0 or arr.ndim == 0:
        out = t.detach().to("cuda")
    else:
        st = [s // arr.itemsize for s in arr.strides]
        span = 1 + sum((n - 1) * s for n, s in zip(arr.shape, st))
        flat = np.zeros(span, arr.dtype)
        np.lib.stride_tricks.as_strided(flat, arr.shape, arr.strides)[...] = arr
        base = empty((span,), arr.dtype)
        rt.copy_h2d(base.alloc, 0, flat)
        buf = CudaBuffer(base.alloc, arr.shape, st, 0, arr.dtype)
        out = fw.Tensor._wrap(buf, t.dtype, fw.device("cuda:0"))
    if t.requires_grad:
        out.requires_grad_(True)
    return out


def map_tensors(fn, x):
    """Apply ``fn`` to every tensor in a nested structure of lists/tuples/dicts."""
    if isinstance(x, fw.Tensor):
        return fn(x)
    if isinstance(x, list):
        return [map_tensors(fn, v) for v in x]
    if isinstance(x, tuple):
        return tuple(map_tensors(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: map_tensors(fn, v) for k, v in x.items()}
    return x


def devices_of(x) -> set:
    """Device types of every tensor in a nested result."""
    out = set()
    map_tensors(lambda t: out.add(t.device.type), x)
    return out


def cpu_cuda_pair(*shape, seed=0):
    """The same seeded float32 standard-normal values of ``shape`` as a CPU tensor and a
    "cuda" tensor: ``(cpu, cuda)``."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return fw.tensor(a), fw.tensor(a, device="cuda")


def assert_same_on_cuda(got, want, **tol):
    """``got`` is on "cuda" and matches the CPU result ``want`` (default tolerance
    ``rtol=1e-5, atol=1e-6``; keyword arguments replace it)."""
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(),
                               **(tol or dict(rtol=1e-5, atol=1e-6)))
