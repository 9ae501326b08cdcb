"""fw.profiler: per-op and compiled-call events, totals against measured wall time, the
table and the Chrome trace."""

import json
import time

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.ops import registry
from framework.ops.registry import COMPOSITE, UNARY, Op, apply
import framework.profiler as profiler_module
from framework.profiler import profile, record_function

SLEEP_S = 0.004


def _op(name, group, impl=None, decomp=None):
    """An op that is not registered globally (so tests leave the registry alone)."""
    op = Op(name, group, lambda x: (x.shape, x.dtype), None, 1, False, decomp, None, False)
    if impl is not None:
        op.impls["cpu"] = impl
    return op


def _sleepy(x):
    time.sleep(SLEEP_S)
    return x.copy()


SLEEP = _op("test_sleep", UNARY, impl=_sleepy)
TWICE = _op("test_twice", COMPOSITE, decomp=lambda x: apply(SLEEP, apply(SLEEP, x)))


def test_op_totals_add_up_to_the_measured_wall_time():
    x = fw.ones(3)
    with profile() as prof:
        t0 = time.perf_counter()
        for _ in range(20):
            apply(SLEEP, x)
        wall = time.perf_counter() - t0
    (row,) = [r for r in prof.key_averages() if r.name == "test_sleep"]
    assert row.count == 20 and row.kind == "op"
    assert row.self == pytest.approx(row.total)
    assert row.avg >= SLEEP_S
    # every sleep is inside an event, and the events lie inside the measured window,
    # which lies inside the profile's own (bounds that hold however loaded the host is)
    assert 20 * SLEEP_S <= prof.total_time <= wall <= prof.wall_time, (prof.total_time, wall)


def test_nested_events_split_self_and_total_time():
    x = fw.ones(3)
    with profile() as prof:
        for _ in range(5):
            apply(TWICE, x)
    rows = {r.name: r for r in prof.key_averages()}
    outer, inner = rows["test_twice"], rows["test_sleep"]
    assert outer.count == 5 and inner.count == 10
    # the composite's time is its two nested sleeps plus a little of its own
    assert outer.total >= inner.total > 0.5 * outer.total
    assert outer.self == pytest.approx(outer.total - inner.total, abs=1e-6)
    # top-level time is the sum of every self time
    assert prof.total_time == pytest.approx(sum(r.self for r in prof.key_averages()), rel=1e-9)
    depths = {e.name: e.depth for e in prof.events}
    assert depths == {"test_twice": 0, "test_sleep": 1}


@pytest.fixture
def thread_cpu_clock(monkeypatch):
    """Time the profiler (and the test) by this thread's CPU time, so that being
    descheduled on a loaded machine counts neither as op time nor as glue."""
    monkeypatch.setattr(profiler_module, "_clock", time.thread_time_ns)
    return time.thread_time


def test_eager_training_ops_cover_the_wall_time(thread_cpu_clock):
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 256))
    x = fw.randn(256, 256)
    model(x).sum().backward()  # warm-up
    with profile() as prof:
        t0 = thread_cpu_clock()
        for _ in range(3):
            loss = model(x).square().mean()
            loss.backward()
        wall = thread_cpu_clock() - t0
    names = {r.name for r in prof.key_averages()}
    assert {"matmul", "mean", "square"} & names and "matmul" in names
    # Ops dominate this step; Python glue between them is a few percent at most.
    assert 0.9 * wall <= prof.total_time <= wall * 1.0001, (prof.total_time, wall)


def test_compiled_calls_are_kernel_events(thread_cpu_clock):
    fw.manual_seed(0)
    m = nn.Linear(64, 64)

    def f(x):
        return m(x).relu().sum(-1)

    cf = fw.compile(f, mode="always")
    x = fw.randn(128, 64)
    with fw.no_grad():
        cf(x)  # capture outside the profile
        with profile() as prof:
            t0 = thread_cpu_clock()
            for _ in range(4):
                out = cf(x)
            wall = thread_cpu_clock() - t0
    rows = {(r.name, r.kind): r for r in prof.key_averages()}
    kernel = rows[("compiled code(f)", "kernel")]
    outer = rows[("fw.compile(f)", "compiled")]
    assert kernel.count == 4 and outer.count == 4
    assert not [r for r in rows.values() if r.kind == "op"]  # no eager dispatch at all
    assert kernel.total <= outer.total
    assert abs(prof.total_time - wall) <= 0.1 * wall
    # inside the generated code: each NumPy call is a nested kernel event
    inner = [e for e in prof.events if e.depth == 2]
    assert {e.name for e in inner} >= {"np.matmul"} and all(e.kind == "kernel" for e in inner)
    assert rows[("np.matmul", "kernel")].count == 4
    assert sum(e.duration for e in inner) <= sum(
        e.duration for e in prof.events if e.depth == 1)
    np.testing.assert_allclose(out.numpy(), m(x).relu().sum(-1).detach().numpy(), rtol=1e-5)
    # the generated code's globals are restored: no timing wrappers outside the profile
    assert cf.graph(x) is not None and "np.matmul" in cf.code(x)
    with fw.no_grad():
        with profile(compiled_detail=False) as plain:
            cf(x)
    assert {e.depth for e in plain.events} == {0, 1}


def test_table_sorts_and_reports_coverage():
    x = fw.ones(3)
    with profile() as prof:
        apply(TWICE, x)
        for _ in range(3):
            x = x + 1
    text = prof.table(sort_by="total")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "calls"]
    body = [ln.split()[0] for ln in lines[2:-2]]
    assert body[0] == "test_twice" and body[1] == "test_sleep"
    by_count = prof.table(sort_by="count").splitlines()[2].split()
    assert by_count[0] == "add" and by_count[2] == "3"
    assert "wall time" in lines[-1]
    assert len(prof.table(row_limit=1).splitlines()) == 5
    # PyTorch's spelling
    assert prof.key_averages().table(sort_by="cpu_time_total") == prof.table(sort_by="total")
    with pytest.raises(fw.ArgumentError, match="sort_by"):
        prof.table(sort_by="bogus")


def test_chrome_trace_is_valid_json(tmp_path):
    x = fw.ones(3)
    with profile(record_shapes=True) as prof:
        with record_function("my region"):
            apply(TWICE, x)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in spans] == ["my region", "test_twice", "test_sleep",
                                         "test_sleep"]
    assert all(e["dur"] > 0 and e["ts"] >= 0 for e in spans)
    region, outer = spans[0], spans[1]
    assert region["ts"] <= outer["ts"] and outer["ts"] + outer["dur"] <= \
        region["ts"] + region["dur"] + 1e-3
    assert spans[1]["args"]["shapes"] == [[3]]


def test_hook_is_removed_after_the_block_even_on_error():
    x, y = fw.ones(2), fw.ones(3)
    with profile() as prof:
        with pytest.raises(fw.ShapeError):
            x + y                      # rejected by the meta rule: not an event
        x * x                          # later ops are not nested under the failed one
    assert [(e.name, e.depth) for e in prof.events] == [("mul", 0)]
    boom = _op("test_boom", UNARY, impl=lambda a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        with profile() as prof:
            apply(boom, x)
    assert registry._profile_hook is None
    assert [e.name for e in prof.events] == ["test_boom"] and prof.events[0].end >= 0
    n = len(prof.events)
    x + x
    assert len(prof.events) == n


def test_one_profile_at_a_time_and_disabled_profile():
    with profile():
        with pytest.raises(fw.ArgumentError, match="already open"):
            with profile():
                pass
    with profile(enabled=False) as prof:
        fw.ones(2) + 1
    assert prof.events == []


def test_cuda_activity_without_a_device_is_a_clear_error():
    if fw.cuda.is_available():
        pytest.skip("a CUDA device (or the simulated one) is available")
    with pytest.raises(fw.ArgumentError, match="CUDA"):
        with profile(activities=[fw.profiler.ProfilerActivity.CUDA]):
            pass


_CUDA_SCRIPT = """
import json, sys
import framework as fw
assert fw.cuda.is_available() and fw.cuda.is_simulated()
x = fw.ones(16, 16).to("cuda")
cf = fw.compile(lambda t: (t * 2 + 1).sum(-1).relu(), mode="always")
cf(x)
with fw.profiler.profile() as prof:
    y = (x * 2).sum()
    z = cf(x)
rows = {r.name: r for r in prof.key_averages()}
assert rows["mul"].cuda_total > 0 and rows["sum"].cuda_total > 0, rows
# the compiled call launches generated Triton kernels, each timed with CUDA events
launches = [e for e in prof.events if e.name.startswith("triton ") and e.depth == 2]
assert launches and all(e.cuda_ms > 0 for e in launches), prof.table()
assert {e.kind for e in launches} == {"kernel"}
assert "cuda ms" in prof.table()
prof.export_chrome_trace(sys.argv[1])
cats = {e.get("cat") for e in json.load(open(sys.argv[1]))["traceEvents"]}
assert "cuda op" in cats and "op" in cats, cats
print("ok")
"""


def test_cuda_events_on_the_simulated_device(tmp_path):
    """Device times come from CUDA events; the simulated device (host clock) runs them."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "FW_TRITON_INTERPRET": "1", "TRITON_INTERPRET": "1",
           "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _CUDA_SCRIPT, str(tmp_path / "t.json")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_record_function_as_decorator_and_outside_a_profile():
    @record_function("load batch")
    def load():
        return fw.ones(4) * 2

    assert load().sum().item() == 8.0             # no profile open: nothing recorded
    with profile() as prof:
        load()
        load()
    rows = {(r.name, r.kind): r for r in prof.key_averages()}
    assert rows[("load batch", "region")].count == 2
    assert [e.depth for e in prof.events if e.name == "mul"] == [1, 1]
