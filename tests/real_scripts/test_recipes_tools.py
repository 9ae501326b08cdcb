"""pytorch/tutorials ``recipes_source/recipes``: ``timer_quick_start.py``, ``benchmark.py``,
``profiler_recipe.py`` and ``tensorboard_with_pytorch.py`` on fw (imports renamed).

``min_run_time`` values and sizes are small so the file runs in seconds; torchvision's
resnet18 is a small conv net of the same kinds of layers; files go to ``tmp_path``.
"""

import json
import pickle
import timeit

import numpy as np

import framework as torch
import framework.nn as nn
import framework.utils.benchmark as benchmark
from framework.profiler import ProfilerActivity, profile, record_function
from framework.utils.benchmark import Measurement, Timer


# -- timer_quick_start.py -----------------------------------------------------------------
def test_timer_quick_start():
    timer = Timer(
        stmt="x * y",
        setup="""
            x = torch.ones((128,))
            y = torch.ones((128,))
        """,
        num_threads=1,
    )
    m: Measurement = timer.blocked_autorange(min_run_time=0.05)
    text = str(m)
    assert "x * y" in text and "setup:" in text and "x = torch.ones((128,))" in text
    assert 0 < m.median < 1e-2 and m.number_per_run >= 1 and len(m.times) >= 1
    m2 = pickle.loads(pickle.dumps(m))  # Measurements are pickleable
    assert m2.median == m.median


# -- benchmark.py -------------------------------------------------------------------------
def batched_dot_mul_sum(a, b):
    '''Computes batched dot by multiplying and summing'''
    return a.mul(b).sum(-1)


def batched_dot_bmm(a, b):
    '''Computes batched dot by reducing to ``bmm``'''
    a = a.reshape(-1, 1, a.shape[-1])
    b = b.reshape(-1, b.shape[-1], 1)
    return torch.bmm(a, b).flatten(-3)


def test_benchmark_recipe():
    x = torch.randn(100, 64)
    # Ensure that both functions compute the same output
    assert batched_dot_mul_sum(x, x).allclose(batched_dot_bmm(x, x))
    np.testing.assert_allclose(batched_dot_mul_sum(x, x).numpy(),
                               (x.numpy() ** 2).sum(-1), rtol=1e-5)

    t0 = timeit.Timer(stmt='batched_dot_mul_sum(x, x)',
                      setup=f'from {__name__} import batched_dot_mul_sum',
                      globals={'x': x})
    assert t0.timeit(10) > 0

    t0 = benchmark.Timer(
        stmt='batched_dot_mul_sum(x, x)',
        setup=f'from {__name__} import batched_dot_mul_sum',  # recipe: from __main__
        globals={'x': x})
    t1 = benchmark.Timer(
        stmt='batched_dot_bmm(x, x)',
        setup=f'from {__name__} import batched_dot_bmm',
        globals={'x': x})
    m = t0.timeit(10)
    assert "batched_dot_mul_sum(x, x)" in repr(m) and m.number_per_run == 10
    assert t1.timeit(10).mean > 0

    num_threads = torch.get_num_threads()
    t0 = benchmark.Timer(
        stmt='batched_dot_mul_sum(x, x)',
        setup=f'from {__name__} import batched_dot_mul_sum',
        globals={'x': x},
        num_threads=num_threads,
        label='Multithreaded batch dot',
        sub_label='Implemented using mul and sum')
    assert "Multithreaded batch dot: Implemented using mul and sum" in repr(t0.timeit(10))

    m0 = t0.blocked_autorange(min_run_time=0.02)
    assert m0.mean > 0 and m0.median > 0

    results = []
    sizes = [1, 64]
    for b, n in [(b, n) for b in sizes for n in sizes]:
        label = 'Batched dot'
        sub_label = f'[{b}, {n}]'
        x = torch.ones((b, n))
        for num_threads in [1, 2]:
            results.append(benchmark.Timer(
                stmt='batched_dot_mul_sum(x, x)',
                setup=f'from {__name__} import batched_dot_mul_sum',
                globals={'x': x},
                num_threads=num_threads,
                label=label,
                sub_label=sub_label,
                description='mul/sum',
            ).blocked_autorange(min_run_time=0.01))
            results.append(benchmark.Timer(
                stmt='batched_dot_bmm(x, x)',
                setup=f'from {__name__} import batched_dot_bmm',
                globals={'x': x},
                num_threads=num_threads,
                label=label,
                sub_label=sub_label,
                description='bmm',
            ).blocked_autorange(min_run_time=0.01))
    compare = benchmark.Compare(results)
    compare.trim_significant_figures()
    compare.colorize()
    table = str(compare)
    assert "Batched dot" in table and "mul/sum" in table and "bmm" in table
    assert "[64, 64]" in table and "2 threads" in table

    ab_test_results = []
    for env in ('environment A: mul/sum', 'environment B: bmm'):
        for b, n in ((1, 1), (10, 1)):
            x = torch.ones((b, n))
            dot_fn = (batched_dot_mul_sum if env == 'environment A: mul/sum'
                      else batched_dot_bmm)
            m = benchmark.Timer(
                stmt='batched_dot(x, x)',
                globals={'x': x, 'batched_dot': dot_fn},
                num_threads=1,
                label='Batched dot',
                description=f'[{b}, {n}]',
                env=env,
            ).blocked_autorange(min_run_time=0.01)
            ab_test_results.append(pickle.dumps(m))
    ab_results = [pickle.loads(i) for i in ab_test_results]
    table = str(benchmark.Compare(ab_results))
    assert "(environment A: mul/sum)" in table and "(environment B: bmm)" in table
    round_tripped_results = pickle.loads(pickle.dumps(results))
    assert (str(benchmark.Compare(results)) == str(benchmark.Compare(round_tripped_results)))


# -- profiler_recipe.py -------------------------------------------------------------------
def _small_resnet():
    """Stands in for torchvision's resnet18: conv / batch norm / relu / pool / linear."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_profiler_recipe(tmp_path):
    model = _small_resnet()
    inputs = torch.randn(5, 3, 16, 16)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("model_inference"):
            model(inputs)
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
    lines = table.splitlines()
    assert "model_inference" in table and len(lines) <= 10 + 5
    rows = {r.name: r for r in prof.key_averages()}
    assert rows["model_inference"].count == 1
    top = prof.key_averages()
    conv = [r for r in top if "conv" in r.name]
    assert conv and conv[0].count == 2
    # the region covers every op run inside it
    assert rows["model_inference"].cpu_time_total >= max(
        r.cpu_time_total for r in top if r.name != "model_inference")
    prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)

    # "Profiling results can be outputted as a .json trace file"
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(inputs)
    prof.export_chrome_trace(str(tmp_path / "trace.json"))
    trace = json.loads((tmp_path / "trace.json").read_text())
    names = {e["name"] for e in trace["traceEvents"] if e.get("ph") == "X"}
    assert any("conv" in n for n in names)


# -- tensorboard_with_pytorch.py ----------------------------------------------------------
def test_tensorboard_with_pytorch(tmp_path):
    from framework.utils.tensorboard import SummaryWriter
    from framework.utils.tensorboard.reader import read_events
    torch.manual_seed(0)
    writer = SummaryWriter(log_dir=str(tmp_path / "runs"))  # recipe: ./runs/ by default
    x = torch.arange(-5, 5, 0.1).view(-1, 1)
    y = -5 * x + 0.1 * torch.randn(x.size())
    model = torch.nn.Linear(1, 1)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    logged = []

    def train_model(iter):
        for epoch in range(iter):
            y1 = model(x)
            loss = criterion(y1, y)
            writer.add_scalar("Loss/train", loss, epoch)
            logged.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    train_model(10)
    writer.flush()
    writer.close()
    assert logged[-1] < 0.1 * logged[0]
    events = [e for e in read_events(str(tmp_path / "runs")) if e.HasField("summary")]
    assert [e.summary.value[0].tag for e in events] == ["Loss/train"] * 10
    assert [e.step for e in events] == list(range(10))
    np.testing.assert_allclose([e.summary.value[0].simple_value for e in events], logged,
                               rtol=1e-6)
