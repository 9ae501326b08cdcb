"""``fw.accelerator`` on the (real or simulated) cuda device."""

import numpy as np

import framework as fw


def test_accelerator_is_the_cuda_device():
    assert fw.accelerator.is_available() and fw.accelerator.device_count() >= 1
    device = fw.accelerator.current_accelerator(check_available=True)
    assert device.type == "cuda"
    lin = fw.nn.Linear(3, 2)
    x = fw.randn(4, 3)
    want = lin(x).detach().numpy()
    got = lin.to(device)(x.to(device))
    assert got.device.type == "cuda"
    fw.accelerator.synchronize()
    np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=1e-5, atol=1e-6)
    assert fw.accelerator.current_stream() == fw.cuda.current_stream()
