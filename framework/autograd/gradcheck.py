"""Finite-difference gradient checks (float64), as ``torch.autograd.gradcheck``."""

from __future__ import annotations

import numpy as np

from ..errors import AutogradError
from ..tensor import Tensor


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _flat_outputs(fn, inputs):
    outs = _as_tuple(fn(*inputs))
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, num_projections: int = 2, seed: int = 0) -> bool:
    """Compare autograd's vector-Jacobian products with central finite differences.

    For random cotangents ``v`` it checks ``v^T J`` from one backward pass against
    ``(v . f(x + eps e_i) - v . f(x - eps e_i)) / 2 eps`` for every input element.
    Inputs that require grad should be float64.
    """
    from .. import ops as F
    from . import grad as autograd_grad

    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise AutogradError("gradcheck: no input requires grad")
    rng = np.random.default_rng(seed)
    outs = _flat_outputs(fn, inputs)
    for _ in range(num_projections):
        vs = [rng.standard_normal(o.shape) for o in outs]
        total = sum((o * F.tensor(v, dtype=o.dtype)).sum() for o, v in zip(outs, vs)
                    if o.requires_grad)
        if not isinstance(total, Tensor):
            analytic = [np.zeros(inputs[i].shape) for i in diff_idx]
        else:
            gs = autograd_grad(total, [inputs[i] for i in diff_idx], allow_unused=True,
                               retain_graph=True)
            analytic = [np.zeros(inputs[i].shape) if g is None else
                        g.detach().numpy().astype(np.float64) for i, g in zip(diff_idx, gs)]
        for k, i in enumerate(diff_idx):
            x = inputs[i]
            base = x.detach().numpy()
            numeric = np.zeros(x.shape)
            flat = numeric.reshape(-1)
            for j in range(base.size):
                vals = []
                for sign in (1, -1):
                    perturbed = base.copy()
                    perturbed.reshape(-1)[j] += sign * eps
                    args = list(inputs)
                    # as PyTorch, the perturbed input still requires grad and grad mode
                    # stays on: fn may itself call autograd.grad (gradient penalties)
                    args[i] = F.tensor(perturbed, dtype=x.dtype).requires_grad_(True)
                    o2 = _flat_outputs(fn, args)
                    vals.append(sum(float((o.detach().numpy().astype(np.float64) * v).sum())
                                    for o, v in zip(o2, vs)))
                flat[j] = (vals[0] - vals[1]) / (2 * eps)
            if not np.allclose(analytic[k], numeric, atol=atol, rtol=rtol):
                if raise_exception:
                    err = np.abs(analytic[k] - numeric).max()
                    raise AutogradError(f"gradcheck: Jacobian mismatch for input {i} (max abs "
                                        f"error {err:.3g})\nanalytic:\n{analytic[k]}\n"
                                        f"numerical:\n{numeric}")
                return False
        outs = _flat_outputs(fn, inputs)
    return True


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of the first-order VJP with a fixed cotangent."""
    from .. import ops as F
    from . import grad as autograd_grad

    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    rng = np.random.default_rng(seed + 1)
    outs = _flat_outputs(fn, inputs)
    vs = [F.tensor(rng.standard_normal(o.shape), dtype=o.dtype) for o in outs]

    def first_order(*xs):
        from .grad_mode import enable_grad
        # gradcheck's finite differences call this with fresh (non-grad) tensors under
        # no_grad: re-enable grad on them, and hand back plain values in that case
        perturbed = not all(xs[i].requires_grad for i in diff_idx)
        xs = [x.detach().requires_grad_(True) if i in diff_idx and not x.requires_grad else x
              for i, x in enumerate(xs)]
        with enable_grad():
            os_ = _flat_outputs(fn, xs)
            total = sum((o * v).sum() for o, v in zip(os_, vs))
            gs = autograd_grad(total, [xs[i] for i in diff_idx], create_graph=not perturbed,
                               allow_unused=True, materialize_grads=True)
        return tuple(g.detach() for g in gs) if perturbed else gs

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
