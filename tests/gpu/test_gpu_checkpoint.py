"""Activation checkpointing on "cuda": the recomputation restores the CUDA (Philox) random
stream, so dropout masks repeat and the gradients equal the plain computation's."""

import numpy as np

import framework as fw
from framework import nn
from framework.utils.checkpoint import checkpoint


def test_checkpoint_with_dropout_on_cuda_matches_the_plain_gradients():
    fw.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5),
                        nn.Linear(16, 4)).to("cuda")
    x = fw.randn(4, 8, device="cuda", requires_grad=True)

    def run(use_ckpt, preserve=True):
        fw.manual_seed(3)
        net.zero_grad()
        x.grad = None
        y = (checkpoint(net, x, use_reentrant=False, preserve_rng_state=preserve)
             if use_ckpt else net(x))
        (y * y).sum().backward()
        grads = [t.grad.cpu().numpy() for t in (x, *net.parameters())]
        return grads, fw.rand(4, device="cuda").cpu().numpy()

    plain, next_plain = run(False)
    ckpt, next_ckpt = run(True)
    for u, v in zip(plain, ckpt):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(next_plain, next_ckpt)  # the stream was forked, not advanced
    loose, _ = run(True, preserve=False)
    assert any(not np.array_equal(u, v) for u, v in zip(plain, loose))


def test_compiled_checkpointed_step_on_cuda_recomputes_and_matches_eager():
    from tests.compiler.test_remat import _assert_same_training, _train
    ckpt = _train(True, True, depth=2, width=8, batch=4, steps=2, device="cuda")
    eager = _train(False, False, depth=2, width=8, batch=4, steps=2, device="cuda")
    _assert_same_training(ckpt, eager, rtol=1e-4)
    assert any(p.startswith("remat (+") for p in ckpt[2].graph().passes)
