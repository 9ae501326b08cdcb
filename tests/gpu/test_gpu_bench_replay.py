"""The kernel benchmark's launch recording: a replay of the recorded launches recomputes
the same outputs in the same buffers, and the simulated device gets the NumPy check."""

import numpy as np

import framework as fw
from framework import nn
from framework.backends.cuda import to_numpy
from framework.bench import kernels as bench
from framework.bench.cuda_graph import record_launches, replay


def _runner(f, *args):
    cf = fw.compile(f)
    cf(*args)
    run, plan = bench._step_runner(cf, args)
    kernels = [k for st in plan.steps for k in bench._step_kernels(st)]
    return run, plan, kernels


def test_replayed_launches_recompute_the_outputs_in_place():
    rng = np.random.default_rng(0)
    a, t = rng.standard_normal((5, 12)).astype(np.float32), rng.integers(0, 12, 5)
    x = fw.tensor(a, device="cuda")
    run, plan, kernels = _runner(nn.functional.cross_entropy, x, fw.tensor(t, device="cuda"))
    calls = record_launches(run, kernels)
    assert len(calls) == plan.kernel_count == 2
    assert all("_launch" not in vars(k) for k in kernels)  # the recorder is removed
    out = calls[-1][3][plan.steps[-1].variants()[0].pointers.index("out0")]
    to_numpy(out)[...] = np.nan
    replay(calls)()
    lse = np.log(np.exp(a - a.max(1, keepdims=True)).sum(1)) + a.max(1)
    np.testing.assert_allclose(to_numpy(out).reshape(()), (lse - a[np.arange(5), t]).mean(),
                               rtol=1e-5)


def test_replay_needs_every_launch_of_the_call():
    x = fw.randn(4, 8, device="cuda")
    run, plan, kernels = _runner(lambda q: fw.softmax(q, -1), x)
    assert bench._replayed(run, kernels, sets=2, launches=plan.kernel_count) is not None
    assert bench._replayed(run, kernels, sets=2, launches=plan.kernel_count + 1) is None
    assert record_launches(run, []) is None


def test_mb_sizes_parse_and_reject_bad_values():
    import argparse

    import pytest
    assert bench._sizes("64,256") == [64, 256]
    for bad in ("64,x", "0", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            bench._sizes(bad)


def test_simulated_device_checks_each_case_against_numpy(capsys):
    assert bench.main(["--device", "cuda"]) == 0
    assert "layer_norm" in capsys.readouterr().out
