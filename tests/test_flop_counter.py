"""fw.utils.flop_counter: exact FLOP totals (hand formulas), module breakdown, tables,
custom formulas, compiled calls, and coexistence with the profiler."""

import math

import pytest

import framework as fw
import framework.nn.functional as F
from framework import nn
from framework.ops import registry
from framework.ops.registry import get_op
from framework.profiler import profile
from framework.utils.flop_counter import (FlopCounterMode, count_graph_flops, flop_registry,
                                          register_flop_formula, sdpa_backward_flop_count,
                                          sdpa_flop_count)

MM, CONV, CONV_T, LSTM = (get_op(n) for n in ("matmul", "conv", "conv_transpose", "lstm"))


def mlp():
    fw.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def mlp_flops(b, x_needs_grad=False):
    """Forward 2*b*in*out per layer; backward: the weight gradient of each layer, and the
    input gradient of every layer whose input needs one."""
    l1, l2 = 2 * b * 8 * 16, 2 * b * 16 * 4
    return l1 + l2, l1 + 2 * l2 + (l1 if x_needs_grad else 0)


def test_linear_mlp_forward_and_backward_exact_totals_and_modules():
    m, x = mlp(), fw.randn(5, 8)
    fwd, bwd = mlp_flops(5)
    with FlopCounterMode(display=False) as fc:
        y = m(x).sum()
    assert fc.get_total_flops() == fwd
    with FlopCounterMode(display=False) as fc:
        m(x).sum().backward()
    counts = fc.get_flop_counts()
    assert fc.get_total_flops() == fwd + bwd
    assert set(counts) == {"Global", "Sequential", "Sequential.0", "Sequential.2"}
    assert counts["Global"] == {MM: fwd + bwd} and counts["Sequential"] == {MM: fwd + bwd}
    # each layer's backward counts under the layer, as its forward does
    assert counts["Sequential.0"] == {MM: 2 * 2 * 5 * 8 * 16}
    assert counts["Sequential.2"] == {MM: 3 * 2 * 5 * 16 * 4}
    xg = fw.randn(5, 8, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        m(xg).sum().backward()
    assert fc.get_total_flops() == sum(mlp_flops(5, x_needs_grad=True))
    del y


def test_each_matmul_is_counted_once_through_linear_and_composites():
    x, w, b = fw.randn(3, 4), fw.randn(6, 4), fw.randn(6)
    with FlopCounterMode(display=False) as fc:
        F.linear(x, w, b)
        fw.addmm(b, x, w.t())
        x @ w.t()
    assert fc.get_flop_counts()["Global"] == {MM: 3 * 2 * 3 * 4 * 6}


def test_batched_matmul_einsum_and_vectors():
    a, b = fw.randn(2, 3, 4), fw.randn(4, 5)
    with FlopCounterMode(display=False) as fc:
        a @ b                                   # broadcast batch
        fw.randn(4) @ fw.randn(4)               # dot: one output element
        fw.einsum("bij,bjk->bik", a, fw.randn(2, 4, 5))
        fw.einsum("ni,oij,nj->no", fw.randn(3, 4), fw.randn(6, 4, 5), fw.randn(3, 5))
    counts = fc.get_flop_counts()["Global"]
    assert counts[MM] == 2 * 2 * 3 * 4 * 5 + 2 * 4
    # left to right: (ni,oij) touches n,i,o,j; then (noj,nj) touches n,o,j
    assert counts[get_op("einsum")] == 2 * 2 * 3 * 4 * 5 + 2 * 3 * 4 * 6 * 5 + 2 * 3 * 6 * 5


def test_conv_net_forward_and_backward():
    fw.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 6, 3, padding=1, groups=2))
    x = fw.randn(2, 3, 8, 8, requires_grad=True)
    c1 = 2 * 2 * 4 * 3 * 9 * 64      # 2 * N * C_out * C_in * k * k * H_out * W_out
    c2 = 2 * 2 * 6 * 2 * 9 * 64      # grouped: C_in / groups = 2
    with FlopCounterMode(display=False) as fc:
        net(x).sum().backward()
    counts = fc.get_flop_counts()
    # backward: input grad (conv_transpose) and weight grad (a conv) cost a forward each
    assert counts["Global"] == {CONV: c1 + c2 + c1 + c2, CONV_T: c1 + c2}
    assert sum(counts["Sequential.2"].values()) == 3 * c2


def test_transposed_conv_uses_the_input_positions():
    up = nn.ConvTranspose2d(4, 2, 3, stride=2)
    with FlopCounterMode(display=False) as fc:
        up(fw.randn(1, 4, 5, 5))
    assert fc.get_total_flops() == 2 * 1 * 4 * 2 * 9 * 25


def test_sdpa_forward_matches_torch_formula_and_backward_runs_four_products():
    fw.manual_seed(0)
    q = fw.randn(2, 3, 5, 4, requires_grad=True)
    k = fw.randn(2, 3, 6, 4, requires_grad=True)
    v = fw.randn(2, 3, 6, 7, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert fc.get_total_flops() == sdpa_flop_count(q.shape, k.shape, v.shape)
    assert sdpa_flop_count(q.shape, k.shape, v.shape) == 2 * 6 * 5 * 6 * (4 + 7)
    with FlopCounterMode(display=False) as fc:
        out.sum().backward()
    recompute = 2 * 6 * 5 * 6 * 4   # torch's fused backward recomputes q @ k^T; eager does not
    assert fc.get_total_flops() == \
        sdpa_backward_flop_count(out.shape, q.shape, k.shape, v.shape) - recompute


def test_recurrent_ops_have_formulas():
    fw.manual_seed(0)
    lstm, gru = nn.LSTM(4, 5), nn.GRU(4, 5)
    x = fw.randn(3, 2, 4)
    with FlopCounterMode(display=False) as fc:
        lstm(x)
        gru(x)
    counts = fc.get_flop_counts()["Global"]
    assert counts[LSTM] == 2 * 3 * 2 * (4 * 5) * (4 + 5)
    assert counts[get_op("gru")] == 2 * 3 * 2 * (3 * 5) * (4 + 5)


def test_a_composite_with_a_formula_is_not_counted_again_through_its_decomposition(
        monkeypatch):
    fw.manual_seed(0)
    lstm, x = nn.LSTM(4, 5), fw.randn(3, 2, 4)
    with FlopCounterMode(display=False) as fc:
        ref = lstm(x)[0]
    # without a CPU kernel the LSTM runs its decomposition (matmuls) through apply
    monkeypatch.delitem(LSTM.impls, "cpu")
    with FlopCounterMode(display=False) as fc2:
        out = lstm(x)[0]
        x[0] @ fw.randn(4, 3)    # after the composite: counted again
    assert fw.allclose(out, ref, atol=1e-5)
    assert fc2.get_flop_counts()["Global"] == {**fc.get_flop_counts()["Global"],
                                              MM: 2 * 2 * 4 * 3}


def test_a_composite_that_raises_inside_its_decomposition_does_not_stop_counting(
        monkeypatch):
    fw.manual_seed(0)
    lstm, x = nn.LSTM(4, 5), fw.randn(3, 2, 4)

    def failing(x, *args, **attrs):
        x @ fw.randn(4, 4)   # inside the composite: not counted again
        raise ArithmeticError("boom")
    monkeypatch.delitem(LSTM.impls, "cpu")
    monkeypatch.setattr(LSTM, "decomp", failing)
    with FlopCounterMode(display=False) as fc:
        with pytest.raises(ArithmeticError):
            lstm(x)
        x[0] @ fw.randn(4, 3)   # op_end of the lstm never ran; this still counts
    assert fc.get_flop_counts()["Global"] == {LSTM: 2 * 3 * 2 * 20 * 9, MM: 2 * 2 * 4 * 3}


def test_module_tracker_parents_forward_and_backward():
    from framework.nn.modules.module import (register_module_forward_hook,
                                             register_module_forward_pre_hook)
    from framework.utils.hooks import RemovableHandle
    from framework.utils.module_tracker import ModuleTracker
    m = mlp()
    seen = []
    with ModuleTracker() as tracker:
        def record(mod, args, out=None):
            seen.append((type(mod).__name__, sorted(tracker.parents), tracker.is_bw))
        pre = register_module_forward_pre_hook(record)
        post = register_module_forward_hook(lambda mod, args, out: out * 2
                                            if isinstance(mod, nn.ReLU) else None)
        assert isinstance(pre, RemovableHandle)
        x = fw.randn(2, 8, requires_grad=True)
        y = m(x)
        h = y.register_hook(lambda g: seen.append(("bw", sorted(tracker.parents),
                                                   tracker.is_bw)))
        y.sum().backward()
        pre.remove()
        post.remove()
        h.remove()
        assert tracker.is_bw and tracker.parents == {"Global"}  # input hooks popped all
    # the pre-hook runs after the tracker's own (registered first): the module is in
    assert seen[0] == ("Sequential", ["Global", "Sequential"], False)
    assert seen[1] == ("Linear", ["Global", "Sequential", "Sequential.0"], False)
    assert seen[-1] == ("bw", ["Global", "Sequential", "Sequential.2"], True)
    ref = m[2](m[0](x).relu() * 2)  # the global forward hook doubled ReLU's output
    assert fw.allclose(y, ref)
    assert fw.allclose(m(x), m[2](m[0](x).relu()))  # both hooks removed


def test_custom_formulas_by_mapping_and_by_decorator():
    x = fw.randn(3, 4)
    mapping = {"layer_norm": lambda x_shape, *args, out_shape, **kw: 5 * math.prod(x_shape)}
    with FlopCounterMode(display=False, custom_mapping=mapping) as fc:
        F.layer_norm(x, (4,))
        x @ x.t()
    assert fc.get_flop_counts()["Global"] == {get_op("layer_norm"): 60, MM: 2 * 3 * 4 * 3}
    cumsum = get_op("cumsum")
    try:
        @register_flop_formula(cumsum)
        def cumsum_flop(x_shape, *, out_shape, dim, **kw):
            return math.prod(out_shape)
        with FlopCounterMode(display=False) as fc:
            x.cumsum(0)
        assert fc.get_flop_counts()["Global"] == {cumsum: 12}
        with pytest.raises(ValueError, match="duplicate"):
            register_flop_formula("cumsum")(cumsum_flop)
    finally:
        flop_registry.pop(cumsum, None)
    with pytest.raises(ValueError, match="no registered op"):
        register_flop_formula("no_such_op")(cumsum_flop)
    with pytest.raises(NotImplementedError, match="get_raw"):
        register_flop_formula("matmul", get_raw=True)


def test_table_lists_modules_to_depth_and_prints_on_exit(capsys):
    m, x = mlp(), fw.randn(50, 8)
    with FlopCounterMode(depth=1) as fc:
        m(x)
    printed = capsys.readouterr().out
    fwd = mlp_flops(50)[0]   # 19200: shown as 19.200K (PyTorch's suffix rule)
    assert printed.strip() == fc.get_table(1).strip()
    lines = fc.get_table(1).split("\n")
    assert lines[0].split() == ["Module", "FLOP", "%", "Total"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["Sequential", f"{fwd / 1000:.3f}K", "100.00%"]
    assert lines[3].split() == ["-", "matmul", f"{fwd / 1000:.3f}K", "100.00%"]
    assert len(lines) == 4   # depth 1: the submodules are left out
    deeper = fc.get_table(2)
    assert " Sequential.0" in deeper and " Sequential.2" in deeper
    assert "Sequential.1" not in deeper   # ReLU runs no counted op
    # FLOPs outside any module: "Global" leads and the modules are indented under it
    with FlopCounterMode(display=False) as fc:
        m(x) @ fw.randn(4, 2)
    lines = fc.get_table().split("\n")
    assert lines[2].startswith("Global") and lines[4].startswith(" Sequential")
    with FlopCounterMode(display=False) as fc:
        x + 1
    assert fc.get_table().split("\n")[2].split() == ["Global", "0.000", "0%"]


def test_nothing_is_counted_after_the_block_and_counters_nest():
    x = fw.randn(4, 4)
    with FlopCounterMode(display=False) as outer:
        x @ x
        with FlopCounterMode(display=False) as inner:
            x @ x
    x @ x
    assert inner.get_total_flops() == 128 and outer.get_total_flops() == 256
    assert registry._profile_hook is None
    with pytest.raises(ValueError, match="not reentrant"):
        with outer:
            with outer:
                pass
    with pytest.warns(UserWarning, match="mods argument is not needed"):
        FlopCounterMode(mods=nn.Linear(2, 2))


def test_counter_and_profiler_record_together_in_either_order():
    x = fw.randn(4, 4)
    with profile() as prof:
        with FlopCounterMode(display=False) as fc:
            x @ x
        x @ x
    assert fc.get_total_flops() == 128
    assert [e.name for e in prof.events if e.kind == "op"] == ["matmul", "matmul"]
    with FlopCounterMode(display=False) as fc:
        with profile() as prof:
            x @ x
        x @ x
    assert fc.get_total_flops() == 256 and len(prof.events) == 1
    assert registry._profile_hook is None


def test_meta_tensors_are_counted_without_computing():
    x, w = fw.empty(64, 128, device="meta"), fw.empty(128, 32, device="meta")
    with FlopCounterMode(display=False) as fc:
        y = x @ w
    assert y.device.type == "meta" and fc.get_total_flops() == 2 * 64 * 128 * 32


def test_compiled_calls_are_counted_from_their_graphs():
    m, x = mlp(), fw.randn(5, 8)
    fwd, bwd = mlp_flops(5)
    step = fw.compile(lambda x: m(x).sum(), mode="always")
    step(x)   # capture outside the block
    entry = next(iter(step.cache.values()))
    assert count_graph_flops(step.graph(x)) == fwd
    with FlopCounterMode(display=False) as fc:
        loss = step(x)
    assert fc.get_total_flops() == fwd
    with FlopCounterMode(display=False) as fc:
        step(x).backward()
    # the compiled backward may recompute forward values (counted: it runs them)
    assert fc.get_total_flops() == fwd + count_graph_flops(entry.backward.graph) >= fwd + bwd
    with FlopCounterMode(display=False) as fc:   # capture inside the block: counted once
        fresh = fw.compile(lambda x: m(x).sum(), mode="always")
        fresh(x)
    assert fc.get_total_flops() == fwd
    del loss


def test_dynamic_shape_graphs_count_with_the_call_sizes():
    m = mlp()
    step = fw.compile(lambda x: m(x), mode="always", dynamic=True)
    step(fw.randn(5, 8))
    with FlopCounterMode(display=False) as fc:
        step(fw.randn(9, 8))
    assert fc.get_total_flops() == mlp_flops(9)[0]
    graph = step.graph(fw.randn(9, 8))
    (name,) = graph.symbols
    expr = count_graph_flops(graph)
    assert expr.subs(graph.symbols[name], 3) == mlp_flops(3)[0]
    assert count_graph_flops(graph, sizes={name: 7}) == mlp_flops(7)[0]
