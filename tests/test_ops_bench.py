"""Smoke test of ``python -m framework.bench ops`` (tiny sizes: it must run and report,
not be fast) and of the subcommand dispatcher."""

import json

from framework.bench import __main__ as bench_main
from framework.bench import ops as bench_ops
from framework.bench.report import Report, Row


def test_ops_benchmark_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "ops.json"
    argv = ["--repeat", "1", "--min-time", "0.0005", "--small", "8", "--large", "256",
            "--json", str(out)]
    assert bench_ops.main(argv) == 0
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["rows"]]
    assert len(names) == 12 and any("requires_grad" in n for n in names)
    assert all(r["seconds"] > 0 and r["ref_seconds"] > 0 for r in data["rows"])
    assert data["machine"]["numpy"]
    assert bench_ops.main(argv[:-2] + ["--compare", str(out), "--clock", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "vs previous" in text and "matmul" in text


def test_dispatcher_usage_and_unknown_subcommand(capsys):
    assert bench_main.main([]) == 2
    assert "ops" in capsys.readouterr().out
    assert bench_main.main(["nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_report_ratio_and_targets():
    r = Report("t")
    ok = r.add(Row("a", 2e-6, 1e-6, target=3))
    miss = r.add(Row("b", 5e-6, 1e-6, target=3))
    assert ok.ratio == 2 and ok.ok and not miss.ok
    assert "MISS" in r.render() and "2.00x" in r.render()


def test_func_benchmark_runs(tmp_path):
    from framework.bench import func as bench_func
    out = tmp_path / "func.json"
    assert bench_func.main(["--batch", "3", "--min-time", "0.0005", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"].split(",")[0] for r in rows] == ["per-sample grads",
                                                       "jacrev of a 64 -> 64 map"]
    assert all(r["seconds"] > 0 and r["ref_seconds"] > 0 for r in rows)
