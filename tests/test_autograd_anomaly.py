"""Anomaly detection: fw.autograd.detect_anomaly / set_detect_anomaly, the NaN check in
backward, forward tracebacks on errors, and the flags (fw.is_anomaly_enabled, ...)."""

import warnings

import numpy as np
import pytest

import framework as fw


@pytest.fixture(autouse=True)
def _anomaly_off():
    yield
    fw.autograd.set_anomaly_enabled(False)


def _nan_backward():
    a = fw.tensor([0.0, 1.0], requires_grad=True)
    b = (a.sqrt() * 0).sum()       # d sqrt at 0 is inf; inf * 0 = nan in SqrtBackward
    b.backward()
    return a


def test_flags_and_context_manager_restore():
    assert not fw.is_anomaly_enabled() and not fw.autograd.is_anomaly_enabled()
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        ctx = fw.autograd.detect_anomaly(check_nan=False)
    with ctx:
        assert fw.is_anomaly_enabled() and not fw.is_anomaly_check_nan_enabled()
    assert not fw.is_anomaly_enabled() and fw.is_anomaly_check_nan_enabled()
    fw.set_anomaly_enabled(True)
    assert fw.autograd.is_anomaly_enabled()
    fw.set_anomaly_enabled(False)
    with fw.autograd.set_detect_anomaly(True):
        assert fw.is_anomaly_enabled()
    assert not fw.is_anomaly_enabled()
    fw.autograd.set_detect_anomaly(True)          # takes effect immediately, as torch's
    assert fw.is_anomaly_enabled()


def test_nan_in_backward_raises_with_forward_traceback():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fw.autograd.detect_anomaly():
            with pytest.raises(RuntimeError,
                               match=r"Function 'SqrtBackward0' returned nan values in its "
                                     r"0th output\.") as info:
                _nan_backward()
    assert isinstance(info.value, fw.AutogradError)
    msgs = [str(w.message) for w in caught]
    trace = [m for m in msgs if m.startswith("Error detected in SqrtBackward")]
    assert trace and "Traceback of forward call that caused the error" in trace[0]
    assert "a.sqrt()" in trace[0] and "test_autograd_anomaly.py" in trace[0]
    assert "registry.py" not in trace[0]          # dispatch frames are trimmed
    assert any("a.sqrt()" in n for n in info.value.__notes__)


def test_without_anomaly_mode_nan_passes_silently():
    a = _nan_backward()
    assert np.isnan(a.grad.numpy()[0])
    with fw.autograd.detect_anomaly(check_nan=False):   # no NaN check either
        a = _nan_backward()
    assert np.isnan(a.grad.numpy()[0])


def test_decorator():
    @fw.autograd.detect_anomaly()
    def run():
        assert fw.is_anomaly_enabled()
        _nan_backward()

    with pytest.raises(fw.AutogradError, match="returned nan values"):
        run()
    assert not fw.is_anomaly_enabled()


def test_exception_inside_backward_shows_the_forward_traceback():
    class Bad(fw.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom in backward")

    x = fw.ones(2, requires_grad=True)
    with fw.autograd.detect_anomaly():
        y = Bad.apply(x).sum()
        with pytest.warns(UserWarning, match="Error detected in BadBackward") as rec:
            with pytest.raises(ValueError, match="boom in backward") as info:
                y.backward()
    assert any("Bad.apply(x)" in str(w.message) for w in rec)
    assert any("Bad.apply(x)" in n for n in info.value.__notes__)


def test_node_recorded_outside_anomaly_mode_says_so():
    a = fw.tensor([0.0], requires_grad=True)
    b = (a.sqrt() * 0).sum()
    with fw.autograd.detect_anomaly():
        with pytest.warns(UserWarning, match="No forward pass information available"):
            with pytest.raises(fw.AutogradError):
                b.backward()


def test_clean_backward_under_anomaly_mode_matches_normal_mode():
    x = fw.tensor([0.3, -1.2, 2.0], dtype=fw.float64, requires_grad=True)
    with fw.autograd.detect_anomaly():
        (x.sin() * x.exp()).sum().backward()
        g, = fw.autograd.grad((x ** 3).sum(), x, create_graph=True)
        g2, = fw.autograd.grad(g.sum(), x)
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(xv) * (np.cos(xv) + np.sin(xv)))
    np.testing.assert_allclose(g2.numpy(), 6 * xv)


def test_engine_is_back_on_the_fast_path_when_off():
    import framework.autograd as ag
    with fw.autograd.detect_anomaly():
        assert ag._extras is not None
    assert ag._extras is None
