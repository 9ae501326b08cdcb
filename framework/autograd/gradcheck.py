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
              raise_exception: bool = True, num_projections: int = 2, seed: int = 0,
              check_backward_ad: bool = True, check_forward_ad: bool = False,
              check_undefined_grad: bool = True, check_batched_grad: bool = False,
              check_batched_forward_grad: bool = False, fast_mode: bool = False) -> bool:
    """Compare autograd's derivatives with central finite differences.

    Backward (``check_backward_ad``): for random cotangents ``v`` it checks ``v^T J`` from
    one backward pass against ``(v . f(x + eps e_i) - v . f(x - eps e_i)) / 2 eps`` for
    every input element; with ``check_undefined_grad`` a zero cotangent must give zero
    gradients. ``fast_mode=True`` (PyTorch's fast mode) checks the scalar ``v^T J u`` for
    random directions ``u`` over all inputs at once instead: two evaluations of ``fn`` per
    projection rather than two per input element. Forward (``check_forward_ad``): for
    random tangents ``u`` (one input at a time) the JVP from
    :mod:`~framework.autograd.forward_ad` dual tensors must match
    ``(f(x + eps u) - f(x - eps u)) / 2 eps``. Inputs that require grad should be float64.
    """
    inputs = _as_tuple(inputs)
    if check_batched_grad or check_batched_forward_grad:
        raise NotImplementedError("gradcheck: check_batched_grad / check_batched_forward_grad "
                                  "(vmap over the derivative) are not implemented")
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise AutogradError("gradcheck: no input requires grad")
    if not (check_backward_ad or check_forward_ad):
        raise AutogradError("gradcheck: expected at least one of check_backward_ad and "
                            "check_forward_ad to be True")
    ok = True
    if check_forward_ad:
        ok = _check_forward(fn, inputs, diff_idx, eps, atol, rtol, raise_exception,
                            num_projections, seed)
    if ok and check_backward_ad:
        check = _check_backward_fast if fast_mode else _check_backward
        ok = check(fn, inputs, diff_idx, eps, atol, rtol, raise_exception, num_projections,
                   seed)
    if ok and check_backward_ad and check_undefined_grad:
        ok = _check_zero_cotangent(fn, inputs, diff_idx, raise_exception)
    return ok


def _fail(raise_exception, msg) -> bool:
    if raise_exception:
        raise AutogradError(msg)
    return False


def _check_forward(fn, inputs, diff_idx, eps, atol, rtol, raise_exception, num_projections,
                   seed) -> bool:
    """JVPs through dual tensors against finite differences along the same tangent."""
    from .. import ops as F
    from . import forward_ad as fwAD

    rng = np.random.default_rng(seed + 7)
    for _ in range(num_projections):
        for i in diff_idx:
            x = inputs[i]
            u = rng.standard_normal(x.shape)
            with fwAD.dual_level():
                args = list(inputs)
                args[i] = fwAD.make_dual(x, F.tensor(u, dtype=x.dtype))
                outs = _flat_outputs(fn, args)
                analytic = [np.zeros(o.shape) if (t := fwAD.unpack_dual(o).tangent) is None
                            else t.detach().numpy().astype(np.float64) for o in outs]
            sides = []
            for sign in (1, -1):
                args = list(inputs)
                args[i] = F.tensor(x.detach().numpy() + sign * eps * u, dtype=x.dtype)
                sides.append([o.detach().numpy().astype(np.float64)
                              for o in _flat_outputs(fn, args)])
            for k, (a, hi, lo) in enumerate(zip(analytic, *sides)):
                numeric = (hi - lo) / (2 * eps)
                if not np.allclose(a, numeric, atol=atol, rtol=rtol):
                    return _fail(raise_exception,
                                 f"gradcheck: forward AD (JVP) mismatch for input {i}, output "
                                 f"{k} (max abs error {np.abs(a - numeric).max():.3g})\n"
                                 f"analytic:\n{a}\nnumerical:\n{numeric}")
    return True


def _check_zero_cotangent(fn, inputs, diff_idx, raise_exception) -> bool:
    """A zero cotangent (PyTorch's undefined output gradient) gives zero input gradients."""
    from .. import ops as F
    from . import grad as autograd_grad

    outs = [o for o in _flat_outputs(fn, inputs) if o.requires_grad]
    if not outs:
        return True
    gs = autograd_grad(outs, [inputs[i] for i in diff_idx],
                       grad_outputs=[F.zeros_like(o) for o in outs], allow_unused=True)
    for i, g in zip(diff_idx, gs):
        if g is not None and np.any(g.detach().numpy() != 0):
            return _fail(raise_exception, f"gradcheck: a zero output gradient gave a nonzero "
                         f"gradient for input {i} (check_undefined_grad)")
    return True


def _check_backward(fn, inputs, diff_idx, eps, atol, rtol, raise_exception, num_projections,
                    seed) -> bool:
    """VJPs for random cotangents against finite differences, element by element."""
    from .. import ops as F
    from . import grad as autograd_grad

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


def _check_backward_fast(fn, inputs, diff_idx, eps, atol, rtol, raise_exception,
                         num_projections, seed) -> bool:
    """``v^T J u`` from one backward pass against ``(v . f(x + eps u) - v . f(x - eps u))
    / 2 eps``, for random cotangents ``v`` and input directions ``u``."""
    from .. import ops as F
    from . import grad as autograd_grad

    rng = np.random.default_rng(seed)
    for _ in range(num_projections):
        outs = _flat_outputs(fn, inputs)
        vs = [rng.standard_normal(o.shape) for o in outs]
        us = {i: rng.standard_normal(inputs[i].shape) for i in diff_idx}
        total = sum((o * F.tensor(v, dtype=o.dtype)).sum() for o, v in zip(outs, vs)
                    if o.requires_grad)
        analytic = 0.0
        if isinstance(total, Tensor):
            gs = autograd_grad(total, [inputs[i] for i in diff_idx], allow_unused=True)
            analytic = sum(float((g.detach().numpy().astype(np.float64) * us[i]).sum())
                           for i, g in zip(diff_idx, gs) if g is not None)
        vals = []
        for sign in (1, -1):
            args = list(inputs)
            for i in diff_idx:  # still requiring grad, as in _check_backward
                x = inputs[i]
                args[i] = F.tensor(x.detach().numpy() + sign * eps * us[i],
                                   dtype=x.dtype).requires_grad_(True)
            vals.append(sum(float((o.detach().numpy().astype(np.float64) * v).sum())
                            for o, v in zip(_flat_outputs(fn, args), vs)))
        numeric = (vals[0] - vals[1]) / (2 * eps)
        if not np.isclose(analytic, numeric, atol=atol, rtol=rtol):
            return _fail(raise_exception, f"gradcheck: Jacobian mismatch (fast mode, v^T J u "
                         f"for random v, u): analytic {analytic!r}, numerical {numeric!r}")
    return True


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0, fast_mode: bool = False) -> bool:
    """Check second derivatives: gradcheck of the first-order VJP with a fixed cotangent
    (``fast_mode`` as in :func:`gradcheck`)."""
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

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     fast_mode=fast_mode)
