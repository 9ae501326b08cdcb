"""Stochastic gradient descent (optionally with momentum / Nesterov momentum)."""

from __future__ import annotations

from ..errors import ArgumentError
from ..sparse.grad import add_sparse_
from ..tensor import Tensor
from . import _fused
from .optimizer import Optimizer, _check_range, _hypers


class SGD(Optimizer):
    """PyTorch's ``torch.optim.SGD``::

        g = grad (negated if maximize) + weight_decay * p
        buf = g (first step) | momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf         (when momentum != 0)
        p -= lr * g

    ``fused=True``: the same update in one pass per parameter (see ``Adam``).

    A sparse ``.grad`` (``nn.Embedding(sparse=True)``) updates only its rows when momentum
    and weight_decay are 0; otherwise it is made dense first (the same numbers as PyTorch,
    whose momentum buffer stays sparse).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        _check_range("learning rate", lr)
        _check_range("momentum", momentum)
        _check_range("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ArgumentError("SGD: Nesterov momentum requires a momentum and zero dampening")
        _fused.check_options("SGD", fused, foreach, differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        if fused:
            _fused.check_params(self)

    def _check_sparse_grad(self, group):
        if group.get("fused"):
            raise NotImplementedError("SGD: `fused` does not support sparse gradients")

    def _update_group(self, group, params):
        if group.get("fused"):
            params = _fused.sgd(self, group, params)
        lr, momentum, dampening, weight_decay = _hypers(group, "lr", "momentum", "dampening",
                                                        "weight_decay")
        for p in params:
            g = self._grad(p, group)
            if g.__class__ is not Tensor:  # a sparse gradient (framework/sparse)
                if momentum == 0 and weight_decay == 0:
                    add_sparse_(p, g, -lr)  # only the rows present change
                    continue
                g = g.to_dense()  # PyTorch's sparse + dense results are dense here too
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = g.detach().clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(g, alpha=1 - dampening)
                g = g.add(buf, alpha=momentum) if group["nesterov"] else buf
            p.add_(g, alpha=-lr)
