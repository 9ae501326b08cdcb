"""fw.distributed (no distributed runtime) and fw._dynamo (the recompile limit)."""

import warnings

import pytest

import framework as fw
from framework.errors import ArgumentError, DistributedError


def test_distributed_says_there_is_no_process_group():
    assert fw.distributed.is_available() is False
    assert fw.distributed.is_initialized() is False
    for fn in (fw.distributed.get_rank, fw.distributed.get_world_size,
               fw.distributed.barrier):
        with pytest.raises(DistributedError, match="has not been initialized"):
            fn()
    with pytest.raises(NotImplementedError, match="no distributed runtime"):
        fw.distributed.init_process_group("nccl")


def test_dynamo_cache_size_limit_is_the_recompile_limit():
    from compiler import runtime
    saved = runtime.RECOMPILE_LIMIT
    try:
        fw._dynamo.config.cache_size_limit = 2
        assert fw._dynamo.config.recompile_limit == 2 == runtime.RECOMPILE_LIMIT

        @fw.compile(dynamic=False)
        def f(x):
            return x * 2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for n in range(1, 6):
                f(fw.ones(n))
        assert any("recompile limit (2)" in str(w.message) for w in caught)
        assert f.stats()["captures"] <= 3
    finally:
        runtime.RECOMPILE_LIMIT = saved


def test_dynamo_config_refuses_what_it_does_not_have():
    with pytest.raises(AttributeError, match="capture_scalar_outputs"):
        fw._dynamo.config.capture_scalar_outputs = True
    with pytest.raises(AttributeError, match="verbose"):
        fw._dynamo.config.verbose
    with pytest.raises(ArgumentError, match="positive int"):
        fw._dynamo.config.cache_size_limit = 0
    assert fw._dynamo.reset is fw.compiler.reset
