"""``fw._logging.set_logs`` (``torch._logging.set_logs``, used by the compiled-optimizer
recipe): the in-process switch for the ``FW_LOGS`` compiler logs; and
``fw._inductor.utils.fresh_inductor_cache`` (used by the regional-compilation recipe)."""

import os

import pytest

import framework as fw


@pytest.fixture(autouse=True)
def _logs_off():
    yield
    fw._logging.set_logs()


def test_recompiles_log_says_which_guard_failed(capsys, monkeypatch):
    monkeypatch.delenv("FW_LOGS", raising=False)
    f = fw.compile(lambda x: x * 2, mode="always")
    f(fw.ones(2))
    f(fw.ones(3))                                   # a recompile, not logged
    assert "recompiling" not in capsys.readouterr().err
    fw._logging.set_logs(recompiles=True)
    f(fw.ones(2, 2))
    err = capsys.readouterr().err
    assert "[fw.compile:recompiles]" in err and "recompiling" in err and "x" in err
    fw._logging.set_logs(graph_code=True)          # replaces the previous settings
    f(fw.ones(2, 2, 2))
    err = capsys.readouterr().err
    assert "recompiling" not in err and "[fw.compile:graph]" in err
    fw._logging.set_logs()
    f(fw.ones(1, 1, 1, 1))
    assert capsys.readouterr().err == ""


def test_unknown_logs_are_refused_when_switched_on():
    fw._logging.set_logs(dynamo=None, aot_graphs=False)      # off: nothing to do
    with pytest.raises(NotImplementedError, match="aot_graphs"):
        fw._logging.set_logs(aot_graphs=True)


def test_fresh_inductor_cache_compiles_into_an_empty_cache(monkeypatch, tmp_path):
    from compiler.codegen import numpy as numpy_codegen
    monkeypatch.setenv("FW_CACHE_DIR", str(tmp_path))
    fw.compile(lambda x: x.sin() + 1, mode="always")(fw.ones(3))
    before = dict(numpy_codegen._MEMORY)
    with fw._inductor.utils.fresh_inductor_cache(dir=str(tmp_path)):
        fresh = os.environ["FW_CACHE_DIR"]
        assert fresh != str(tmp_path) and os.path.isdir(fresh)
        assert not numpy_codegen._MEMORY
        fw.compile(lambda x: x.cos() * 3, mode="always")(fw.ones(3))
        assert numpy_codegen._MEMORY and os.listdir(fresh)
    assert os.environ["FW_CACHE_DIR"] == str(tmp_path) and not os.path.exists(fresh)
    assert numpy_codegen._MEMORY == before
    with pytest.raises(NotImplementedError, match="cache_entries"):
        with fw._inductor.utils.fresh_inductor_cache(cache_entries={}):
            pass
