"""Python's and NumPy's own random generators during a capture.

A value drawn from ``random`` or ``np.random`` while tracing (``random.randint`` choosing a
depth in ``forward``) is a plain Python number: the trace would bake the one draw into the
graph and every compiled call would repeat it, silently. So the capture compares the two
global generators' states before and after running the function; if either moved, it puts
the state back (so the eager run that follows draws the same numbers an uncompiled program
would) and breaks the graph.
"""

from __future__ import annotations

import random

import numpy as np

from framework.errors import GraphBreak


def snapshot() -> tuple:
    """The states of Python's ``random`` and NumPy's legacy ``np.random`` generators."""
    return random.getstate(), np.random.get_state(legacy=False)


def _np_equal(a: dict, b: dict) -> bool:
    sa, sb = a["state"], b["state"]
    return (a["bit_generator"] == b["bit_generator"] and a["has_gauss"] == b["has_gauss"]
            and a["gauss"] == b["gauss"] and sa["pos"] == sb["pos"]
            and np.array_equal(sa["key"], sb["key"]))


def restore(state: tuple) -> None:
    """Put both generators back to a :func:`snapshot`."""
    random.setstate(state[0])
    np.random.set_state(state[1])


def check_unchanged(before: tuple, fn_name: str) -> None:
    """Raise a :class:`GraphBreak` (after restoring the states) if the traced function drew
    from Python's or NumPy's global random generator."""
    py_before, np_before = before
    py_moved = random.getstate() != py_before
    np_moved = not _np_equal(np.random.get_state(legacy=False), np_before)
    if not (py_moved or np_moved):
        return
    random.setstate(py_before)
    np.random.set_state(np_before)
    which = "Python's `random` module" if py_moved else "NumPy's global `np.random`"
    raise GraphBreak(
        f"graph break: {fn_name} drew from {which} while being captured (random.randint, "
        "random.random, np.random.rand, ...); the compiled graph would repeat that one draw "
        "on every call. Draw outside the compiled function and pass the value in (an int "
        "argument is guarded: one graph per value), or sample tensors with fw.rand / "
        "fw.randint, which a compiled graph draws afresh on each call")
