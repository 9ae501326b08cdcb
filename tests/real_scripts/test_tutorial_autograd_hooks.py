"""pytorch/tutorials ``intermediate_source/autograd_saved_tensors_hooks_tutorial.py`` ported.

The saved tensors a node keeps (``grad_fn._saved_self`` / ``_saved_other`` /
``_saved_result``), ``saved_tensors_hooks`` with pack hooks returning a tensor, an int, a
tuple, a str and a self-deleting temp file, ``save_on_cpu`` inside a module and around a
submodule, and a training step under ``fw.compile`` with ``save_on_cpu`` in the model.
The tutorial's last ``pack_hook`` saves an undefined name (``tensor``); the port saves ``x``.
"""

import os
import uuid

import numpy as np
import pytest

import framework as fw
import framework.nn as nn

from ._checks import assert_params_close, assert_stats


def test_saved_tensor_attributes():
    a = fw.randn(5, requires_grad=True)
    b = fw.ones(5, requires_grad=True)
    y = a * b
    assert y.grad_fn._saved_self is a
    assert y.grad_fn._saved_other is b

    a = fw.randn(5, requires_grad=True)
    y = fw.exp(a)
    assert y.grad_fn._saved_result.equal(y)
    assert y.grad_fn._saved_result is not y

    def f(x):
        return x * x

    x = fw.randn(5, requires_grad=True)
    y = f(f(f(x)))
    inner = y.grad_fn._saved_self      # f(f(x)), kept alive by the graph
    np.testing.assert_allclose(inner.detach().numpy(), x.detach().numpy() ** 4, rtol=1e-6)
    with pytest.raises(AttributeError):
        y.grad_fn._saved_nothing


def test_pack_unpack_hooks_are_called():
    calls = []

    def pack_hook(x):
        calls.append(("pack", x))
        return x

    def unpack_hook(x):
        calls.append(("unpack", x))
        return x

    a = fw.ones(5, requires_grad=True)
    b = fw.ones(5, requires_grad=True) * 2
    with fw.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
        y = a * b
    y.sum().backward()
    assert [c[0] for c in calls] == ["pack", "pack", "unpack", "unpack"]
    np.testing.assert_allclose(a.grad.numpy(), np.full(5, 2.0))
    np.testing.assert_allclose(calls[0][1].detach().numpy(), a.detach().numpy())

    x = fw.randn(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(lambda x: x * 4, lambda x: x / 4):
        y = fw.pow(x, 2)
    y.sum().backward()
    assert x.grad.equal(2 * x)


def test_unconventional_packed_objects():
    storage = []

    def pack(x):
        storage.append(x)
        return len(storage) - 1

    def unpack(x):
        return storage[x]

    x = fw.randn(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = x * x
    y.sum().backward()
    assert x.grad.equal(2 * x)

    def pack(x):
        delta = fw.randn(*x.size())
        return x - delta, lambda x: x + delta

    def unpack(packed):
        x, f = packed
        return f(x)

    x = fw.randn(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = x * x
    y.sum().backward()
    assert fw.allclose(x.grad, 2 * x)

    x = fw.randn(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(lambda x: repr(x), lambda x: eval("fw." + x)):
        y = x * x
    y.sum().backward()
    assert fw.all(x.grad - 2 * x <= 1e-4)


def test_save_to_cpu_hooks():
    def pack_hook(x):
        return (x.device, x.cpu())

    def unpack_hook(packed):
        device, tensor = packed
        return tensor.to(device)

    x = fw.randn(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
        y = x * x
    y.sum().backward()
    assert fw.allclose(x.grad, (2 * x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(fw.randn(5))

    def forward(self, x):
        with fw.autograd.graph.save_on_cpu(pin_memory=True):
            # some computation
            return self.w * x


class SaveToCpu(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        with fw.autograd.graph.save_on_cpu(pin_memory=True):
            return self.module(*args, **kwargs)


def _seq():
    fw.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 100),
        SaveToCpu(nn.Linear(100, 100)),
        nn.Linear(100, 10),
    )


def test_save_on_cpu_modules_match_plain_gradients():
    fw.manual_seed(0)
    x = fw.randn(5)
    model = Model()
    loss = model(x).sum()
    loss.backward()
    np.testing.assert_allclose(model.w.grad.numpy(), x.numpy())

    model = _seq()
    x = fw.randn(10)
    loss = model(x).sum()
    loss.backward()
    plain = _seq()
    plain[1] = plain[1].module
    plain(x).sum().backward()
    for p, q in zip(model.parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def _train(compiled, steps=5):
    model = _seq()
    opt = fw.optim.SGD(model.parameters(), lr=0.01)
    fw.manual_seed(1)
    x, target = fw.randn(16, 10), fw.randn(16, 10)

    def step(x, target):
        loss = nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    fn = fw.compile(step) if compiled else step
    losses = [fn(x, target).item() for _ in range(steps)]
    return model, losses, fn


def test_training_with_save_on_cpu_eager_and_compiled():
    m_e, eager, _ = _train(False)
    assert eager[-1] < eager[0]
    m_c, comp, fn = _train(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    assert_params_close(m_c, m_e)
    assert_stats(fn, num_recompiles=0)


def test_disk_hooks(tmp_path):
    tmp_dir = str(tmp_path)

    # Incorrect version: the unpack hook deletes the file, so a second access fails
    def pack_hook(tensor):
        name = os.path.join(tmp_dir, str(uuid.uuid4()))
        fw.save(tensor, name)
        return name

    def unpack_hook(name):
        tensor = fw.load(name)
        os.remove(name)
        return tensor

    x = fw.ones(5, requires_grad=True)
    with fw.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
        y = x.pow(2)
    np.testing.assert_allclose(y.grad_fn._saved_self.detach().numpy(), np.ones(5))
    with pytest.raises(FileNotFoundError):
        y.grad_fn._saved_self

    class SelfDeletingTempFile:
        def __init__(self):
            self.name = os.path.join(tmp_dir, str(uuid.uuid4()))

        def __del__(self):
            os.remove(self.name)

    SAVE_ON_DISK_THRESHOLD = 1000

    def pack_hook(x):
        if x.numel() < SAVE_ON_DISK_THRESHOLD:
            return x
        temp_file = SelfDeletingTempFile()
        fw.save(x, temp_file.name)
        return temp_file

    def unpack_hook(tensor_or_sctf):
        if isinstance(tensor_or_sctf, fw.Tensor):
            return tensor_or_sctf
        return fw.load(tensor_or_sctf.name)

    class SaveToDisk(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args, **kwargs):
            with fw.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
                return self.module(*args, **kwargs)

    before = set(os.listdir(tmp_dir))
    fw.manual_seed(0)
    lin = nn.Linear(40, 40)
    net = nn.DataParallel(SaveToDisk(lin))
    x = fw.randn(30, 40, requires_grad=True)
    out = net(x)
    assert len(set(os.listdir(tmp_dir)) - before) >= 1   # x (1200 elements) went to disk
    out.sum().backward()
    del out
    assert set(os.listdir(tmp_dir)) == before            # files deleted with the graph
    np.testing.assert_allclose(lin.weight.grad.numpy(),
                               np.tile(x.detach().numpy().sum(0), (40, 1)), rtol=1e-5)
