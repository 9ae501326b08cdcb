"""Complex tensors on "cuda" refuse clearly (the Triton backend has no complex kernels):
at creation, at transfer and when a real cuda tensor would become complex."""

import numpy as np
import pytest

import framework as fw


@pytest.mark.parametrize("make", [
    lambda: fw.zeros(2, dtype=fw.complex64, device="cuda"),
    lambda: fw.randn(2, dtype=fw.complex64, device="cuda"),
    lambda: fw.tensor([1 + 2j], device="cuda"),
    lambda: fw.full((2,), 1j, device="cuda"),
    lambda: fw.tensor([1 + 2j]).to("cuda"),
    lambda: fw.tensor([1 + 2j]).cuda(),
    lambda: fw.ones(2, device="cuda") * 1j,
    lambda: fw.ones(2, device="cuda").to(fw.complex64),
    lambda: fw.fft.fft(fw.ones(4, device="cuda")),
    lambda: fw.complex(fw.ones(2, device="cuda"), fw.ones(2, device="cuda")),
])
def test_complex_on_cuda_raises_not_implemented(make):
    with pytest.raises(NotImplementedError, match="complex dtypes are not supported on cuda"):
        make()


def test_real_cuda_tensors_unaffected_after_complex_use():
    fw.zeros(1, dtype=fw.complex64)  # the complex gate is on from here
    x = fw.tensor([1.0, -2.0], device="cuda")
    np.testing.assert_allclose((x * 2).relu().cpu().numpy(), [2.0, 0.0])
