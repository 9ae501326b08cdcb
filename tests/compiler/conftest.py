"""Compiler tests verify the graph after every pass of every compiled function, and let
capture errors surface instead of falling back to eager."""

import pytest


@pytest.fixture(autouse=True)
def _verify_every_pass(monkeypatch):
    monkeypatch.setenv("FW_VERIFY_PASSES", "1")
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")
