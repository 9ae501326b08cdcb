"""The ports pick their device as the scripts do (``"cuda" if torch.cuda.is_available()``).
They are CPU tests: when ``tests/gpu`` is collected in the same session its conftest makes
the simulated device available, and a script would then train in Triton's interpreter
(minutes per test). The GPU paths have their own tests under ``tests/gpu``.

Scripts also set process-wide flags (``torch.backends.cuda.matmul.allow_tf32 = True``):
they are put back after each test so that other tests see the defaults."""

import pytest


@pytest.fixture(autouse=True)
def _no_accelerator(monkeypatch):
    import importlib

    import framework.cuda
    monkeypatch.setattr(framework.cuda, "is_available", lambda: False)
    autocast_module = importlib.import_module("framework.amp.autocast")
    monkeypatch.setattr(autocast_module, "_cuda_ok", False)  # its cached answer


@pytest.fixture(autouse=True)
def _restore_backend_flags():
    import framework as fw
    precision = fw.get_float32_matmul_precision()
    cudnn_tf32 = fw.backends.cudnn.allow_tf32
    yield
    fw.set_float32_matmul_precision(precision)
    fw.backends.cudnn.allow_tf32 = cudnn_tf32
