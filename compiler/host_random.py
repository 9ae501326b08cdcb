"""Python's and NumPy's own random generators during a capture.

A value drawn from ``random`` or ``np.random`` while tracing (``random.randint`` choosing a
depth in ``forward``) is a plain Python number: the trace would bake the one draw into the
graph and every compiled call would repeat it, silently. So the capture compares the two
global generators' states before and after running the function; if either moved, it puts
the state back (so the eager run that follows draws the same numbers an uncompiled program
would) and breaks the graph.
"""

from __future__ import annotations

import contextlib
import functools
import random

import numpy as np

from framework.errors import GraphBreak

# the module-level draws a traced function is likely to call (``random.random()``,
# ``np.random.rand(...)``); wrapped while tracing to find the line for the message
_PY_DRAWS = ("random", "randint", "randrange", "uniform", "choice", "choices", "shuffle",
             "sample", "gauss", "normalvariate", "getrandbits", "betavariate", "expovariate")
_NP_DRAWS = ("rand", "randn", "randint", "random", "random_sample", "choice", "shuffle",
             "permutation", "uniform", "normal", "binomial", "poisson")


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


@contextlib.contextmanager
def locate_draws(found: list):
    """While the block runs, the first module-level draw of ``random`` or ``np.random``
    appends the ``file:line`` of its caller to ``found`` (names imported with ``from random
    import ...`` before are the unwrapped functions: those draws go unlocated)."""
    from .tracer import user_location

    def noting(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            if not found:
                found.append(user_location())
            return f(*args, **kwargs)
        return wrapper

    saved = [(mod, name, getattr(mod, name)) for mod, names in
             ((random, _PY_DRAWS), (np.random, _NP_DRAWS)) for name in names
             if hasattr(mod, name)]
    for mod, name, f in saved:
        setattr(mod, name, noting(f))
    try:
        yield found
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)


def check_unchanged(before: tuple, fn_name: str, where: list | tuple = ()) -> None:
    """Raise a :class:`GraphBreak` (after restoring the states) if the traced function drew
    from Python's or NumPy's global random generator (``where``: the draws' locations, from
    :func:`locate_draws`; the first is named)."""
    py_before, np_before = before
    py_moved = random.getstate() != py_before
    np_moved = not _np_equal(np.random.get_state(legacy=False), np_before)
    if not (py_moved or np_moved):
        return
    random.setstate(py_before)
    np.random.set_state(np_before)
    which = "Python's `random` module" if py_moved else "NumPy's global `np.random`"
    at = f" at {where[0]}" if where else ""
    raise GraphBreak(
        f"graph break: {fn_name} drew from {which}{at} while being captured (random.randint, "
        "random.random, np.random.rand, ...); the compiled graph would repeat that one draw "
        "on every call. Draw outside the compiled function and pass the value in (an int "
        "argument is guarded: one graph per value), or sample tensors with fw.rand / "
        "fw.randint, which a compiled graph draws afresh on each call")
