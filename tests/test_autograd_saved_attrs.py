"""``grad_fn._saved_<name>``: the values a node saved for backward (PyTorch's names)."""

import numpy as np
import pytest

import framework as fw
from framework.errors import AutogradError


def test_inputs_are_the_same_objects_and_outputs_share_storage():
    a = fw.randn(4, requires_grad=True)
    b = fw.randn(4, requires_grad=True)
    y = a * b
    assert y.grad_fn._saved_self is a and y.grad_fn._saved_other is b
    e = fw.exp(a)
    r = e.grad_fn._saved_result
    assert r is not e and r.equal(e) and r.grad_fn is e.grad_fn
    p = a.pow(3)
    assert p.grad_fn._saved_exponent == 3 and p.grad_fn._saved_self is a


def test_unknown_names_and_freed_graph():
    a = fw.randn(4, requires_grad=True)
    y = a * 2
    with pytest.raises(AttributeError, match="_saved_result"):
        y.grad_fn._saved_result           # mul does not save its output
    with pytest.raises(AttributeError):
        y.grad_fn._not_saved
    z = (a * a).sum()
    node = z.grad_fn.next_functions[0][0]
    z.backward()
    with pytest.raises(AutogradError, match="already been freed"):
        node._saved_self


def test_modified_output_and_hooks():
    a = fw.randn(4, requires_grad=True)
    e = fw.exp(a)
    node = e.grad_fn
    e.add_(1)
    with pytest.raises(AutogradError, match="inplace"):
        node._saved_result
    calls = []

    def unpack(t):
        calls.append(1)
        return t * 1

    with fw.autograd.graph.saved_tensors_hooks(lambda t: t.detach() * 1, unpack):
        y = a * a
    np.testing.assert_allclose(y.grad_fn._saved_self.detach().numpy(), a.detach().numpy())
    y.grad_fn._saved_other
    assert len(calls) == 2           # each access unpacks
