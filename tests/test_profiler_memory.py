"""fw.profiler: profile_memory (CPU Mem / Self CPU Mem), record_shapes with
group_by_input_shape, with_stack with group_by_stack_n and export_stacks."""

import gc

import pytest

import framework as fw
from framework.ops import registry
from framework.ops.registry import COMPOSITE, Op, apply
from framework.profiler import profile


def _rows(prof, **kw):
    return {r.name: r for r in prof.key_averages(**kw)}


def test_memory_of_an_op_is_the_bytes_of_its_outputs():
    x = fw.ones(100, 10)                     # float32: 4000 bytes
    with profile(profile_memory=True) as prof:
        y = x * 2                            # a new 4000-byte buffer
        z = x.double() + 1                   # cast 8000 bytes, add 8000 bytes
        v = y.reshape(1000)                  # a view allocates nothing
    rows = _rows(prof)
    assert rows["mul"].self_cpu_memory_usage == 4000
    assert rows["mul"].cpu_memory_usage == 4000
    assert rows["add"].self_cpu_memory_usage == 8000
    assert rows["reshape"].self_cpu_memory_usage == 0
    del y, z, v
    table = prof.key_averages().table(sort_by="self_cpu_memory_usage")
    assert "CPU Mem" in table and "Self CPU Mem" in table and "3.91 Kb" in table


def test_freed_buffers_count_negative():
    x = fw.ones(256)                         # 1 Kb
    with profile(profile_memory=True) as prof:
        y = x + 1
        del y                                # freed outside any op
        gc.collect()
    rows = _rows(prof)
    assert rows["add"].self_cpu_memory_usage == 1024
    assert rows["[memory]"].self_cpu_memory_usage == -1024


def _mul2(x):
    return apply(registry.OPS["mul"], x, 2.0)


# a composite (no kernel of its own): its decomposition runs two muls
TWICE = Op("test_mem_twice", COMPOSITE, lambda x: (x.shape, x.dtype), None, 1, False,
           lambda x: _mul2(_mul2(x)), None, False)


def test_composite_memory_self_and_total():
    x = fw.ones(8, 16)                       # 512 bytes
    with profile(profile_memory=True) as prof:
        y = apply(TWICE, x)
    rows = _rows(prof)
    # the muls allocate 2 x 512; the composite's output is the second one's buffer
    # (counted once), and the first is freed while the composite is open
    assert rows["mul"].self_cpu_memory_usage == 1024
    assert rows["test_mem_twice"].cpu_memory_usage == 512
    assert rows["test_mem_twice"].self_cpu_memory_usage == -512
    assert y.shape == (8, 16)


def test_memory_off_means_zero_columns_and_no_patch():
    from framework.ops import registry
    init = registry._init
    with profile() as prof:
        fw.ones(4) * 2
        assert registry._init is init
    assert all(r.cpu_memory_usage == 0 for r in prof.key_averages())
    assert "CPU Mem" not in prof.table()


def test_group_by_input_shape_splits_one_op_with_two_shapes():
    a, b = fw.ones(2, 3), fw.ones(4)
    with profile(record_shapes=True) as prof:
        a * 2
        a * 3
        b * 2
    rows = [r for r in prof.key_averages(group_by_input_shape=True) if r.name == "mul"]
    assert sorted((r.input_shapes, r.count) for r in rows) == [
        ("[[2, 3], []]", 2), ("[[4], []]", 1)]
    assert [r.count for r in prof.key_averages() if r.name == "mul"] == [3]
    table = prof.key_averages(group_by_input_shape=True).table(sort_by="count")
    assert "Input Shapes" in table and "[[2, 3], []]" in table
    with pytest.raises(fw.ArgumentError, match="record_shapes"):
        profile().key_averages(group_by_input_shape=True)


def _site_one(x):
    return x * 2


def _site_two(x):
    return x * 3


def test_group_by_stack_splits_call_sites_and_export_stacks(tmp_path):
    x = fw.ones(4)
    with profile(with_stack=True) as prof:
        _site_one(x)
        _site_two(x)
        _site_two(x)
    rows = [r for r in prof.key_averages(group_by_stack_n=1) if r.name == "mul"]
    assert sorted((r.stack[0].split(": ")[-1], r.count) for r in rows) == [
        ("_site_one", 1), ("_site_two", 2)]
    assert "Source Location" in prof.key_averages(group_by_stack_n=2).table()
    path = tmp_path / "stacks.txt"
    prof.export_stacks(str(path), "self_cpu_time_total")
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    mul_events = [e for e in prof.events if e.name == "mul"]
    for line, ev in zip(lines, mul_events):
        frames, value = line.rsplit(" ", 1)
        frames = frames.split(";")
        assert frames[-1] == ev.stack[0] and frames[0] == ev.stack[-1]  # outermost first
        assert "test_profiler_memory.py" in frames[-1]
        assert int(value) == int(ev.self_time / 1e3)
    assert lines[0].split(";")[-1].split(": ")[1].startswith("_site_one")


def test_memory_timeline_is_refused_naming_what_exists_instead():
    with fw.profiler.profile(profile_memory=True) as prof:
        fw.ones(3) + 1
    with pytest.raises(NotImplementedError, match="export_memory_timeline.*CPU Mem"):
        prof.export_memory_timeline("timeline.html")
