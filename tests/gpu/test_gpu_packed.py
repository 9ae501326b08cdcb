"""Packed sequences on device "cuda": PackedSequence.cuda()/.to()/.cpu() (batch_sizes stays
on the CPU), pack/pad on the device, and a bidirectional LSTM on packed input matching
the CPU run (outputs, h_n, c_n in the original batch order, and gradients), also with
``proj_size``."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.nn.utils.rnn import pack_sequence, pad_packed_sequence


@pytest.mark.parametrize("proj_size", [0, 2])
def test_packed_lstm_on_cuda_matches_cpu(proj_size):
    rng = np.random.default_rng(2)
    raw = [rng.standard_normal((n, 2)).astype(np.float32) for n in (2, 3, 1)]
    fw.manual_seed(0)
    cpu = nn.LSTM(2, 3, bidirectional=True, proj_size=proj_size)
    gpu = nn.LSTM(2, 3, bidirectional=True, proj_size=proj_size).cuda()
    gpu.load_state_dict(cpu.state_dict())

    results = []
    for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
        seqs = [fw.tensor(a, device=dev, requires_grad=True) for a in raw]
        packed = pack_sequence(seqs, enforce_sorted=False)
        assert packed.is_cuda == (dev == "cuda")
        assert packed.batch_sizes.device.type == "cpu"
        out, (h, c) = model(packed)
        assert out.data.device.type == dev and out.sorted_indices.device.type == dev
        padded, lens = pad_packed_sequence(out, batch_first=True)
        assert lens.tolist() == [2, 3, 1]
        ((padded ** 2).sum() + h.sum() + (c * c).sum()).backward()
        results.append([t.detach().cpu().numpy() for t in (padded, h, c)]
                       + [s.grad.cpu().numpy() for s in seqs]
                       + [model.weight_hh_l0_reverse.grad.cpu().numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_packed_sequence_device_moves():
    p = pack_sequence([fw.ones(3, 2), fw.ones(1, 2)], enforce_sorted=False)
    q = p.cuda()
    assert q.is_cuda and q.data.device.type == "cuda"
    assert q.sorted_indices.device.type == "cuda" and q.batch_sizes.device.type == "cpu"
    assert q.to("cuda") is q
    back = q.cpu()
    assert not back.is_cuda and back.unsorted_indices.device.type == "cpu"
    np.testing.assert_array_equal(back.data.numpy(), p.data.numpy())
    padded, lens = pad_packed_sequence(q)
    assert padded.device.type == "cuda" and lens.device.type == "cpu"
