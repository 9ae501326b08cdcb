"""The graph break for a draw from Python's ``random`` / NumPy's ``np.random`` inside a
compiled function names the draw's ``file:line``, as other graph breaks do
(compiler/host_random.py ``locate_draws``)."""

import inspect
import random
import warnings

import numpy as np

import framework as fw


def _teacher_forced(x):
    y = x * 2
    teacher_force = random.random() < 0.5  # a seq2seq decoder loop's coin
    return y + 1 if teacher_force else y - 1


def _numpy_draw(x):
    noise = float(np.random.rand())
    return x + noise


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, src in enumerate(lines) if text in src)


def _reason(fn):
    cf = fw.compile(fn, mode="always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cf(fw.ones(2))
    assert len(caught) == 1
    return cf.stats()["eager_reason"], str(caught[0].message)


def test_python_random_break_names_the_line():
    reason, warned = _reason(_teacher_forced)
    where = f"{__file__}:{_line_of(_teacher_forced, 'random.random()')}"
    assert where in reason and where in warned, reason
    assert "Python's `random` module" in reason


def test_numpy_random_break_names_the_line():
    reason, _ = _reason(_numpy_draw)
    assert f"{__file__}:{_line_of(_numpy_draw, 'np.random.rand()')}" in reason, reason


def test_the_wrappers_are_removed_after_the_capture():
    draw, np_draw = random.random, np.random.rand
    _reason(_teacher_forced)
    assert random.random is draw and np.random.rand is np_draw
