"""Complex values through the other backends: ``fw.compile`` on the CPU (the NumPy code
generator is dtype-generic), and ONNX export (refused, naming complex). The simulated
"cuda" device refuses complex tensors: tests/gpu/test_gpu_complex.py."""

from __future__ import annotations

import numpy as np
import pytest

import framework as fw
from tests.complex_helpers import crandn

_Z = fw.tensor(crandn(3, 4, seed=7), dtype=fw.complex64)


@pytest.mark.parametrize("fn", [
    lambda z: (z * z.conj() + 1j * z).exp().sum(),
    lambda z: (z.sigmoid() + z.tanh().sqrt()).log() * 2,
    lambda z: z.abs() + fw.angle(z) + z.real - z.imag,
    lambda z: fw.view_as_real(z @ z.mT).sum(-1),
    lambda z: fw.fft.ifft(fw.fft.fft2(z) * 0.5, dim=0, norm="ortho"),
    lambda z: fw.fft.irfft(fw.fft.rfft(z.real), n=4),
    lambda z: fw.fft.fftshift(fw.complex(z.real, z.imag * 2)).mean(1),
])
def test_compiled_matches_eager(fn):
    compiled = fw.compile(fn, mode="always", fullgraph=True)
    np.testing.assert_allclose(compiled(_Z).numpy(), fn(_Z).numpy(), rtol=1e-5, atol=1e-5)


def test_compiled_backward_matches_eager():
    def loss(z):
        return fw.fft.fft(z * z.conj().exp()).abs().sum()
    a = _Z.clone().requires_grad_()
    b = _Z.clone().requires_grad_()
    fw.compile(loss, mode="always")(a).backward()
    loss(b).backward()
    assert a.grad.dtype is fw.complex64
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_onnx_export_refuses_complex(tmp_path):
    class Spectrum(fw.nn.Module):
        def forward(self, x):
            return fw.fft.rfft(x).abs()
    with pytest.raises(NotImplementedError, match="complex"):
        fw.onnx.export(Spectrum(), fw.randn(1, 8), str(tmp_path / "m.onnx"))
