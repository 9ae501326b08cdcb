"""0-d tensors in gather / scatter on "cuda": one element along dim 0, as in PyTorch (these
returned the input unchanged before, a silent wrong gradient for gather)."""

import pytest

import framework as fw


def _t(v, **kw):
    return fw.tensor(v, device="cuda", **kw)


def test_zero_dim_gather_scatter_and_the_gather_gradient():
    x = _t(3.0, requires_grad=True)
    (x.gather(0, _t(0)) * 2).backward()
    assert float(x.grad.cpu()) == 2.0
    assert float(fw.zeros((), device="cuda").scatter_add(0, _t(0), _t(5.0)).cpu()) == 5.0
    assert float(fw.ones((), device="cuda").scatter(0, _t(0), 7.0).cpu()) == 7.0
    with pytest.raises(fw.FwIndexError):
        fw.zeros((), device="cuda").gather(0, _t(1))
