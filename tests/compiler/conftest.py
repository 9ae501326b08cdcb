"""Compiler tests verify the graph after every pass of every compiled function."""

import pytest


@pytest.fixture(autouse=True)
def _verify_every_pass(monkeypatch):
    monkeypatch.setenv("FW_VERIFY_PASSES", "1")
