"""The Optimizer base class: parameter groups, per-parameter state, ``state_dict``.

Update rules live in one module per optimizer. Each writes its arithmetic with tensor ops
under ``fw.no_grad()`` as in-place updates of the parameters and state buffers (``p.add_``,
``buf.mul_(..).add_(..)``), with the step counter kept as a 0-d float32 tensor in
``state['step']``; nothing calls ``.item()`` or ``.numpy()``, so a compiled training step
can capture ``opt.step()`` whole.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict

from .. import dtypes, ops as F
from ..autograd import enable_grad, no_grad, zero_grads_
from ..errors import ArgumentError
from ..sparse.layout import strided
from ..tensor import Tensor


class _RequiredParameter:
    """Singleton marking a hyper-parameter with no default (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()
_SET_MESSAGE = ("optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead.")


# Set by the compiler while capturing ``opt.step()``: ``hook(group, key, value) -> value``.
_hyper_hook = None


def _hyper(group: dict, key: str):
    """Read hyper-parameter ``key`` (lr, betas, momentum, ...) of a parameter group.

    Every update rule reads its per-step hyper-parameters through this one function. By
    itself it returns ``group[key]`` (a Python number). The compiler installs
    ``_hyper_hook`` while capturing ``opt.step()`` so that a value that changes between
    steps (an lr set by a scheduler) becomes a runtime input of the graph instead of a
    constant baked into it.
    """
    value = group[key]
    hook = _hyper_hook
    return value if hook is None else hook(group, key, value)


def _hypers(group: dict, *keys: str) -> list:
    """``[_hyper(group, k) for k in keys]``: the hyper-parameters an update rule reads at
    the start of a group, read in the order given."""
    return [_hyper(group, key) for key in keys]


def _step_scalar(step: Tensor, like: Tensor) -> Tensor:
    """The step counter in the dtype used for bias corrections of ``like``: float64 for
    float64 parameters, float32 otherwise (float16 would ruin ``1 - beta2 ** step``)."""
    return step.to(dtypes.float64) if like.dtype is dtypes.float64 else step


def _new_step(p: Tensor) -> Tensor:
    """A fresh step counter: a 0-d float32 tensor holding 0 on ``p``'s device (updated in
    place, so a captured step reads and writes it like any other state buffer)."""
    from ..creation import zeros
    return zeros((), dtype=dtypes.float32, device=p.device)


def _check_range(name: str, value, low=0.0, high=None, *, low_open=False, high_open=True):
    """Raise ArgumentError("Invalid <name> value: ...") like PyTorch's constructors."""
    bad = value < low or (low_open and value == low)
    if high is not None:
        bad = bad or value > high or (high_open and value == high)
    if bad:
        raise ArgumentError(f"Invalid {name} value: {value}")


def _check_adam_args(lr, eps, betas, weight_decay) -> None:
    """The constructor checks shared by the Adam family (Adam, AdamW, Adamax, NAdam, RAdam),
    in PyTorch's order: lr, eps, betas, weight_decay."""
    _check_range("learning rate", lr)
    _check_range("epsilon", eps)
    _check_range("beta parameter at index 0", betas[0], 0.0, 1.0)
    _check_range("beta parameter at index 1", betas[1], 0.0, 1.0)
    _check_range("weight_decay", weight_decay)


def _apply_weight_decay(p: Tensor, g: Tensor, lr, weight_decay, decoupled: bool) -> Tensor:
    """Weight decay of the Adam family; returns the gradient the update goes on with.

    Decoupled (AdamW's): shrink ``p`` in place by ``1 - lr * weight_decay``, ``g`` unchanged.
    Otherwise (L2): ``g + weight_decay * p``.
    """
    if weight_decay != 0:
        if decoupled:
            p.mul_(1 - lr * weight_decay)
        else:
            g = g.add(p, alpha=weight_decay)
    return g


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts (parameter
    groups, each a dict with a ``"params"`` entry and per-group options overriding
    ``defaults``).
    """

    def __init__(self, params, defaults: dict):
        if defaults.get("differentiable"):
            raise NotImplementedError(f"{type(self).__name__}(differentiable=True): autograd "
                                      "through the optimizer step is not implemented; updates "
                                      "always run under no_grad")
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._step_pre_hooks: OrderedDict = OrderedDict()
        self._step_post_hooks: OrderedDict = OrderedDict()
        self._hook_id = 0
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ArgumentError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(dict(group))
        self._patch_step()

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group; options missing from it are taken from ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ArgumentError(f"{type(self).__name__}: a parameter group must be a dict with a "
                                f"'params' entry, got keys {sorted(map(str, param_group))}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_MESSAGE)
        params = list(params)
        names = None
        if params and isinstance(params[0], tuple):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, but parameter "
                                f"{i} of the group is a {type(p).__name__}")
            if not p.is_leaf:
                raise ArgumentError(f"{type(self).__name__}: can't optimize a non-leaf Tensor "
                                    f"(parameter {i} of the group, shape {list(p.shape)})")
        group = dict(param_group)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ArgumentError(f"{type(self).__name__}: parameter group didn't specify a "
                                    f"value of required optimization parameter {name}")
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error", UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ArgumentError(f"{type(self).__name__}: some parameters appear in more than "
                                "one parameter group")
        self.param_groups.append(group)

    # -- gradients and steps --------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None, or to zeros in place)."""
        for group in self.param_groups:
            zero_grads_(group["params"], set_to_none)

    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                for p in params:
                    if not (p.dtype.is_floating_point and p.grad.dtype.is_floating_point):
                        raise ArgumentError(f"{type(self).__name__}: can only optimize floating "
                                            f"point parameters, got {p.dtype.name}")
                    if p.grad.__class__ is not Tensor and p.grad.layout is not strided:
                        self._check_sparse_grad(group)
                self._update_group(group, params)
        return loss

    def _check_sparse_grad(self, group: dict) -> None:
        """Called for a sparse ``.grad`` (framework/sparse): optimizers that take one
        (SGD, Adagrad, SparseAdam) override this to check their options."""
        name = type(self).__name__
        hint = ", please consider SparseAdam instead" if name in ("Adam", "AdamW") else ""
        raise NotImplementedError(f"{name} does not support sparse gradients{hint}")

    def _update_group(self, group: dict, params: list) -> None:
        """Apply the update rule to the parameters of ``group`` that have a gradient."""
        raise NotImplementedError(f"{type(self).__name__} does not implement its update rule")

    def _grad(self, p: Tensor, group: dict) -> Tensor:
        """The gradient as the update rule sees it: negated under ``maximize``."""
        return -p.grad if group.get("maximize", False) else p.grad

    def _lazy_state(self, p: Tensor, *buffers: str) -> dict:
        """The state of ``p``. On first use it is filled with a fresh ``step`` counter and,
        for each name in ``buffers`` in that order, a zero tensor like ``p``."""
        state = self.state[p]
        if not state:
            state["step"] = _new_step(p)
            for name in buffers:
                state[name] = F.zeros_like(p)
        return state

    def _patch_step(self) -> None:
        """Wrap ``self.step`` so that step pre/post hooks run and schedulers can tell that
        ``optimizer.step()`` was called."""
        raw = self.step

        @functools.wraps(raw)
        def step(*args, **kwargs):
            for hook in list(self._step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    args, kwargs = result
            self._opt_called = True
            out = raw(*args, **kwargs)
            for hook in list(self._step_post_hooks.values()):
                hook(self, args, kwargs)
            return out
        self.step = step

    def register_step_pre_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` before each step; returns a handle."""
        return self._add_hook(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` after each step; returns a handle."""
        return self._add_hook(self._step_post_hooks, hook)

    def _add_hook(self, table, hook):
        self._hook_id += 1
        table[self._hook_id] = hook
        return _RemovableHandle(table, self._hook_id)

    # -- state dict -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``
        with parameters numbered in group order, as PyTorch does."""
        index: dict[int, int] = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a ``state_dict()``: groups must match in number and sizes. State tensors are
        copied and cast to their parameter's dtype and device (the 0-d counters ``step``,
        ``mu_product``, ``eta`` and ``mu`` keep their float32 dtype)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or \
                "param_groups" not in state_dict:
            raise ArgumentError(f"{name}.load_state_dict: expected a dict with 'state' and "
                                "'param_groups' entries (from Optimizer.state_dict())")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ArgumentError(f"{name}.load_state_dict: loaded state dict has "
                                f"{len(saved_groups)} parameter groups, the optimizer has "
                                f"{len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ArgumentError(
                    f"{name}.load_state_dict: loaded state dict contains a parameter group "
                    f"({i}) of size {len(saved['params'])} that doesn't match the size of the "
                    f"optimizer's group ({len(mine['params'])})")
        id_map = {}
        for mine, saved in zip(self.param_groups, saved_groups):
            for idx, p in zip(saved["params"], mine["params"]):
                id_map[idx] = p
        state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            key = int(key)  # keys may come back as strings from foreign formats
            if key not in id_map:
                continue
            p = id_map[key]
            state[p] = {k: _cast_state(p, k, v) for k, v in value.items()}
        self.state = state
        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            saved["params"] = mine["params"]
            if "param_names" in mine and "param_names" not in saved:
                saved["param_names"] = mine["param_names"]
            new_groups.append(saved)
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("step", None)  # the wrapped bound step; re-created on unpickling
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._patch_step()


# 0-d counters kept in their own dtype (float32), not cast to the parameter's dtype
# (ASGD's eta and mu included, so a resumed run rounds them as an uninterrupted one).
_SCALAR_STATE = ("step", "mu_product", "eta", "mu")


def _cast_state(p: Tensor, key, value):
    """Copy a loaded state value next to its parameter (PyTorch's casting policy)."""
    if key == "step" and isinstance(value, (int, float)):
        from ..creation import tensor
        return tensor(float(value), dtype=dtypes.float32, device=p.device)
    if isinstance(value, Tensor):
        if key in _SCALAR_STATE:
            return value.detach().to(p.device).clone()
        out = value.detach().to(p.device)
        if p.dtype.is_floating_point and out.dtype.is_floating_point:
            out = out.to(p.dtype)
        return out.clone()
    return copy.deepcopy(value)


class _RemovableHandle:
    """Removes a registered hook."""

    def __init__(self, table, key):
        self._table, self._key = table, key

    def remove(self) -> None:
        """Unregister the hook (idempotent)."""
        self._table.pop(self._key, None)
