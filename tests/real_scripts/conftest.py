"""The ports pick their device as the scripts do (``"cuda" if torch.cuda.is_available()``).
They are CPU tests: when ``tests/gpu`` is collected in the same session its conftest makes
the simulated device available, and a script would then train in Triton's interpreter
(minutes per test). The GPU paths have their own tests under ``tests/gpu``."""

import pytest


@pytest.fixture(autouse=True)
def _no_accelerator(monkeypatch):
    import framework.cuda
    monkeypatch.setattr(framework.cuda, "is_available", lambda: False)
