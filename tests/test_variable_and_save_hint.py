"""``fw.autograd.Variable`` (PyTorch's deprecated wrapper) and the hint ``fw.save`` gives
when asked to pickle a whole module."""

import pytest

import framework as fw
from framework.autograd import Variable


def test_variable_returns_a_leaf_tensor_sharing_data():
    t = fw.ones(2, 2)
    v = Variable(t, requires_grad=True)
    assert isinstance(v, fw.Tensor) and isinstance(t, Variable) and v.is_leaf
    assert v.requires_grad and not t.requires_grad
    t.add_(1)
    assert v.tolist() == [[2.0, 2.0], [2.0, 2.0]]   # the data is shared
    ((v + 2) * (v + 2)).mean().backward()
    assert v.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]   # (v + 2) / 2 at v = 2
    assert not Variable(fw.ones(1)).requires_grad
    with pytest.raises(TypeError, match="Variable data has to be a tensor"):
        Variable([1.0])


def test_saving_a_module_names_the_state_dict_route(tmp_path):
    model = fw.nn.Linear(2, 3)
    with pytest.raises(fw.ArgumentError, match=r"Linear.*fw.save\(model.state_dict\(\), path\)"):
        fw.save(model, tmp_path / "m.pth")
    opt = fw.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(fw.ArgumentError, match=r"save its state_dict\(\) instead"):
        fw.save(opt, tmp_path / "o.pth")
