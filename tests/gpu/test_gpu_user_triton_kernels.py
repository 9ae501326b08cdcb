"""pytorch/tutorials ``recipes_source/torch_compile_user_defined_triton_kernel_tutorial.py``
on fw: a user ``@triton.jit`` kernel launched on fw "cuda" tensors.

What fw does with the recipe:

- Eager launches work: each fw tensor argument reaches Triton as its device buffer
  (``data_ptr()`` of the view's first element, ``dtype``), so ``add_kernel[grid](x, y, out,
  n, BLOCK_SIZE=4)`` computes ``x + y`` on the device (the simulated one here).
- DIFFERENCE: inside ``fw.compile`` a launch is a graph break (fw's graphs hold only kernels
  fw generates): the recipe's ``@torch.compile(fullgraph=True)`` raises GraphBreak naming
  the launch; without ``fullgraph`` the function runs eagerly with a warning, with the
  right result. PyTorch puts the kernel in its graph.
- A CPU tensor argument is a DeviceError (Triton refuses one in PyTorch too).
- On the simulated device the kernel is written ``BLOCK_SIZE: tl.constexpr``: Triton's
  interpreter does not recognise the recipe's string annotation ``"tl.constexpr"`` (a
  Triton interpreter limitation; the compiled path on a GPU does). The ``triton.autotune``
  variant needs a GPU: the autotuner benchmarks through the active GPU driver, which the
  interpreter does not have (it fails the same way with PyTorch on a machine without one).
"""

import warnings

import numpy as np
import pytest

import framework as torch
from framework.errors import DeviceError, GraphBreak
from framework.utils._triton import has_triton

triton = pytest.importorskip("triton")
from triton import language as tl  # noqa: E402



def _simulated():
    from framework.backends import cuda_runtime as rt
    return rt.SIMULATED


@triton.jit
def add_kernel(
    in_ptr0,
    in_ptr1,
    out_ptr,
    n_elements,
    BLOCK_SIZE: tl.constexpr,
):
    pid = tl.program_id(axis=0)
    block_start = pid * BLOCK_SIZE
    offsets = block_start + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(in_ptr0 + offsets, mask=mask)
    y = tl.load(in_ptr1 + offsets, mask=mask)
    output = x + y
    tl.store(out_ptr + offsets, output, mask=mask)


def add_fn(x, y):
    output = torch.zeros_like(x)
    n_elements = output.numel()
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
    add_kernel[grid](x, y, output, n_elements, BLOCK_SIZE=4)
    return output


def test_has_triton():
    assert has_triton()


@pytest.mark.parametrize("n", [4, 7])
def test_user_kernel_on_fw_cuda_tensors(n):
    x = torch.randn(n, device="cuda")
    y = torch.randn(n, device="cuda")
    out = add_fn(x, y)
    print(f"Vector addition of\nX:\t{x}\nY:\t{y}\nis equal to\n{out}")
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), x.cpu().numpy() + y.cpu().numpy(),
                               rtol=1e-6)
    # a view starting inside its buffer: the kernel gets the view's first element
    base = torch.randn(n + 3, device="cuda")
    out = add_fn(base[3:], y)
    np.testing.assert_allclose(out.cpu().numpy(), base.cpu().numpy()[3:] + y.cpu().numpy(),
                               rtol=1e-6)


def test_compiled_fullgraph_is_a_clear_graph_break():
    x, y = torch.randn(4, device="cuda"), torch.randn(4, device="cuda")
    compiled = torch.compile(add_fn, fullgraph=True)
    with pytest.raises(GraphBreak, match="user-defined Triton kernel launch"):
        compiled(x, y)


def test_compiled_without_fullgraph_runs_eagerly():
    x, y = torch.randn(4, device="cuda"), torch.randn(4, device="cuda")
    compiled = torch.compile(add_fn)
    with pytest.warns(UserWarning, match="user-defined Triton kernel launch"):
        out = compiled(x, y)
    np.testing.assert_allclose(out.cpu().numpy(), (x + y).cpu().numpy(), rtol=1e-6)
    assert compiled.stats()["captures"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # warned once: later calls run eagerly quietly
        compiled(x, y)


def test_cpu_tensor_argument_is_refused():
    x = torch.randn(4)
    with pytest.raises(DeviceError, match="Triton kernels take cuda tensors"):
        add_kernel[(1,)](x, x, x, 4, BLOCK_SIZE=4)


@pytest.mark.skipif("_simulated()", reason="Triton's autotuner needs a GPU driver")
def test_autotuned_kernel_on_a_gpu():
    @triton.autotune(
        configs=[
            triton.Config({"BLOCK_SIZE": 4}, num_stages=3, num_warps=8),
            triton.Config({"BLOCK_SIZE": 4}, num_stages=4, num_warps=4),
            triton.Config({"BLOCK_SIZE": 2}, num_stages=3, num_warps=8),
            triton.Config({"BLOCK_SIZE": 2}, num_stages=4, num_warps=4),
        ],
        key=[],
    )
    @triton.jit
    def add_kernel_autotuned(in_ptr0, in_ptr1, out_ptr, n_elements,
                             BLOCK_SIZE: "tl.constexpr"):
        pid = tl.program_id(axis=0)
        block_start = pid * BLOCK_SIZE
        offsets = block_start + tl.arange(0, BLOCK_SIZE)
        mask = offsets < n_elements
        x = tl.load(in_ptr0 + offsets, mask=mask)
        y = tl.load(in_ptr1 + offsets, mask=mask)
        output = x + y
        tl.store(out_ptr + offsets, output, mask=mask)

    x, y = torch.randn(4, device="cuda"), torch.randn(4, device="cuda")
    output = torch.zeros_like(x)
    grid = lambda meta: (triton.cdiv(4, meta["BLOCK_SIZE"]),)  # noqa: E731
    add_kernel_autotuned[grid](x, y, output, 4)
    np.testing.assert_allclose(output.cpu().numpy(), (x + y).cpu().numpy(), rtol=1e-6)
