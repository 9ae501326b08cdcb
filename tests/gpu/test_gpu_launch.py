"""Launch decisions of generated kernels: 32-bit index math unless an allocation or the
iteration space can pass 2**31, kernel variants per input layout, the row-prefetch
configuration, and launches reused per extent."""

from types import SimpleNamespace

import numpy as np
import pytest

import framework as fw
from framework import nn


def _some_kernel():
    from compiler.codegen import triton_eager
    fw.tensor(np.ones((3, 5), np.float32), device="cuda").sum(1)
    return next(k for key, k in triton_eager._CACHE.items() if key[:2] == ("red", "sum"))


def _buf(elements, itemsize=4):
    dtype = np.dtype({4: np.float32, 8: np.float64}[itemsize])
    return SimpleNamespace(alloc=SimpleNamespace(nbytes=elements * itemsize), dtype=dtype,
                           shape=(elements,), stride=lambda: (1,))


def test_large_tensors_keep_32_bit_index_math():
    k = _some_kernel()
    n = 1 << 24  # 64 MB of float32: the old rule (max size x numel) forced int64 here
    assert not k.needs_index64({"in0": _buf(n), "out0": _buf(n)}, {}, n, 1)
    assert not k.needs_index64({"in0": _buf(n)}, {}, 4096, 4096)


def test_index64_when_an_allocation_or_the_iteration_space_passes_int32():
    k = _some_kernel()
    big = 1 << 31
    assert k.needs_index64({"in0": _buf(big), "out0": _buf(16)}, {}, 16, 1)
    assert k.needs_index64({"in0": _buf(16)}, {}, 1 << 16, 1 << 15)


def test_launches_are_reused_per_extent():
    from compiler.codegen import triton_eager
    a = np.arange(13 * 29, dtype=np.float32).reshape(13, 29)  # extents no other test uses
    x = fw.tensor(a, device="cuda")
    for _ in range(3):
        np.testing.assert_allclose(x.sum(1).cpu().numpy(), a.sum(1))
    entries = [key for k in triton_eager._CACHE.values() for key in getattr(k, "_launches", {})
               if key[:2] == (13, 29)]
    assert len(entries) == 1


def test_non_contiguous_inputs_get_their_own_variant(monkeypatch):
    from framework.backends.cuda import to_numpy
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
    a = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    f = fw.compile(lambda t: (t * 2 + 1).exp())
    contiguous = fw.tensor(a, device="cuda")
    assert "_st" not in f.code(contiguous).split("def ", 1)[1].split(")")[0]
    np.testing.assert_allclose(f(contiguous).cpu().numpy(), np.exp(a * 2 + 1), rtol=1e-5)
    step = next(s for s in f._entry_for((contiguous,), {}).plan.steps
                if hasattr(s, "variants"))
    transposed = fw.tensor(a.T.copy(), device="cuda").t()  # a view with strides (1, 6)
    env = {step.inputs[0]: transposed._data}
    step.run(env, {}, 0)
    got = to_numpy(env[step.outputs[0]])
    np.testing.assert_allclose(got, np.exp(a * 2 + 1), rtol=1e-5)
    assert set(step._variants) == {(True,), (False,)}


@pytest.mark.parametrize("progs,stages", [(0, 1), (2, 2), (3, 1)])
def test_row_kernels_with_a_capped_grid_cover_every_row(progs, stages):
    """Programs striding over rows (XPROGS) compute every row, prefetching or not, with
    the weight and bias loaded once per program."""
    rng = np.random.default_rng(1)
    a, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((7, 33), 33, 33))
    x = fw.tensor(a, device="cuda")
    wt, bt = fw.tensor(w, device="cuda"), fw.tensor(b, device="cuda")
    f = fw.compile(lambda t: nn.functional.layer_norm(t, (33,), wt, bt))
    f(x)
    step = f._entry_for((x,), {}).plan.steps[0]
    kernel = step.variants()[0]
    kernel.force = dict(kernel.geometry(7, 33), XBLOCK=1, XPROGS=progs, XSTAGES=stages)
    try:
        got = f(x).cpu().numpy()
    finally:
        kernel.force = None
    ref = (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_row_invariant_loads_are_hoisted_above_the_row_loop():
    """Layer norm's weight and bias are read once per program, not once per row."""
    x = fw.randn(4, 16, device="cuda")
    w, b = fw.randn(16, device="cuda"), fw.randn(16, device="cuda")
    code = fw.compile(lambda t: nn.functional.layer_norm(t, (16,), w, b)).code(x)
    persistent = code.split("if RPERSIST:", 1)[1].split("else:", 1)[0]
    head, rows = persistent.split("for xstart in", 1)
    assert head.count("tl.load(") == 2 and "mask=rmask," in head
    assert rows.count("tl.load(") == 1  # the row of x


def test_equal_constants_of_a_compiled_graph_share_one_argument():
    """Layer norm divides by the row length three times in its decomposition: one scalar
    argument (plus eps), so the centred row is computed once, not three times."""
    x = fw.randn(4, 16, device="cuda")
    w, b = fw.randn(16, device="cuda"), fw.randn(16, device="cuda")
    code = fw.compile(lambda t: nn.functional.layer_norm(t, (16,), w, b)).code(x)
    assert "do_not_specialize=['sc0', 'sc1'])" in code
    persistent = code.split("for xstart in", 1)[1].split("else:", 1)[0]
    assert persistent.count(" - ") == 1


def test_eager_kernels_keep_one_argument_per_scalar_operand():
    """Eager kernels are cached by operand kinds, not values: equal scalars of a first call
    must not share an argument that a later call needs to differ."""
    c = fw.tensor([True, False, True], device="cuda")
    np.testing.assert_array_equal(fw.where(c, 0.0, 0.0).cpu().numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(fw.where(c, 1.0, 2.0).cpu().numpy(), [1.0, 2.0, 1.0])
    x = fw.tensor([-3.0, 0.5, 3.0], device="cuda")
    np.testing.assert_array_equal(fw.clamp(x, 1.0, 1.0).cpu().numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fw.clamp(x, -1.0, 2.0).cpu().numpy(), [-1.0, 0.5, 2.0])


def test_autotuning_drops_configs_whose_row_loads_overflow_a_thread():
    """Three row-sized loads of 32 values a thread (XBLOCK 4 x 1024 columns on 4 warps)
    spilled on sm_90: such configs are pruned, and with nothing left the config holding the
    fewest values a thread is kept."""
    import triton

    from compiler.codegen.triton_launch import prune_reduction_configs, reduction_configs
    x = fw.randn(4, 16, device="cuda")
    w, b = fw.randn(16, device="cuda"), fw.randn(16, device="cuda")
    fw.compile(lambda t: nn.functional.layer_norm(t, (16,), w, b))(x)
    from compiler.codegen.triton_launch import GENERATED
    kernel = [k for k in GENERATED.values() if k.name.startswith("triton_red_sum_div_sub")][-1]
    kernel.interpret = False  # the source a GPU gets: autotuned with this kernel's pruning
    try:
        gpu_source = kernel._assemble()[0]
    finally:
        kernel.interpret = True
    assert kernel.row_tiles == 3 and "row_tiles=3" in gpu_source

    def geometry(row_tiles, rblock=1024):
        kept = prune_reduction_configs(reduction_configs(), {"xnumel": 8192},
                                       row_tiles=row_tiles, RBLOCK=rblock, RPERSIST=True)
        return {(c.kwargs["XBLOCK"], c.num_warps) for c in kept}
    assert (4, 4) in geometry(1) and (4, 4) not in geometry(3)
    assert (1, 4) in geometry(3) and (1, 4) not in geometry(3, rblock=4096)
    wide = [triton.Config({"XBLOCK": 1, "XSTAGES": 1, "XPROGS": 0}, num_warps=w)
            for w in (4, 16, 8)]
    kept = prune_reduction_configs(wide, {"xnumel": 8}, row_tiles=8, RBLOCK=16384)
    assert [c.num_warps for c in kept] == [16]


def test_rows_with_an_indirect_load_are_not_pipelined():
    """Cross-entropy's target logit is loaded at an address read from memory: pipelining
    such rows (XSTAGES 2) spilled on sm_90, so its autotuning keeps one stage."""
    from compiler.codegen.triton_launch import (GENERATED, prune_reduction_configs,
                                                reduction_configs)
    x, y = fw.randn(4, 16, device="cuda"), fw.randint(0, 16, (4,), device="cuda")
    fw.compile(lambda a, b: nn.functional.cross_entropy(a, b, reduction="none"))(x, y)
    kernel = [k for k in GENERATED.values() if k.name.startswith("triton_red_amax_sub_exp")
              and "where" in k.name][-1]
    assert not kernel.pipeline
    kept = prune_reduction_configs(reduction_configs(), {"xnumel": 8192}, row_tiles=1,
                                   pipeline=kernel.pipeline, RBLOCK=4096, RPERSIST=True)
    assert kept and all(c.kwargs["XSTAGES"] == 1 for c in kept)
    softmax = prune_reduction_configs(reduction_configs(), {"xnumel": 8192}, RBLOCK=4096)
    assert any(c.kwargs["XSTAGES"] == 2 for c in softmax)
