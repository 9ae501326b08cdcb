"""CPU kernels of the complex ops (framework/ops/complex_ops.py): NumPy views for
``real``/``imag``/``view_as_real``/``view_as_complex`` (writes go through), copies for
``conj``/``angle``/``complex``."""

from __future__ import annotations

import numpy as np

from .cpu import impl


@impl("real")
def _real(x):
    return np.asarray(x).real


@impl("imag")
def _imag(x):
    return np.asarray(x).imag


@impl("view_as_real")
def _view_as_real(x):
    x = np.asarray(x)
    re = x.real  # a strided view of the real parts; the imaginary part is one float on
    return np.lib.stride_tricks.as_strided(re, shape=x.shape + (2,),
                                           strides=x.strides + (re.itemsize,),
                                           writeable=x.flags.writeable)


@impl("view_as_complex")
def _view_as_complex(x):
    x = np.asarray(x)
    if x.strides[-1] != x.itemsize:
        x = np.ascontiguousarray(x)  # a compiled graph's buffer: a copy is as good
    return x.view(np.complex64 if x.dtype == np.float32 else np.complex128)[..., 0]


@impl("conj")
def _conj(x):
    return np.conj(x)


@impl("complex_angle")
def _angle(x):
    return np.angle(x)


@impl("complex")
def _complex(re, im):
    out = np.empty(np.broadcast_shapes(re.shape, im.shape),
                   np.complex64 if re.dtype == np.float32 else np.complex128)
    out.real = re
    out.imag = im
    return out
