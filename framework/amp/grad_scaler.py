"""``fw.amp.GradScaler``: dynamic loss scaling for float16 training, as PyTorch's.

```python
scaler = fw.amp.GradScaler("cuda")
for x, y in loader:
    opt.zero_grad()
    with fw.autocast("cuda"):
        loss = loss_fn(model(x), y)
    scaler.scale(loss).backward()   # gradients of the scaled loss: no float16 underflow
    scaler.unscale_(opt)            # optional: to clip the true gradients first
    scaler.step(opt)                # unscales (if not done), skips the step on inf/nan
    scaler.update()                 # halves the scale after an overflow, doubles it after
                                    # growth_interval clean steps
```

The scale lives in a float32 tensor on the device of the first scaled output, so
``scale(loss)`` is an ordinary op (a compiled step records it, and reads the current scale
on every call). ``step`` reads the inf/nan flag on the host (``.item()``), as PyTorch's
does, so it cannot be captured by ``fw.compile``: compile the forward/backward and call
``step``/``update`` outside. With ``enabled=False`` every method is a pass-through.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

from .. import dtypes
from ..autograd import no_grad
from ..errors import ArgumentError, DeviceError, FrameworkError
from ..tensor import Tensor

__all__ = ["GradScaler", "OptState", "GradScalerError"]

_F32_MAX = 3.4028234663852886e38


class GradScalerError(FrameworkError, RuntimeError):
    """GradScaler methods called out of order (``unscale_`` twice, ``step`` twice, ...)."""


class OptState:
    """Where an optimizer is in the current iteration."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class GradScaler:
    """Scale the loss so float16 gradients do not underflow; unscale before the optimizer
    step, skip steps whose gradients hold inf/nan, and adapt the scale.

    device: "cuda" (default, as PyTorch) or "cpu". init_scale: the first scale.
    growth_factor / backoff_factor: what the scale is multiplied by after
    ``growth_interval`` consecutive clean steps / after a step with inf or nan.
    enabled: False makes every method a pass-through (``scale`` returns its input).
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        if device not in ("cpu", "cuda"):
            raise DeviceError(f"GradScaler: unsupported device {device!r}; expected 'cuda' "
                              "or 'cpu'")
        self._device = device
        self._enabled = bool(enabled)
        if self._enabled and device == "cuda":
            from .autocast import _cuda_available
            if not _cuda_available():
                warnings.warn("GradScaler is enabled, but CUDA is not available.  Disabling.",
                              UserWarning, stacklevel=2 + (type(self) is not GradScaler))
                self._enabled = False
        if self._enabled:
            if not growth_factor > 1.0:
                raise ArgumentError(f"GradScaler: the growth factor must be > 1.0, got "
                                    f"{growth_factor}")
            if not backoff_factor < 1.0:
                raise ArgumentError(f"GradScaler: the backoff factor must be < 1.0, got "
                                    f"{backoff_factor}")
            self._init_scale = float(init_scale)
            self._scale: Tensor | None = None
            self._growth_factor = float(growth_factor)
            self._backoff_factor = float(backoff_factor)
            self._growth_interval = int(growth_interval)
            self._init_growth_tracker = 0
            self._growth_tracker: int | None = None
            self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    # -- scaling -----------------------------------------------------------------------
    def _check_scale(self, funcname: str) -> None:
        if self._scale is None:
            raise GradScalerError(
                f"Attempted {funcname} but _scale is None.  This may indicate your script did "
                "not use scaler.scale(loss or outputs) earlier in the iteration.")

    def _lazy_init(self, device) -> None:
        from ..ops.creation_ops import full
        self._scale = full((), self._init_scale, dtype=dtypes.float32, device=device)
        self._growth_tracker = self._init_growth_tracker

    def scale(self, outputs):
        """``outputs`` (a tensor, or nested lists/tuples/iterables of them) multiplied by
        the current scale; a pass-through when disabled."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs.device)
            return outputs * self._scale.to(outputs.device)

        def apply_scale(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init(val.device)
                return val * self._scale.to(val.device)
            if isinstance(val, (list, tuple)):
                return type(val)(apply_scale(v) for v in val)
            if hasattr(val, "__iter__") and not isinstance(val, (str, bytes, dict)):
                return map(apply_scale, val)
            raise ArgumentError("GradScaler.scale: outputs must be a Tensor or an iterable of "
                                f"Tensors, got {type(val).__name__}")

        return apply_scale(outputs)

    def _unscale_grads_(self, optimizer, inv_scale, allow_fp16: bool) -> dict:
        """Multiply every gradient by ``inv_scale`` in place; per device, a float32 flag
        that is 1 when any gradient holds inf or nan."""
        from ..ops import isfinite
        bad: dict = {}
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if not allow_fp16 and g.dtype is dtypes.float16:
                        raise ArgumentError("Attempting to unscale FP16 gradients.")
                    dev = g.device
                    flag = ~isfinite(g).all()
                    bad[dev] = flag if dev not in bad else bad[dev] | flag
                    g.mul_(inv_scale.to(dev))
        return {dev: flag.to(dtypes.float32) for dev, flag in bad.items()}

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place (at most once per
        ``update``), recording whether any of them holds inf or nan."""
        if not self._enabled:
            return
        self._check_scale("unscale_()")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] == OptState.UNSCALED:
            raise GradScalerError("unscale_() has already been called on this optimizer since "
                                  "the last update().")
        if state["stage"] == OptState.STEPPED:
            raise GradScalerError("unscale_() is being called after step().")
        from ..ops.creation_ops import full
        inv = full((), 1.0 / float(self._scale.item()), dtype=dtypes.float32,
                   device=self._scale.device)
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, inv, False)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step(*args, **kwargs)`` unless its unscaled gradients hold inf or
        nan (then the step is skipped and None returned); unscales first if needed."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise GradScalerError("Closure use is not currently supported if GradScaler is "
                                  "enabled.")
        self._check_scale("step()")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] == OptState.STEPPED:
            raise GradScalerError("step() has already been called since the last update().")
        if state["stage"] == OptState.READY:
            self.unscale_(optimizer)
        retval = None
        if not sum(float(v.item()) for v in state["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None) -> None:
        """Adapt the scale (or set it to ``new_scale``, a float or a one-element tensor):
        times backoff_factor if any optimizer step of this iteration saw inf/nan, times
        growth_factor after growth_interval consecutive clean iterations."""
        if not self._enabled:
            return
        self._check_scale("update()")
        with no_grad():
            if new_scale is not None:
                if isinstance(new_scale, Tensor):
                    if new_scale.numel() != 1 or new_scale.requires_grad or \
                            not new_scale.dtype.is_floating_point:
                        raise ArgumentError("GradScaler.update: new_scale should be a float or "
                                            "a 1-element floating tensor with "
                                            "requires_grad=False.")
                    self._scale.fill_(float(new_scale.item()))
                else:
                    self._scale.fill_(float(new_scale))
            else:
                found = [v for st in self._per_optimizer_states.values()
                         for v in st["found_inf_per_device"].values()]
                if not found:
                    raise GradScalerError("No inf checks were recorded prior to update.")
                self._update_scale(sum(float(v.item()) for v in found) > 0)
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def _update_scale(self, found_inf: bool) -> None:
        scale = float(self._scale.item())
        if found_inf:
            self._scale.fill_(scale * self._backoff_factor)
            self._growth_tracker = 0
            return
        successful = self._growth_tracker + 1
        if successful == self._growth_interval:
            grown = scale * self._growth_factor
            if grown <= _F32_MAX:  # a scale that would overflow float32 is not taken
                self._scale.fill_(grown)
            self._growth_tracker = 0
        else:
            self._growth_tracker = successful

    # -- accessors ---------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.item())

    def get_growth_factor(self) -> float:
        """The factor the scale grows by."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor."""
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        """The factor the scale shrinks by after an overflow."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor."""
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        """Clean iterations needed before the scale grows."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval."""
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None \
            else self._growth_tracker

    def is_enabled(self) -> bool:
        """False when constructed with enabled=False (or for cuda without a GPU)."""
        return self._enabled

    def state_dict(self) -> dict:
        """scale, growth_factor, backoff_factor, growth_interval and _growth_tracker (an
        empty dict when disabled), as PyTorch."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise GradScalerError("The source state dict is empty, possibly because it was "
                                  "saved from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            with no_grad():
                self._scale.fill_(self._init_scale)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = self._init_growth_tracker

    def __repr__(self) -> str:
        return (f"GradScaler(device={self._device!r}, scale={self.get_scale()}, "
                f"enabled={self._enabled})")
