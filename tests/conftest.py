"""Shared test configuration: markers, GPU detection, seeded RNG per test."""

import os

import numpy as np
import pytest

os.environ.setdefault("FW_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".fw_cache"))


def _has_gpu() -> bool:
    try:
        from cuda.bindings import driver  # noqa: F401
    except ImportError:
        return False
    try:
        err, = driver.cuInit(0)[:1]
        if int(err) != 0:
            return False
        err, count = driver.cuDeviceGetCount()
        return int(err) == 0 and count > 0
    except Exception:
        return False


HAS_GPU = _has_gpu()
if not HAS_GPU:
    # Triton's interpreter must be chosen before triton itself is imported (its own
    # helpers are decorated at import), so decide here, before any test module loads.
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a real NVIDIA GPU (none found)")
    for item in items:
        if item.get_closest_marker("gpu") is not None and not HAS_GPU:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    import framework as fw
    fw.manual_seed(0)
    np.random.seed(0)
    yield
