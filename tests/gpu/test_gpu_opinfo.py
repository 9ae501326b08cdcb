"""The op database on device "cuda" (Triton interpreter without a GPU): forward values
against NumPy for every record and dtype, results stay on the device, and gradients
computed on the device match the CPU's."""

import numpy as np
import pytest

import framework as fw
from tests.gpu._gpu_utils import cuda_like, devices_of, map_tensors
from tests.opinfo import OP_DB, result_arrays, result_dtypes, to_fw, to_np
from tests.test_ops_opinfo import _compare, _expected_dtype



_FAST_DTYPES = (fw.float32, fw.int64, fw.bool)  # the rest of the dtypes are marked slow


def _cases():
    out = []
    for info in OP_DB:
        for dt in info.dtypes:
            marks = [] if dt in _FAST_DTYPES else [pytest.mark.slow]
            out.append(pytest.param(info, dt, id=f"{info.name}-{dt.name}", marks=marks))
    return out


@pytest.mark.parametrize("info,dtype", _cases())
def test_forward_cuda(info, dtype):
    _check_forward(info, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("info", OP_DB, ids=lambda info: info.name)
def test_database_on_a_real_gpu(info):
    """Each op of the database (float32, bfloat16, int64, bool) against NumPy on the GPU."""
    assert not fw.cuda.is_simulated(), "unset FW_TRITON_INTERPRET to test the real device"
    for dt in info.dtypes:
        if dt in (fw.float32, fw.bfloat16, fw.int64, fw.bool):
            try:
                _check_forward(info, dt)
            except pytest.skip.Exception:
                pass


def _check_forward(info, dtype):
    for s in info.samples(dtype):
        want = info.ref(*to_np(s.args), **to_np(s.kwargs))
        args = map_tensors(cuda_like, to_fw(s.args))
        kwargs = map_tensors(cuda_like, to_fw(s.kwargs))
        if not devices_of((args, kwargs)):
            pytest.skip("creation function without tensor inputs: tests/gpu/test_gpu_runtime.py "
                        "creates on device='cuda'")
        got = info.fn(*args, **kwargs)
        if info.inplace:
            assert got is args[0], f"{info.name}: in-place op must return its input"
        assert devices_of(got) <= {"cuda"}, f"{info.name} {s}: result left the device"
        _compare(info, dtype, s, result_arrays(got), want, result_dtypes(got),
                 _expected_dtype(info, dtype, want if not isinstance(want, tuple) else want[0]))


def _grad_cases():
    return [pytest.param(i, id=i.name) for i in OP_DB if i.differentiable]


@pytest.mark.parametrize("info", _grad_cases())
def test_backward_cuda_matches_cpu(info):
    """Backward on the device gives the CPU's input gradients (float32 samples)."""
    checked = 0
    for s in info.samples(fw.float32):
        if not s.grad:
            continue
        cpu_args = to_fw(s.args, requires_grad=True)
        leaves = [a for a in _flat(cpu_args) if isinstance(a, fw.Tensor) and a.requires_grad]
        if not leaves:
            continue
        dev_args = map_tensors(cuda_like, cpu_args)
        dev_leaves = [a for a in _flat(dev_args) if isinstance(a, fw.Tensor) and a.requires_grad]
        kw = to_fw(s.kwargs)
        fn = info.fn
        if info.inplace:
            def fn(first, *rest, _f=info.fn, **k):
                return _f(first * 1.0, *rest, **k)
        out_c = _first_float(fn(*cpu_args, **kw))
        out_d = _first_float(fn(*dev_args, **map_tensors(cuda_like, kw)))
        if out_c is None or not out_c.requires_grad:
            continue
        cot = np.random.default_rng(3).standard_normal(out_c.shape).astype(np.float32)
        (out_c * fw.tensor(cot)).sum().backward()
        (out_d * fw.tensor(cot, device="cuda")).sum().backward()
        for lc, ld in zip(leaves, dev_leaves):
            if lc.grad is None:
                assert ld.grad is None
                continue
            assert ld.grad.device.type == "cuda"
            np.testing.assert_allclose(ld.grad.cpu().numpy(), lc.grad.numpy(), rtol=2e-4,
                                       atol=2e-4, err_msg=f"{info.name} {s}")
        checked += 1
    if not checked:
        pytest.skip(f"{info.name}: no float32 sample with a differentiable output")


def _flat(args):
    out = []
    for a in args:
        out.extend(a if isinstance(a, list) else [a])
    return out


def _first_float(out):
    if isinstance(out, fw.Tensor):
        return out if out.dtype.is_floating_point else None
    if isinstance(out, (tuple, list)):
        for o in out:
            r = _first_float(o)
            if r is not None:
                return r
    return None
