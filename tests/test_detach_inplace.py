"""In-place writes into ``detach()``'s output: it shares memory with the tensor it came from
but is no view for autograd (PyTorch's non-differentiable view), so

- a write of a value that requires grad gives the alias that value's history, and the
  tensor it was detached from keeps its own (llama's KV cache, detached before each step);
- a view of the alias is a view of the alias: writing into it updates the alias's history.
"""

import numpy as np

import framework as fw


def test_setitem_into_a_detached_cache_every_step():
    """The llama training pattern: ``cache = cache.detach()``, then ``cache[:, 0:T] = k``
    and a read of ``cache[:, :T]``, repeated: each backward sees only its own step."""
    w = fw.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    cache = fw.zeros(3, 2)
    for step in range(3):
        cache = cache.detach()
        x = fw.full((2, 2), float(step + 1))
        cache[0:2] = x @ w
        (cache[0:2] * fw.tensor([[1.0, 0.0], [0.0, 1.0]])).sum().backward()
        # d/dw of sum(diag((x @ w))) with x = c * ones: c in column-wise pattern
        np.testing.assert_allclose(w.grad.numpy(), [[step + 1, step + 1]] * 2)
        w.grad = None
    assert not cache.detach().requires_grad


def test_detached_alias_write_leaves_the_original_graph_alone():
    a = fw.ones(3, requires_grad=True)
    y = a * 2
    z = y.detach()
    v = fw.full((3,), 5.0, requires_grad=True)
    z.mul_(v)  # memory shared: y's values change too
    assert z.requires_grad and z.grad_fn is not None
    assert y.grad_fn.name() == "MulBackward0"  # not rewired to z's new history
    np.testing.assert_allclose(y.detach().numpy(), [10.0, 10.0, 10.0])
    z.sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [2.0, 2.0, 2.0])
    assert a.grad is None


def test_view_of_a_detached_buffer_written_with_grad():
    """``a = x.detach(); a[0:2].add_(y)``: the alias takes y's history (PyTorch's
    CopySlices on ``a``); x stays outside autograd."""
    x = fw.zeros(4)
    a = x.detach()
    y = fw.ones(2, requires_grad=True)
    w = fw.arange(4.0).requires_grad_()
    a[0:2].add_(y)
    assert a.requires_grad and not x.requires_grad and x.grad_fn is None
    (a * w).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 1.0])
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(x.numpy(), [1.0, 1.0, 0.0, 0.0])  # shared memory


def test_storage_offset_of_a_view_of_a_detached_view():
    base = fw.arange(10.0)
    b = base[2:].detach()[3:5]
    assert b.storage_offset() == 5 and b.tolist() == [5.0, 6.0]
    assert base[2:].detach().storage_offset() == 2


def test_compiled_step_writing_a_detached_cache_matches_eager():
    def run(compiled):
        fw.manual_seed(0)
        lin = fw.nn.Linear(2, 2)
        cache = fw.zeros(3, 2)
        opt = fw.optim.SGD(lin.parameters(), lr=0.1)

        def step(x):
            cache.detach_()
            cache[0:2] = lin(x)
            loss = (cache[:2] ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        fn = fw.compile(step, mode="always") if compiled else step
        losses = [float(fn(fw.full((2, 2), float(i)))) for i in range(3)]
        return losses, lin.weight.detach().numpy().copy(), cache.detach().numpy().copy(), fn

    l1, w1, c1, _ = run(False)
    l2, w2, c2, fn = run(True)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    np.testing.assert_allclose(w2, w1, rtol=1e-6)
    np.testing.assert_allclose(c2, c1, rtol=1e-6)
    assert fn.stats()["captures"] == 1
