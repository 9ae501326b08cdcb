"""Stochastic Weight Averaging and EMA of models (PyTorch's ``torch.optim.swa_utils``).

``AveragedModel`` keeps a copy of a model whose parameters (and, with ``use_buffers``,
buffers) are a running average of the model's: equal weights by default (SWA), or any
``avg_fn`` / ``multi_avg_fn`` such as the exponential moving average of
``get_ema_multi_avg_fn``. ``SWALR`` anneals the learning rate to a constant SWA value, and
``update_bn`` recomputes BatchNorm statistics for the averaged weights with one pass over
the data.
"""

from __future__ import annotations

import copy
import itertools
import math

from ..autograd import no_grad
from ..errors import ArgumentError
from ..nn.modules.module import Module
from ..nn.modules.normalization import _BatchNorm
from ..tensor import Tensor
from .lr_scheduler import LRScheduler, _format_param

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ArgumentError(f"Invalid decay value {decay} provided. Please provide a value "
                            "in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """An in-place ``multi_avg_fn``: ``ema = lerp(ema, current, 1 - decay)`` for each pair
    of the two lists (integer tensors: ``ema * decay + current * (1 - decay)``)."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged):
        with no_grad():
            if ema_param_list[0].dtype.is_floating_point:
                for p_ema, p_model in zip(ema_param_list, current_param_list):
                    p_ema.lerp_(p_model, 1 - decay)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list):
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """An in-place ``multi_avg_fn`` for the equal-weight average:
    ``avg += (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        with no_grad():
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                if p_avg.dtype.is_floating_point:
                    n = num_averaged.to(p_avg.dtype) if isinstance(num_averaged, Tensor) \
                        else num_averaged
                    p_avg.lerp_(p_model, 1 / (n + 1))
                else:
                    p_avg.copy_(p_avg + (p_model - p_avg) / (num_averaged + 1))
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """An ``avg_fn`` returning ``decay * ema + (1 - decay) * current``."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, _num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """An ``avg_fn`` returning ``avg + (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A deep copy of ``model`` (on ``device`` if given) holding running averages of its
    parameters, updated by :meth:`update_parameters`; calling it runs the copy.

    The first update copies the model's values; later ones apply ``multi_avg_fn(averaged
    list, current list, n_averaged)`` (in place, per device and dtype group) or
    ``avg_fn(averaged, current, n_averaged) -> new averaged`` (per tensor), by default the
    equal-weight average ``avg + (current - avg) / (n_averaged + 1)``. ``n_averaged`` is an
    int64 buffer counting the updates. With ``use_buffers=True`` the buffers are averaged
    too; otherwise they are copied from the model at each update.
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel expects an nn.Module, got {type(model).__name__}")
        from ..creation import tensor
        from .. import dtypes
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=dtypes.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        """Run the averaged copy of the model."""
        return self.module(*args, **kwargs)

    def _averaged_tensors(self, module: Module):
        if self.use_buffers:
            return itertools.chain(module.parameters(), module.buffers())
        return module.parameters()

    def update_parameters(self, model: Module) -> None:
        """Fold the current values of ``model``'s parameters (and buffers with
        ``use_buffers``) into the averages and count one more averaged model."""
        with no_grad():
            averaged, current = [], []
            for p_avg, p_model in zip(self._averaged_tensors(self.module),
                                      self._averaged_tensors(model)):
                averaged.append(p_avg.detach())
                current.append(p_model.detach().to(p_avg.device))
            n = int(self.n_averaged)
            if n == 0:
                for p_avg, p_model in zip(averaged, current):
                    p_avg.copy_(p_model)
            elif self.multi_avg_fn is not None:
                groups: dict = {}
                for p_avg, p_model in zip(averaged, current):
                    key = (str(p_avg.device), p_avg.dtype.name)
                    groups.setdefault(key, ([], [], p_avg.device))
                    groups[key][0].append(p_avg)
                    groups[key][1].append(p_model)
                for avg_list, cur_list, device in groups.values():
                    self.multi_avg_fn(avg_list, cur_list, self.n_averaged.to(device))
            else:
                avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for p_avg, p_model in zip(averaged, current):
                    p_avg.copy_(avg_fn(p_avg, p_model, self.n_averaged.to(p_avg.device)))
            if not self.use_buffers:
                # the buffers (BatchNorm statistics) follow the model
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    b_avg.copy_(b_model.detach().to(b_avg.device))
            self.n_averaged.add_(1)


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running statistics of every BatchNorm layer of ``model`` with one pass
    over ``loader`` (batches, or tuples/lists whose first element is the input; moved to
    ``device`` if given): the statistics are reset and accumulated as cumulative averages
    over the batches (``momentum=None``); the layers' momenta and the model's training mode
    are restored afterwards."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None and isinstance(batch, Tensor):
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr from its current value to ``swa_lr`` (a number, or one per
    group) over ``anneal_epochs`` steps, then hold it::

        t = min(1, step / max(1, anneal_epochs));  alpha = (1 - cos(pi * t)) / 2 ("cos")
        or t ("linear");  lr = swa_lr * alpha + lr_0 * (1 - alpha)

    As in PyTorch, ``lr_0`` is recovered at each step from the current lr (chainable with
    other schedulers that changed it).
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
                 last_epoch=-1):
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentError("anneal_strategy must by one of 'cos' or 'linear', instead "
                                f"got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or isinstance(anneal_epochs, bool) or \
                anneal_epochs < 0:
            raise ArgumentError(f"anneal_epochs must be equal or greater than 0, got "
                                f"{anneal_epochs}")
        self.anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """The annealing weight of the SWA lr at progress ``t`` in [0, 1]."""
        if self.anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        """The lr the schedule started from, given the lr at weight ``alpha``."""
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        """The annealed learning rates of the current step."""
        self._warn_get_lr()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        groups = self.optimizer.param_groups
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]
