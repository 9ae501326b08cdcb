"""CUDA graphs: fw.cuda.CUDAGraph / graph / graph_pool_handle, make_graphed_callables and
fw.compile(mode="reduce-overhead"). On the simulated device a capture records the Triton
launches and device copies and a replay re-issues them on the same memory; the tests
marked `gpu` run the same checks on a real card (stream capture)."""

import warnings

import numpy as np
import pytest

import framework as fw
from framework.errors import FwTypeError
from framework import nn, optim
from framework.backends import cuda_runtime as rt

SIM = fw.cuda.is_simulated()


def _np(t):
    return t.detach().cpu().numpy()


def _captured(fn, *args):
    """(graph, outputs) of ``fn(*args)`` captured once."""
    g = fw.cuda.CUDAGraph()
    fn(*args)  # warm-up: kernels compiled (and, on a GPU, loaded) outside the capture
    with fw.cuda.graph(g):
        out = fn(*args)
    return g, out


# -- CUDAGraph / graph -------------------------------------------------------------------
def test_replay_recomputes_from_the_static_inputs():
    x = fw.tensor(np.arange(12, dtype=np.float32).reshape(3, 4), device="cuda")
    w = fw.full((4,), 0.5, device="cuda")
    g, y = _captured(lambda a: ((a * w).sum(-1) + 1).relu(), x)
    g.replay()
    np.testing.assert_allclose(_np(y), np.maximum((_np(x) * 0.5).sum(-1) + 1, 0))
    x.copy_(fw.full((3, 4), -1.0, device="cuda"))  # change the inputs in place
    w.fill_(2.0)
    g.replay()
    np.testing.assert_allclose(_np(y), [0.0, 0.0, 0.0])
    x.copy_(fw.ones(3, 4, device="cuda"))
    g.replay()
    np.testing.assert_allclose(_np(y), [9.0, 9.0, 9.0])


@pytest.mark.skipif(not SIM, reason="what a capture leaves before replay is undefined on a GPU")
def test_capture_records_without_running():
    x = fw.ones(4, device="cuda")
    g, y = _captured(lambda a: a + 1, x)
    np.testing.assert_array_equal(_np(y), np.zeros(4))  # nothing ran yet (fresh pool block)
    g.replay()
    np.testing.assert_array_equal(_np(y), np.full(4, 2.0))


def test_replay_allocates_nothing():
    x = fw.randn(8, 16, device="cuda")
    g, out = _captured(lambda a: fw.softmax(a * 2, -1) @ a.T, x)
    count, held = rt.allocation_count(), fw.cuda.memory_allocated()
    for _ in range(3):
        g.replay()
    assert rt.allocation_count() == count and fw.cuda.memory_allocated() == held
    ref = _np(x) * 2
    ref = np.exp(ref - ref.max(-1, keepdims=True))
    np.testing.assert_allclose(_np(out), ref / ref.sum(-1, keepdims=True) @ _np(x).T,
                               rtol=1e-4, atol=1e-5)


def test_tensors_made_in_the_capture_live_in_the_graph_pool():
    x = fw.randn(64, device="cuda")

    def chain(a):
        for _ in range(6):  # each intermediate dies right after its use
            a = (a * 1.01).sin()
        return a
    g, y = _captured(chain, x)
    pool = g.pool()
    assert pool.num_blocks < 7  # freed intermediates' blocks were reused in stream order
    g.replay()
    ref = _np(x)
    for _ in range(6):
        ref = np.sin(ref * np.float32(1.01))
    np.testing.assert_allclose(_np(y), ref, rtol=1e-5, atol=1e-6)


def test_graphs_share_a_pool_and_replay_in_capture_order():
    x = fw.randn(16, device="cuda")
    h = fw.cuda.graph_pool_handle()
    g1, g2 = fw.cuda.CUDAGraph(), fw.cuda.CUDAGraph()
    (x * 3).exp()
    with fw.cuda.graph(g1, pool=h):
        y = (x * 3).exp()
    with fw.cuda.graph(g2, pool=g1.pool()):
        z = y.log() - 1
    assert g1.pool() is h and g2.pool() is h
    g1.replay()
    g2.replay()
    np.testing.assert_allclose(_np(z), _np(x) * 3 - 1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("what", ["synchronize", "item", "cpu", "h2d", "randn", "event"])
def test_what_a_graph_cannot_hold_raises_and_ends_the_capture(what):
    x = fw.ones(4, device="cuda")
    actions = {
        "synchronize": fw.cuda.synchronize,
        "item": lambda: x.sum().item(),
        "cpu": lambda: x.cpu(),
        "h2d": lambda: fw.tensor([1.0, 2.0], device="cuda"),
        "randn": lambda: fw.randn(3, device="cuda"),
        "event": lambda: fw.cuda.Event().record(),
    }
    g = fw.cuda.CUDAGraph()
    with pytest.raises(fw.DeviceError, match="while a CUDA graph is being captured"):
        with fw.cuda.graph(g):
            assert fw.cuda.is_current_stream_capturing()
            actions[what]()
    assert not fw.cuda.is_current_stream_capturing()
    with pytest.raises(fw.DeviceError, match="no captured work"):
        g.replay()
    assert (x + 1).sum().item() == 8.0  # the device works normally afterwards


def test_capture_misuse_is_refused():
    g = fw.cuda.CUDAGraph()
    with pytest.raises(fw.DeviceError, match="capture first"):
        g.replay()
    with pytest.raises(fw.ArgumentError, match="capture_error_mode"):
        g.capture_begin(capture_error_mode="strict")
    with pytest.raises(fw.ArgumentError, match="graph_pool_handle"):
        g.capture_begin(pool=object())
    with pytest.raises(fw.DeviceError, match="not capturing"):
        g.capture_end()
    x = fw.ones(2, device="cuda")
    with fw.cuda.graph(g):
        with pytest.raises(fw.DeviceError, match="cannot be nested"):
            fw.cuda.CUDAGraph().capture_begin()
        x.mul_(2)
    with pytest.raises(fw.DeviceError, match="reset"):
        g.capture_begin()
    g.replay()
    assert x.tolist() == [2.0, 2.0]
    g.reset()
    with pytest.raises(fw.DeviceError, match="capture first"):
        g.replay()


@pytest.mark.skipif(not SIM, reason="the simulated device has no CUDA graph to dump")
def test_debug_dump_needs_a_real_gpu(tmp_path):
    g, _ = _captured(lambda a: a * 2, fw.ones(2, device="cuda"))
    with pytest.raises(NotImplementedError, match="debug_dump needs a real GPU"):
        g.debug_dump(str(tmp_path / "g.dot"))


# -- make_graphed_callables ----------------------------------------------------------------
def _mlp(seed):
    fw.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to("cuda")


def test_graphed_module_forward_and_backward_match_eager():
    eager, graphed = _mlp(0), _mlp(0)
    sample = fw.randn(5, 6, device="cuda", requires_grad=True)
    out = fw.cuda.make_graphed_callables(graphed, (sample,), num_warmup_iters=1)
    assert out is graphed
    rng = np.random.default_rng(1)
    for _ in range(3):
        a = rng.standard_normal((5, 6)).astype(np.float32)
        xe = fw.tensor(a, device="cuda", requires_grad=True)
        xg = fw.tensor(a, device="cuda", requires_grad=True)
        ye, yg = eager(xe), graphed(xg)
        np.testing.assert_allclose(_np(yg), _np(ye), rtol=1e-5, atol=1e-6)
        (ye * ye).sum().backward()
        (yg * yg).sum().backward()
        np.testing.assert_allclose(_np(xg.grad), _np(xe.grad), rtol=1e-5, atol=1e-6)
    for pe, pg in zip(eager.parameters(), graphed.parameters()):  # accumulated 3 times
        np.testing.assert_allclose(_np(pg.grad), _np(pe.grad), rtol=1e-5, atol=1e-5)
    graphed.eval()  # another mode than captured: the original forward runs
    np.testing.assert_allclose(_np(graphed(xg)), _np(eager(xg)), rtol=1e-5, atol=1e-6)


def test_graphed_functions_share_a_pool_and_results_are_not_overwritten():
    w = fw.randn(4, 4, device="cuda", requires_grad=True)

    def f(a, weight):
        return (a @ weight).relu()

    def g(b):
        return b.square().sum(-1)
    fa, fb = fw.cuda.make_graphed_callables(
        (f, g), ((fw.randn(3, 4, device="cuda"), w),
                 (fw.randn(3, 4, device="cuda", requires_grad=True),)), num_warmup_iters=1)
    x1, x2 = fw.randn(3, 4, device="cuda"), fw.randn(3, 4, device="cuda")
    y1 = fb(fa(x1, w))
    keep = _np(y1)
    y2 = fb(fa(x2, w))
    np.testing.assert_array_equal(_np(y1), keep)  # a fresh copy, not the static output
    h = _np(x2) @ _np(w)
    np.testing.assert_allclose(_np(y2), (np.maximum(h, 0) ** 2).sum(-1), rtol=1e-5,
                               atol=1e-5)
    y2.sum().backward()
    np.testing.assert_allclose(_np(w.grad), _np(x2).T @ (2 * np.maximum(h, 0)), rtol=1e-4,
                               atol=1e-5)


def test_make_graphed_callables_checks_its_arguments():
    m = _mlp(0)
    m.register_forward_hook(lambda *a: None)
    with pytest.raises(fw.ArgumentError, match="hooks"):
        fw.cuda.make_graphed_callables(m, (fw.randn(2, 6, device="cuda"),))
    with pytest.raises(FwTypeError, match="tensors"):
        fw.cuda.make_graphed_callables(lambda a, s: a * s, (fw.ones(2, device="cuda"), 2.0))
    with pytest.raises(fw.DeviceError, match="on cpu"):
        fw.cuda.make_graphed_callables(lambda a: a * 2, (fw.ones(2),))
    f = fw.cuda.make_graphed_callables(lambda a: a * 2, (fw.ones(2, device="cuda"),),
                                       num_warmup_iters=1)
    with pytest.raises(fw.ShapeError, match="captured for float32\\[2\\]"):
        f(fw.ones(3, device="cuda"))


# -- fw.compile(mode="reduce-overhead") -----------------------------------------------------
def _trainer(seed, opt_cls=optim.AdamW, **opt_kw):
    fw.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).to("cuda")
    opt = opt_cls(model.parameters(), **opt_kw)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return model, opt, step


def _batches(n, rows, seed=0):
    rng = np.random.default_rng(seed)
    return [(fw.tensor(rng.standard_normal((rows, 8)).astype(np.float32), device="cuda"),
             fw.tensor(rng.integers(0, 4, rows), device="cuda")) for _ in range(n)]


@pytest.mark.parametrize("opt_cls,kw,schedule", [
    (optim.AdamW, dict(lr=1e-2), False),
    (optim.SGD, dict(lr=0.1), True)])
def test_compiled_training_step_replays_and_matches_eager(opt_cls, kw, schedule):
    m_e, opt_e, eager = _trainer(0, opt_cls, **kw)
    m_c, opt_c, step = _trainer(0, opt_cls, **kw)
    compiled = fw.compile(step, mode="reduce-overhead")
    losses, wants = [], []
    for k, (x, y) in enumerate(_batches(5, 6)):
        for opt in (opt_e, opt_c) if schedule else ():  # the lr: a runtime scalar
            opt.param_groups[0]["lr"] = kw["lr"] * 0.5 ** k
        wants.append(eager(x, y).item())
        before = rt.allocation_count()
        losses.append(compiled(x, y))
        made = rt.allocation_count() - before
    np.testing.assert_allclose([t.item() for t in losses], wants, rtol=1e-5)  # none overwritten
    st = compiled.stats()
    assert st["cudagraph_captures"] == 1, st  # after the eager warm-up creating Adam's state
    assert st["cudagraph_replays"] == 5 - st["eager_calls"] - 1, st
    assert made == 1 + 4  # a replayed call allocates its loss and the 4 gradients only
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(_np(pc), _np(pe), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(_np(pc.grad), _np(pe.grad), rtol=1e-4, atol=1e-6)


def test_new_shape_recompiles_into_a_new_graph_and_replaced_parameters_recapture():
    m_e, _, eager = _trainer(1, optim.SGD, lr=0.1, momentum=0.9)
    m_c, _, step = _trainer(1, optim.SGD, lr=0.1, momentum=0.9)
    compiled = fw.compile(step, mode="reduce-overhead", dynamic=False)
    small, big = _batches(3, 4, seed=2), _batches(2, 7, seed=3)
    for x, y in small + big + small[:1]:
        assert abs(compiled(x, y).item() - eager(x, y).item()) < 1e-5
    st = compiled.stats()
    assert st["num_recompiles"] == 1 and st["cudagraph_captures"] == 2, st
    assert st["cudagraph_replays"] == 3 and not st["cudagraph_invalidations"], st
    with fw.no_grad():  # replace a parameter's memory: its graph must be captured again
        for m in (m_e, m_c):
            m[0].weight.data = m[0].weight.data * 0.5
    x, y = small[1]
    assert abs(compiled(x, y).item() - eager(x, y).item()) < 1e-5
    st = compiled.stats()
    assert len(st["cudagraph_invalidations"]) == 1, st
    assert "replaced" in st["cudagraph_invalidations"][0]
    for pe, pc in zip(m_e.parameters(), m_c.parameters()):
        np.testing.assert_allclose(_np(pc), _np(pe), rtol=1e-5, atol=1e-6)


def test_compiled_module_forward_replays_under_eager_backward():
    eager, model = _mlp(3), _mlp(3)
    fast = fw.compile(model, mode="reduce-overhead")
    rng = np.random.default_rng(4)
    for _ in range(4):
        a = rng.standard_normal((5, 6)).astype(np.float32)
        xe = fw.tensor(a, device="cuda", requires_grad=True)
        xc = fw.tensor(a, device="cuda", requires_grad=True)
        ye, yc = eager(xe), fast(xc)
        np.testing.assert_allclose(_np(yc), _np(ye), rtol=1e-5, atol=1e-6)
        ye.square().sum().backward()
        yc.square().sum().backward()
        np.testing.assert_allclose(_np(xc.grad), _np(xe.grad), rtol=1e-5, atol=1e-6)
    for pe, pc in zip(eager.parameters(), model.parameters()):
        np.testing.assert_allclose(_np(pc.grad), _np(pe.grad), rtol=1e-5, atol=1e-5)
    st = fast.stats()
    assert st["cudagraph_captures"] == 1 and st["cudagraph_replays"] == 3, st


def test_buffers_updated_in_place_and_a_mode_switch_recompiles():
    def make():
        fw.manual_seed(5)
        return nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4)).to("cuda")
    eager, model = make(), make()
    fast = fw.compile(model, mode="reduce-overhead")
    xs = [fw.randn(8, 6, device="cuda") for _ in range(4)]
    with fw.no_grad():
        for x in xs:  # training mode: the running statistics change on every replay
            np.testing.assert_allclose(_np(fast(x)), _np(eager(x)), rtol=1e-4, atol=1e-5)
        for m in (eager, model):
            m.eval()
        for x in xs[:3]:
            np.testing.assert_allclose(_np(fast(x)), _np(eager(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(model[1].running_mean), _np(eager[1].running_mean),
                               rtol=1e-5, atol=1e-6)
    st = fast.stats()
    assert st["num_recompiles"] == 1 and st["cudagraph_captures"] == 2, st
    assert st["cudagraph_replays"] == 3 + 2, st


def test_runtime_scalars_are_read_at_replay():
    f = fw.compile(lambda a, s: (a * s).exp(), mode="reduce-overhead")
    x = fw.randn(5, device="cuda")
    for s in (0.5, -1.0, 2.0, 0.25):
        np.testing.assert_allclose(_np(f(x, s)), np.exp(_np(x) * s), rtol=1e-5)
    st = f.stats()
    assert st["cudagraph_captures"] == 1 and st["cudagraph_replays"] == 3, st


def test_dynamic_sizes_get_a_graph_each_least_recently_used_evicted(monkeypatch):
    from compiler import cudagraphs
    monkeypatch.setattr(cudagraphs, "GRAPH_LIMIT", 2)
    f = fw.compile(lambda a: a.cumsum(0) * 2, mode="reduce-overhead", dynamic=True)
    xs = {n: fw.randn(n, device="cuda") for n in (3, 4, 5)}
    for n in (3, 4, 3, 5, 4):
        np.testing.assert_allclose(_np(f(xs[n])), np.cumsum(_np(xs[n])) * 2, rtol=1e-5,
                                   atol=1e-6)
    st = f.stats()
    assert st["num_recompiles"] == 0 and st["cudagraph_captures"] == 4, st
    assert st["cudagraph_replays"] == 1
    assert [w.split(" (at most")[0] for w in st["cudagraph_invalidations"]] == \
        ["evicted the graph for sizes (4,)", "evicted the graph for sizes (3,)"]


def test_kernels_reading_scalars_from_memory_compile_ahead_of_time():
    pytest.importorskip("triton")
    from compiler.codegen.triton_launch import GENERATED
    from triton_kernels.aot import check_specs
    f = fw.compile(lambda a, s: (a * s + 1.5).tanh(), mode="reduce-overhead")
    f(fw.randn(7, device="cuda"), 0.3)
    specs = [k.aot_spec(in_memory=ps) for k in list(GENERATED.values())
             for ps in k._pointer_fns]
    assert specs and all("scalars in memory" in s.label for s in specs)
    reports = check_specs(specs, capabilities=(80, 90))
    assert all(r.ok for r in reports), [r.violations for r in reports if not r.ok]


def test_input_mutation_is_written_back():
    f = fw.compile(lambda a, b: a.add_(b).sum(), mode="reduce-overhead")
    a, b = fw.zeros(4, device="cuda"), fw.ones(4, device="cuda")
    for k in range(1, 4):
        assert f(a, b).item() == 4.0 * k
        assert a.tolist() == [float(k)] * 4
    assert f.stats()["cudagraph_replays"] == 2


def test_what_cannot_be_captured_runs_without_a_graph():
    f = fw.compile(lambda a: nn.functional.dropout(a, 0.5, training=True) * 2,
                   mode="reduce-overhead")
    x = fw.ones(64, device="cuda")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [_np(f(x)) for _ in range(3)]
    st = f.stats()
    assert st["cudagraph_captures"] == 0 and st["cudagraph_replays"] == 0
    assert "random numbers" in st["cudagraph_skips"][0]
    assert sum("without a CUDA graph" in str(w.message) for w in caught) == 1
    assert not np.array_equal(outs[1], outs[2])  # fresh random numbers on every call
    assert set(np.unique(outs[2])) <= {0.0, 4.0}


def test_reduce_overhead_on_cpu_is_the_default_mode():
    f = fw.compile(lambda a: (a * 2).relu(), mode="reduce-overhead")
    x = fw.randn(4, 4)
    for _ in range(8):
        np.testing.assert_allclose(f(x).numpy(), np.maximum(x.numpy() * 2, 0))
    st = f.stats()
    assert st["decisions"] and st["decisions"][-1]["decision"] in ("compiled", "eager")
    assert st["cudagraph_captures"] == 0


def test_train_bench_times_reduce_overhead_on_cuda(monkeypatch):
    from framework.bench import train as bench
    tiny = {"mlp": (lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
                    ((6, 8), "float"), ((6,), 4))}
    monkeypatch.setattr(bench, "_models", lambda: tiny)
    r = bench.run("mlp", "adamw", min_time=0.0, repeat=1, device="cuda",
                  mode="reduce-overhead")
    assert r["device"] == "cuda" and r["graph_replays"] > 0 and not r["graph_skips"], r
    assert r["compiled_s"] > 0 and r["peak_compiled_bytes"] > 0


# -- a real GPU ----------------------------------------------------------------------------
@pytest.mark.gpu
def test_real_gpu_capture_replay_dump_and_training(tmp_path):
    assert not SIM
    x = fw.randn(256, 512, device="cuda")
    g, y = _captured(lambda a: fw.softmax(a, -1).sum(-1), x)
    count = rt.allocation_count()
    g.replay()
    fw.cuda.synchronize()
    assert rt.allocation_count() == count
    np.testing.assert_allclose(_np(y), np.ones(256), rtol=1e-5)
    g.debug_dump(str(tmp_path / "g.dot"))
    assert "digraph" in (tmp_path / "g.dot").read_text()
    test_compiled_training_step_replays_and_matches_eager(optim.AdamW, dict(lr=1e-2), False)
    test_graphed_module_forward_and_backward_match_eager()
