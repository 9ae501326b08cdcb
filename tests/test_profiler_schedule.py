"""fw.profiler.schedule / prof.step() / on_trace_ready / tensorboard_trace_handler, against
PyTorch's documented semantics."""

import json
import os

import pytest

import framework as fw
from framework.profiler import ProfilerAction, profile, schedule, tensorboard_trace_handler

N, W, R, S = (ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD,
              ProfilerAction.RECORD_AND_SAVE)


def test_schedule_actions_match_pytorch():
    fn = schedule(wait=1, warmup=1, active=2, repeat=1)
    assert [fn(i) for i in range(10)] == [N, W, R, S, N, N, N, N, N, N]
    # the recipe's example: skip 10, then two cycles of wait 5, warmup 1, active 3
    fn = schedule(skip_first=10, wait=5, warmup=1, active=3, repeat=2)
    expect = [N] * 15 + [W, R, R, S] + [N] * 5 + [W, R, R, S] + [N] * 6
    assert [fn(i) for i in range(len(expect))] == expect
    fn = schedule(wait=0, warmup=1, active=1)  # repeat=0: cycles forever
    assert [fn(i) for i in range(6)] == [W, S] * 3


def test_schedule_rejects_bad_arguments():
    with pytest.raises(fw.ArgumentError, match="active"):
        schedule(wait=1, warmup=1, active=0)
    with pytest.raises(fw.ArgumentError, match="wait"):
        schedule(wait=-1, warmup=1, active=1)


def _run(steps, **kw):
    calls = []

    def ready(p):
        names = sorted({e.name for e in p.events if e.name.startswith("ProfilerStep#")})
        muls = sum(e.name == "mul" for e in p.events)
        calls.append((p.step_num, names, muls))

    x = fw.ones(3)
    with profile(on_trace_ready=ready, **kw) as p:
        for _ in range(steps):
            x * 2
            p.step()
    return calls, p


def test_on_trace_ready_at_the_end_of_each_active_window():
    calls, p = _run(10, schedule=schedule(wait=1, warmup=1, active=2, repeat=1))
    # steps 2 and 3 recorded (warm-up step 1 dropped); handed over when step 4 begins
    assert calls == [(4, ["ProfilerStep#2", "ProfilerStep#3"], 2)]
    assert p.step_num == 10
    calls, _ = _run(9, schedule=schedule(wait=1, warmup=1, active=1, repeat=2))
    assert [c[:2] for c in calls] == [(3, ["ProfilerStep#2"]), (6, ["ProfilerStep#5"])]


def test_trace_ready_when_the_block_closes_mid_window_and_without_schedule():
    calls, _ = _run(3, schedule=schedule(wait=0, warmup=1, active=5))
    # as in PyTorch, the step opened by the last p.step() is in the trace (empty)
    assert calls == [(3, ["ProfilerStep#1", "ProfilerStep#2", "ProfilerStep#3"], 2)]
    calls, _ = _run(3)  # no schedule: one trace of everything, no step regions
    assert calls == [(3, [], 3)]


def test_nothing_recorded_and_no_hook_while_waiting():
    from framework.ops import registry
    with profile(schedule=schedule(wait=2, warmup=1, active=1)) as p:
        fw.ones(3) * 2
        assert registry._profile_hook is None  # eager ops pay nothing while waiting
        p.step()
    assert p.events == []


def test_tensorboard_trace_handler_writes_one_trace_per_cycle(tmp_path):
    handler = tensorboard_trace_handler(str(tmp_path / "log"), worker_name="w0")
    x = fw.ones(3)
    with profile(schedule=schedule(wait=1, warmup=1, active=2), on_trace_ready=handler) as p:
        for _ in range(8):
            x + 1
            p.step()
    files = sorted(os.listdir(tmp_path / "log"))
    assert len(files) == 2 and all(f.startswith("w0.") and f.endswith(".pt.trace.json")
                                   for f in files)
    for f in files:
        events = json.load(open(tmp_path / "log" / f))["traceEvents"]
        assert sum(e["name"] == "add" for e in events) == 2
