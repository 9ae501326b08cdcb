"""``flex_attention`` on device "cuda" (tiny shapes: the simulator is slow): a block mask
made on the device, a score_mod reading a device bias table, values, lse and gradients
equal to the CPU's, ``fw.compile`` on the device, and a block mask left on the CPU refused
with a clear error."""

import numpy as np
import pytest

import framework as fw
from framework.errors import DeviceError
from framework.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((1, 2, 5, 4)).astype(np.float32) for _ in range(3)]
    arrays.append(rng.standard_normal(9).astype(np.float32))
    cpu = [fw.tensor(a, requires_grad=True) for a in arrays]
    dev = [fw.tensor(a, device="cuda", requires_grad=True) for a in arrays]
    return cpu, dev


def _attend(q, k, v, table, bm):
    def rel(score, b, h, q_idx, kv_idx):
        return score + table[q_idx - kv_idx + 4]
    return flex_attention(q, k, v, score_mod=rel, block_mask=bm, return_lse=True)


def test_flex_attention_on_cuda_matches_cpu_with_gradients():
    cpu, dev = _inputs()
    bm_cpu = create_block_mask(causal, None, None, 5, 5, BLOCK_SIZE=2)
    bm_dev = create_block_mask(causal, None, None, 5, 5, device="cuda", BLOCK_SIZE=2)
    assert bm_dev.to_dense().device.type == "cuda"
    assert bm_dev.sparsity() == pytest.approx(bm_cpu.sparsity())
    out_c, lse_c = _attend(*cpu, bm_cpu)
    out_d, lse_d = _attend(*dev, bm_dev)
    assert out_d.device.type == "cuda" and lse_d.device.type == "cuda"
    np.testing.assert_allclose(out_d.detach().cpu().numpy(), out_c.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(lse_d.detach().cpu().numpy(), lse_c.detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    (out_c.sum() + lse_c.sum()).backward()
    (out_d.sum() + lse_d.sum()).backward()
    for c, d in zip(cpu, dev):
        assert d.grad.device.type == "cuda"
        np.testing.assert_allclose(d.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_compiled_flex_attention_on_cuda_and_device_mismatch():
    _, dev = _inputs(1)
    q, k, v, table = (t.detach() for t in dev)
    bm = create_block_mask(causal, None, None, 5, 5, BLOCK_SIZE=2).to("cuda")
    want = flex_attention(q, k, v, block_mask=bm)
    compiled = fw.compile(flex_attention)
    got = compiled(q, k, v, block_mask=bm)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want.cpu().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(DeviceError, match="block_mask"):
        flex_attention(q, k, v, block_mask=create_block_mask(causal, None, None, 5, 5))
