"""``fw.backends.cuda.sdp_kernel``: the older keyword spelling of ``sdpa_kernel``."""

import numpy as np

import framework as fw
from framework.backends import cuda as cuda_backend
from framework.nn.attention import SDPBackend, sdpa_kernel


def _enabled():
    return (cuda_backend.flash_sdp_enabled(), cuda_backend.mem_efficient_sdp_enabled(),
            cuda_backend.math_sdp_enabled(), cuda_backend.cudnn_sdp_enabled())


def test_sdp_kernel_switches_backends_and_restores():
    before = _enabled()
    with cuda_backend.sdp_kernel(enable_flash=False, enable_mem_efficient=False, enable_math=True):
        assert _enabled() == (False, False, True, True)
        q = fw.randn(1, 2, 3, 4)
        out = fw.nn.functional.scaled_dot_product_attention(q, q, q)
        with sdpa_kernel(SDPBackend.MATH):
            ref = fw.nn.functional.scaled_dot_product_attention(q, q, q)
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)
    assert _enabled() == before
    with cuda_backend.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False,
                                 enable_cudnn=False):
        assert _enabled() == (True, False, False, False)
    assert _enabled() == before


def test_sdp_kernel_reachable_as_torch_spells_it():
    assert fw.backends.cuda.sdp_kernel is cuda_backend.sdp_kernel
