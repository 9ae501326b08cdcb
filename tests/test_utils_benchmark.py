"""fw.utils.benchmark: Timer strategies under a scripted clock, Measurement statistics and
repr, Compare tables, CUDA synchronization and BLAS threads."""

import math
import re

import numpy as np
import pytest

import framework as fw
from framework.backends import _LOADED
from framework.utils import benchmark
from framework.utils.benchmark import Compare, Measurement, TaskSpec, Timer

STEP = 2.0 ** -20  # durations are multiples of this, so sums of them are exact floats


class Clock:
    """A fake clock: only ``tick()`` (the timed statement) moves it, by scripted steps."""

    def __init__(self, durations):
        self.t = 0.0
        self.durations = list(durations)
        self.calls = 0

    def now(self) -> float:
        return self.t

    def tick(self) -> None:
        self.t += self.durations[self.calls % len(self.durations)]
        self.calls += 1

    def consumed(self, start, stop):
        return [self.durations[i % len(self.durations)] for i in range(start, stop)]


def timer_for(clock, **kw):
    return Timer("clock.tick()", globals={"clock": clock}, timer=clock.now, **kw)


def noisy(n, base=1000, spread=101):
    return [(base + (i * 37) % spread) * STEP for i in range(n)]


def test_timeit_warms_up_then_times_one_block():
    clock = Clock(noisy(7))
    m = timer_for(clock).timeit(number=10)
    assert clock.calls == 12  # warm-up of max(10 // 100, 2) runs, then 10
    assert m.number_per_run == 10 and m.raw_times == [sum(clock.consumed(2, 12))]
    assert m.times == [m.raw_times[0] / 10] and m.median == m.mean == m.times[0]


def test_blocked_autorange_statistics_match_numpy():
    clock = Clock(noisy(200))  # about 1 ms each
    m = timer_for(clock).blocked_autorange(min_run_time=0.05)
    assert m.number_per_run == 1  # 1 ms blocks already dwarf the (zero) timer overhead
    # the block-size estimate ran tick 0; every later tick is one measurement, until
    # the measured time reaches min_run_time
    times = clock.consumed(1, clock.calls)
    assert m.raw_times == times and sum(times) >= 0.05 > sum(times[:-1])
    t = np.asarray(times)
    assert m.median == pytest.approx(np.median(t), rel=1e-12)
    assert m.mean == pytest.approx(t.mean(), rel=1e-12)
    assert m.iqr == pytest.approx(np.quantile(t, 0.75) - np.quantile(t, 0.25), rel=1e-12)
    assert not m.has_warnings and 1 <= m.significant_figures <= 4


def test_block_size_grows_until_the_timer_overhead_is_negligible():
    clock = Clock([1e-7])
    seen = []
    m = timer_for(clock).blocked_autorange(min_run_time=0.2,
                                           callback=lambda n, t: seen.append(n))
    # 1, 10, 100 runs are too short for min_run_time / 1000; 1000 too; 10000 is not
    assert m.number_per_run == 10000 and set(seen) == {10000}
    assert m.median == pytest.approx(1e-7, rel=1e-6)
    assert sum(m.raw_times) >= 0.2


def test_adaptive_autorange_stops_on_confidence_or_max_run_time():
    steady = Clock([5e-3])
    m = timer_for(steady).adaptive_autorange(threshold=0.1, min_run_time=0.01)
    assert len(m.raw_times) == 4  # more than 3 blocks and a tight IQR
    jumpy = Clock([1e-3, 4e-3])
    m = timer_for(jumpy).adaptive_autorange(threshold=0.1, max_run_time=0.05)
    assert sum(m.raw_times) > 0.05 >= sum(m.raw_times[:-1])  # never confident: time cap
    assert m.has_warnings


def test_significant_figures_follow_the_spread():
    spec = TaskSpec("f()", "pass")
    flat = Measurement(1, [1e-3] * 20, spec)
    assert flat.significant_figures == 4  # no spread: capped
    spread = Measurement(1, [1e-3 * (1 + 0.01 * (i % 5)) for i in range(20)], spec)
    t = np.sort(np.asarray(spread.times))
    inner = t[5:15]
    ci = 1.645 * inner.std() / math.sqrt(len(inner))
    assert spread.significant_figures == math.floor(math.log10(np.median(t) / ci)) == 2


def test_measurement_repr_layout():
    per_run = [1.20e-6, 1.21e-6, 1.23e-6, 1.25e-6, 1.22e-6]
    spec = TaskSpec("x + y", "x = 1", label="Add", sub_label="int", description="n=1",
                    num_threads=1)
    m = Measurement(1000, [t * 1000 for t in per_run], spec)
    lines = repr(m).split("\n")
    assert re.fullmatch(r"<framework\.utils\.benchmark\.utils\.common\.Measurement object "
                        r"at 0x[0-9a-f]+>", lines[0])
    assert lines[1:] == ["Add: int", "n=1", "setup: x = 1", "  Median: 1.22 us",
                         "  IQR:    0.02 us (1.21 to 1.23)",
                         "  5 measurements, 1000 runs per measurement, 1 thread"]
    one = Measurement(10, [2.5e-2], TaskSpec("f()", "pass", num_threads=4))
    assert repr(one).split("\n")[1:] == ["f()", "  2.50 ms", "  1 measurement, 10 runs , "
                                         "4 threads"]
    wild = Measurement(1, [1e-3, 1e-3, 3e-3, 3e-3], TaskSpec("f()", "pass"))
    assert wild.has_warnings and repr(wild).endswith(
        "  WARNING: Interquartile range is 100.0% of the median measurement.\n"
        "           This suggests significant environmental influence.")


def test_measurement_fields_and_merge():
    spec = TaskSpec("f()", "pass", label="L", env="A")
    a = Measurement(10, [1e-3, 2e-3], spec)
    b = Measurement(1, [3e-4], spec)
    c = Measurement(1, [5e-4], TaskSpec("g()", "pass", label="L"))
    assert a.stmt == "f()" and a.label == "L" and a.num_threads == 1 and a.title == "L"
    assert a.env == "A" and c.env == "Unspecified env" and c.as_row_name == "g()"
    merged = Measurement.merge([a, b, c])
    assert len(merged) == 2 and merged[0].number_per_run == 1
    assert merged[0].raw_times == pytest.approx([1e-4, 2e-4, 3e-4])
    with pytest.raises(AttributeError):
        a.nonexistent  # noqa: B018


def _m(times, label="add", sub_label=None, description=None, stmt="x + y", threads=1,
       env=None):
    spec = TaskSpec(stmt, "pass", label=label, sub_label=sub_label, description=description,
                    num_threads=threads, env=env)
    return Measurement(1, list(times), spec)


def test_compare_table_layout():
    rows = [("[1, 1]", "eager", 5.9e-6), ("[1, 1]", "compiled", 2.1e-6),
            ("[64, 64]", "eager", 12.3e-6), ("[64, 64]", "compiled", 4.0e-6)]
    results = [_m([t] * 5, sub_label=s, description=d) for s, d, t in rows]
    results.append(_m([33e-6] * 5, sub_label="[64, 64]", description="eager", threads=2))
    text = str(Compare(results))
    assert text == (
        "[--------------- add ---------------]\n"
        "                |  eager  |  compiled\n"
        "1 threads: --------------------------\n"
        "      [1, 1]    |    5.9  |    2.1   \n"
        "      [64, 64]  |   12.3  |    4.0   \n"
        "2 threads: --------------------------\n"
        "      [64, 64]  |   33.0  |          \n"
        "\n"
        "Times are in microseconds (us).\n")


def test_compare_groups_by_label_merges_replicates_and_trims():
    a1 = _m([1.234e-3] * 4, label="A", sub_label="r", description="c")
    a2 = _m([1.234e-3] * 4, label="A", sub_label="r", description="c")  # a replicate
    b = _m([2.5e-6, 2.6e-6, 5e-6, 9e-6], label="B", sub_label="r", description="c")
    cmp = Compare([a1, a2, b])
    tables = cmp._render()
    assert len(tables) == 2 and tables[0].startswith("[") and " A " in tables[0]
    assert "milliseconds (ms)" in tables[0] and "microseconds (us)" in tables[1]
    cmp.trim_significant_figures()
    cmp.highlight_warnings()
    text = str(cmp)
    assert "1.234" in text  # constant times: 4 significant figures kept
    assert "(! " in text and "(! XX%) Measurement has high variance" in text
    cmp.colorize()
    assert "\033[92m" in str(cmp)  # the best cell of a column is green
    with pytest.raises(ValueError, match="Measurement"):
        Compare([1.0])


def test_default_timer_synchronizes_cuda_once_it_is_in_use(monkeypatch):
    calls = []
    monkeypatch.setattr(fw.cuda, "synchronize", lambda device=None: calls.append(1))
    monkeypatch.delitem(_LOADED, "cuda", raising=False)  # another test may have loaded it
    benchmark.timer()
    assert calls == []  # the CUDA backend is not loaded: nothing to wait for
    monkeypatch.setitem(_LOADED, "cuda", object())
    benchmark.timer()
    assert calls == [1]
    Timer("pass").timeit(number=5)  # warm-up and measured block: two timer calls each
    assert len(calls) == 5


def test_num_threads_is_set_while_measuring_and_restored():
    before = fw.get_num_threads()
    seen = []
    t = Timer("seen.append(fw.get_num_threads())", globals={"seen": seen}, num_threads=2)
    m = t.timeit(number=3)
    assert set(seen) == {2} and fw.get_num_threads() == before
    assert repr(m).endswith("1 measurement, 3 runs , 2 threads")


def test_real_statement_and_errors():
    x = fw.ones(8)
    m = Timer("x + 1", globals={"x": x}, label="add").blocked_autorange(min_run_time=0.01)
    assert m.median > 0 and m.number_per_run >= 1 and m.label == "add"
    with pytest.raises(ValueError, match="only a `str` stmt"):
        Timer(lambda: None)
    with pytest.raises(NotImplementedError, match="blocked_autorange"):
        Timer().repeat()
    with pytest.raises(NotImplementedError, match="blocked_autorange"):
        Timer().autorange()
    with pytest.raises(NotImplementedError, match="C\\+\\+"):
        Timer(language="cpp")
    with pytest.raises(ValueError, match="C\\+\\+ only"):
        Timer(global_setup="#include <x>")
    with pytest.raises(ValueError, match="positive"):
        Timer(num_threads=0)
    with pytest.raises(NotImplementedError, match="Callgrind"):
        Timer().collect_callgrind()


def test_timer_populates_torch_like_pytorch():
    # PyTorch's Timer adds ``torch`` to the globals: stmt strings written for PyTorch run
    t = Timer("torch.ones(3) * 2", setup="x = torch.zeros(1)")
    assert t.timeit(2).mean > 0
    assert t._globals["torch"] is fw
