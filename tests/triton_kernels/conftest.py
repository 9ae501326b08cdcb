"""Run the hand-written Triton kernels under the interpreter over host (NumPy) memory.

``TRITON_INTERPRET=1`` must be set before *triton itself* is imported: Triton's own
``@jit`` helpers (``tl.max``, ``tl.sum`` ...) are decorated at import time. If another
conftest or test module imported triton earlier without it, the interpreter tests here are
skipped with that reason (the AOT tests still run).
"""

import os
import sys

import pytest

_LATE = "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"
os.environ["TRITON_INTERPRET"] = "1"
sys.path.insert(0, os.path.dirname(__file__))  # for _tk_utils, whatever pytest's import mode


def pytest_configure(config):
    """Register the markers used by these tests."""
    config.addinivalue_line("markers", "aot: compiles kernels ahead of time for sm_80/sm_90")


def pytest_collection_modifyitems(config, items):
    """Skip interpreter tests when triton was imported before the interpreter was enabled."""
    if not _LATE:
        return
    reason = "triton was imported before TRITON_INTERPRET=1; set it in tests/conftest.py"
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here) and "aot" not in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
