"""Reductions over inf/nan give IEEE results without NumPy's RuntimeWarning, as in PyTorch
(``inf + -inf`` in a gradient sum printed "invalid value encountered in reduce")."""

import math
import warnings

import framework as fw


def test_sum_prod_amax_amin_of_infinities_do_not_warn():
    x = fw.tensor([float("inf"), -float("inf"), 1.0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", append=True)  # below the framework's own filter
        assert math.isnan(x.sum().item())
        assert x.prod().item() == -math.inf
        assert x.amax().item() == math.inf and x.amin().item() == -math.inf
        assert math.isnan(fw.tensor([math.nan, 1.0]).amax().item())  # nan propagates
        col = fw.tensor([[math.inf, 1.0], [-math.inf, 2.0]]).sum(0)
        assert col.isnan().tolist() == [True, False]
    assert [str(w.message) for w in seen] == []


def test_backward_through_an_infinite_loss_does_not_warn():
    w = fw.ones(3, requires_grad=True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", append=True)
        (fw.stack([w, -w]).sum(0) * math.inf).sum().backward()
    assert [str(w.message) for w in seen] == [] and w.grad.isnan().all()
