"""Jacobians and friends (``torch.func``): ``jacrev``, ``jacfwd``, ``hessian``, ``linearize``.

``jacrev`` takes one VJP per output element: ``fw.vjp`` builds the pullback once, and
``vmap`` runs it over the rows of an identity (the basis cotangents). ``jacfwd`` takes
one JVP per input element the same way; its JVP is the transpose of the pullback (the VJP
of ``u -> vjp_fn(u)``, linear in ``u``), built once by :func:`linearize` and run over the
basis tangents. ``hessian`` is ``jacfwd(jacrev(f))``. ``vmap`` runs the pullback once on
the whole basis (batched, see :mod:`framework.func_batching`), ``chunk_size`` rows at a
time when given.

Result structure, as PyTorch's: for each output leaf (f may return a tensor or a
tuple/list/dict of tensors), the Jacobian with respect to the argument(s) ``argnums`` (a
tensor of shape ``output.shape + input.shape``, a tuple of those for a tuple ``argnums``,
and the argument's own container structure for a tuple/list/dict argument).
"""

from __future__ import annotations

from .errors import ArgumentError, AutogradError
from .func import _argnums, vjp
from .func_vmap import _is_node, _leaves, _name, _replace, vmap
from .tensor import Tensor

__all__ = ["jacrev", "jacfwd", "hessian", "linearize"]


def _select(func, args, argnums, name):
    """``(g, leaves, regroup, single)``: ``g(*leaves)`` calls ``func`` with the tensor
    leaves of the arguments ``argnums`` replaced; ``regroup(per_leaf)`` turns one value per
    leaf back into the arguments' structure (a tuple of them unless ``single``)."""
    nums, single = _argnums(argnums, len(args), name)
    leaves, parts = [], []
    for a in nums:
        x = args[a]
        if isinstance(x, Tensor):
            paths = [()]
        elif _is_node(x):
            paths = [p for p, t in _leaves(x) if isinstance(t, Tensor)]
        else:
            raise ArgumentError(f"{name}: argument {a} is not a tensor (got "
                                f"{type(x).__name__})")
        if not paths:
            raise ArgumentError(f"{name}: argument {a} holds no tensor")
        by_path = dict(_leaves(x))
        for p in paths:
            t = by_path[p]
            if not t.dtype.is_floating_point:
                raise AutogradError(f"{name}: only floating point tensors have derivatives, "
                                    f"got {t.dtype.name} in argument {a}")
            leaves.append(t)
        parts.append((a, paths))

    def g(*flat):
        new, k = list(args), 0
        for a, paths in parts:
            vals = flat[k:k + len(paths)]
            k += len(paths)
            new[a] = vals[0] if paths == [()] else _replace(args[a], dict(zip(paths, vals)))
        return func(*new)

    def regroup(per_leaf):
        out, k = [], 0
        for a, paths in parts:
            vals = per_leaf[k:k + len(paths)]
            k += len(paths)
            if paths == [()]:
                out.append(vals[0])
            else:  # the argument's structure; None at its non-tensor leaves
                tree = args[a]
                out.append(_replace(tree, {p: None for p, _ in _leaves(tree)}
                                    | dict(zip(paths, vals))))
        return out[0] if single else tuple(out)

    g.__name__ = _name(func)
    return g, leaves, regroup, single


def _output_leaves(out, name, fname):
    """[(path, tensor)] of ``out``; every leaf must be a tensor."""
    leaves = _leaves(out)
    for _, t in leaves:
        if not isinstance(t, Tensor):
            raise ArgumentError(f"{name}({fname}, ...)(*args): expected f(*args) to return "
                                f"only tensors, got unsupported type {type(t).__name__}")
    return leaves


def _basis(tensors):
    """One-hot directions over all elements of ``tensors`` together: per tensor ``t`` a
    tensor of shape ``(N,) + t.shape`` (``N`` the total element count) whose rows are the
    standard basis restricted to ``t``."""
    from .creation import eye
    n = sum(t.numel() for t in tensors)
    out, off = [], 0
    for t in tensors:
        m = t.numel()
        out.append(eye(n, dtype=t.dtype, device=t.device)[:, off:off + m]
                   .reshape((n,) + tuple(t.shape)))
        off += m
    return out, n


def _offsets(tensors):
    off, spans = 0, []
    for t in tensors:
        spans.append((off, off + t.numel()))
        off += t.numel()
    return spans


def _stacked(fn, basis, n, like, **vmap_kw):
    """``vmap(fn)(*basis)``, a tuple with one ``(n,) + t.shape`` tensor per ``t`` in
    ``like``; zeros when there are no directions (``n == 0``)."""
    if n == 0:
        from .creation import zeros
        return tuple(zeros((0,) + tuple(t.shape), dtype=t.dtype, device=t.device)
                     for t in like)
    res = vmap(fn, **vmap_kw)(*basis)
    return tuple(res) if isinstance(res, (tuple, list)) else (res,)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """The Jacobian of ``func`` with respect to argument(s) ``argnums``, by reverse mode:
    one vector-Jacobian product per output element (``vmap`` over the rows of an
    identity). Each output's Jacobian has shape ``output.shape + input.shape``; see the
    module docstring for tuples/containers. With ``has_aux=True`` func returns
    ``(output, aux)`` and the result is ``(jacobian, aux)``. ``chunk_size`` is passed to
    ``vmap``: that many rows are evaluated at a time (all at once by default)."""

    def wrapped(*args):
        g, leaves, regroup, _ = _select(func, args, argnums, "jacrev")
        res = vjp(g, *leaves, has_aux=has_aux)
        out, vjp_fn = res[0], res[1]
        outs = _output_leaves(out, "jacrev", _name(func))
        tensors = [t for _, t in outs]
        basis, m = _basis(tensors)
        rows = _stacked(vjp_fn, basis, m, leaves, chunk_size=chunk_size)
        jac = {}
        for (path, o), (i, j) in zip(outs, _offsets(tensors)):
            jac[path] = regroup([r[i:j].reshape(tuple(o.shape) + tuple(x.shape))
                                 for r, x in zip(rows, leaves)])
        jac = _replace(out, jac)
        return (jac, res[2]) if has_aux else jac

    wrapped.__name__ = f"jacrev({_name(func)})"
    return wrapped


def _linearize(g, leaves, has_aux):
    """``(out, jvp_fn, aux)`` of ``g`` at ``leaves``; ``jvp_fn(*tangents)`` (one tangent per
    leaf) returns one JVP tensor per output leaf. The JVP is the VJP of the pullback
    ``u -> vjp_fn(u)`` (linear in ``u``), so both graphs are built once here."""
    from .creation import zeros_like
    res = vjp(g, *leaves, has_aux=has_aux)
    out = res[0]
    outs = _output_leaves(out, "jvp", _name(g))

    def pullback(*us):
        return vjp(g, *leaves, has_aux=has_aux)[1](*us)

    _, pb_vjp = vjp(pullback, *[zeros_like(t) for _, t in outs])
    return out, pb_vjp, (res[2] if has_aux else None)


def linearize(func, *primals):
    """``(func(*primals), jvp_fn)`` where ``jvp_fn(*tangents)`` is the Jacobian-vector
    product at ``primals`` (in ``func``'s output structure), built once and reusable for
    many tangents (``torch.func.linearize``). Primals may be tensors or tuples/lists/dicts
    of tensors; each tangent has its primal's structure."""
    if not primals:
        raise ArgumentError("linearize: expected at least one primal")
    argnums = tuple(range(len(primals)))
    g, leaves, _, _ = _select(func, primals, argnums, "linearize")
    out, pb_vjp, _ = _linearize(g, leaves, False)
    outs = _leaves(out)

    def jvp_fn(*tangents):
        if len(tangents) != len(primals):
            raise ArgumentError(f"linearize: jvp_fn expected {len(primals)} tangent(s), got "
                                f"{len(tangents)}")
        flat = [t for _, t in _leaves(tuple(tangents)) if isinstance(t, Tensor)]
        if len(flat) != len(leaves):
            raise ArgumentError(f"linearize: jvp_fn expected {len(leaves)} tangent tensor(s) "
                                f"matching the primals, got {len(flat)}")
        for t, p in zip(flat, leaves):
            if tuple(t.shape) != tuple(p.shape):
                raise ArgumentError(f"linearize: tangent of shape {list(t.shape)} for a "
                                    f"primal of shape {list(p.shape)}")
        cols = pb_vjp(*flat)
        return _replace(out, {path: c for (path, _), c in zip(outs, cols)})

    return out, jvp_fn


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian of ``func`` with respect to argument(s) ``argnums``, by forward mode:
    one Jacobian-vector product per input element (``vmap`` over the basis tangents).
    Same result structure as :func:`jacrev`; ``has_aux`` likewise. ``randomness`` is passed
    to ``vmap`` (``'same'`` replays the same random draws for every column)."""

    def wrapped(*args):
        g, leaves, regroup, _ = _select(func, args, argnums, "jacfwd")
        out, pb_vjp, aux = _linearize(g, leaves, has_aux)
        outs = _output_leaves(out, "jacfwd", _name(func))
        basis, n = _basis(leaves)
        cols = _stacked(pb_vjp, basis, n, [t for _, t in outs], randomness=randomness)
        spans = _offsets(leaves)
        jac = {}
        for (path, o), c in zip(outs, cols):
            m = o.numel()
            jac[path] = regroup([c[i:j].reshape(j - i, m).transpose(0, 1)
                                 .reshape(tuple(o.shape) + tuple(x.shape))
                                 for (i, j), x in zip(spans, leaves)])
        jac = _replace(out, jac)
        return (jac, aux) if has_aux else jac

    wrapped.__name__ = f"jacfwd({_name(func)})"
    return wrapped


def hessian(func, argnums=0):
    """The Hessian of scalar ``func`` with respect to argument(s) ``argnums``:
    ``jacfwd(jacrev(func, argnums), argnums)`` (shape ``input.shape + input.shape`` for
    one tensor argument)."""
    h = jacfwd(jacrev(func, argnums), argnums)
    h.__name__ = f"hessian({_name(func)})"
    return h
