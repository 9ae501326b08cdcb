"""Functional transforms: ``fw.grad``, ``fw.value_and_grad``, ``fw.vjp``, ``fw.jvp``
(and, as ``torch.func``: ``grad_and_value`` here; ``vmap`` from :mod:`framework.func_vmap`;
``jacrev``, ``jacfwd``, ``hessian``, ``linearize`` from :mod:`framework.func_jacobian`;
``functional_call``, ``stack_module_state`` from :mod:`framework.nn.utils.stateless`).

Each transform captures ``f`` into a Graph (once per argument signature), builds the
gradient graph with :mod:`compiler.passes.autodiff` (the registry's VJP rules run over the
graph), and runs that graph with ``apply``. So the transforms work on eager tensors, inside
``fw.compile`` (the gradient graph is recorded into the enclosing capture) and nested
(``fw.grad(fw.grad(f))``: the inner gradient graph is itself differentiated).
"""

from __future__ import annotations

from .errors import ArgumentError, AutogradError
from .tensor import Tensor


def _argnums(argnums, nargs, name):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise ArgumentError(f"{name}: argnums {argnums} out of range for {nargs} "
                                "positional arguments")
    return tuple(a % nargs for a in nums), single


class _Transform:
    """Capture ``f`` per signature; run its gradient/vjp graph with ``apply``."""

    def __init__(self, f, name):
        self.f = f
        self.name = name
        self.cache: dict = {}

    def _trace(self, args):
        """The capture of ``f`` for this argument signature (cached)."""
        from compiler.capture import discover, trace
        from compiler.guards import static_key
        key, _ = static_key(args, {}, set(), set())
        # floats are baked into these graphs: their values are part of the key
        key = (key, tuple(a for a in args if isinstance(a, float)))
        hit = self.cache.get(key)
        if hit is not None and not hit[3].holds():
            hit = None  # f reads a name that was rebound since: trace again
        if hit is None:
            from compiler.guards import ClosureGuard

            from .autograd import enable_grad
            names, _ = discover(self.f, args)
            # grad mode on, so that only no_grad regions inside f stop gradients (an outer
            # no_grad does not, as with torch.func.grad)
            with enable_grad():
                cap = trace(self.f, args, names=names, specialize_floats=True,
                            lift_free=True)
            tensor_pos = [p[1] for p in cap.arg_paths if len(p) == 2]
            if len(tensor_pos) != len(cap.arg_paths):
                raise NotImplementedError(f"{self.name}: nested containers of tensors as "
                                          "arguments are not supported; pass tensors directly")
            hit = self.cache[key] = (cap, tensor_pos, {}, ClosureGuard(self.f, args,
                                                                cap.attr_reads))
        return key, hit

    def run(self, args, wrt=None, cot=None):
        """(outputs in f's structure, gradients per ``wrt`` argument, capture). Without
        ``wrt`` only the outputs are computed; with ``cot`` the result is a VJP."""
        from compiler.capture import map_tree
        from compiler.passes import autodiff
        _, (cap, tensor_pos, derived, _) = self._trace(args)
        inputs = [args[i] for i in tensor_pos] + list(cap.lifted)
        if wrt is None:
            g = cap.graph
            g.n_primal_outputs = len(g.outputs)
        else:
            outs = cap.graph.outputs
            if cot is None and (not outs or any(s != 1 for s in outs[0].shape)):
                raise ArgumentError(f"{self.name}: f must return a scalar tensor (one "
                                    "element) first, got "
                                    f"{list(outs[0].shape) if outs else 'no tensor'}")
            for a in wrt:
                if a not in tensor_pos:
                    raise ArgumentError(f"{self.name}: argument {a} is not a tensor")
            from compiler.differentiable import custom_function_reason
            why = custom_function_reason(cap.graph)
            if why is not None:
                raise NotImplementedError(f"{self.name}: cannot differentiate f: {why}; use "
                                          "loss.backward() or fw.autograd.grad")
            dkey = (wrt, cot is not None)
            g = derived.get(dkey)
            if g is None:
                wrt_inputs = tuple(tensor_pos.index(a) for a in wrt)
                g = derived[dkey] = autodiff.run(cap.graph, wrt=wrt_inputs, output=0,
                                                 cotangents=cot is not None)
            if cot is not None:
                inputs += list(cot)
        res = autodiff.interpret(g, inputs)
        n = g.n_primal_outputs
        outs, grads = res[:n], res[n:]
        tree = map_tree(cap.out_tree, lambda leaf: outs[leaf.x] if leaf.kind == "v"
                        else leaf.x)
        return tree, list(grads), cap


_LEAF = object()   # where a container argument holds a tensor


def _is_tree(a) -> bool:
    return isinstance(a, (tuple, list, dict))


def _skeleton(a):
    """A hashable description of a container argument (tensor leaves as placeholders)."""
    from compiler.capture import map_tree
    return repr(map_tree(a, lambda x: "<T>" if isinstance(x, Tensor) else x))


class _Flat:
    """``f`` over flat arguments: each container argument (a tuple/list/dict of
    parameters, JAX/torch.func style) is passed as its tensor leaves and rebuilt for
    ``f``, so the gradient with respect to it is the same container of gradients."""

    def __init__(self, f, name):
        self.f = f
        self.name = name
        self.transforms: dict = {}

    def flatten(self, args):
        from compiler.capture import flatten
        flat, spans = [], []
        for a in args:
            start = len(flat)
            if _is_tree(a):
                flat += [x for _, x in flatten(a) if isinstance(x, Tensor)]
            else:
                flat.append(a)
            spans.append((start, len(flat)))
        key = tuple(_skeleton(a) if _is_tree(a) else None for a in args)
        tr = self.transforms.get(key)
        if tr is None:
            from compiler.capture import map_tree
            # the structure only: holding the first call's tensors would keep them alive
            template = [map_tree(a, lambda x: _LEAF if isinstance(x, Tensor) else x)
                        if _is_tree(a) else None for a in args]
            tr = self.transforms[key] = _Transform(self._rebuilding(template, spans),
                                                   self.name)
        return tr, flat, spans

    def _rebuilding(self, template, spans):
        from compiler.capture import map_tree
        f = self.f

        def flat_f(*flat):
            args = []
            for a, (i, j) in zip(template, spans):
                if _is_tree(a):
                    it = iter(flat[i:j])
                    a = map_tree(a, lambda x, it=it: next(it) if x is _LEAF else x)
                else:
                    a = flat[i]
                args.append(a)
            return f(*args)

        flat_f.__name__ = getattr(f, "__name__", "f")
        return flat_f

    @staticmethod
    def regroup(args, spans, nums, grads):
        """Per argument in ``nums``: its gradient, a container for container arguments."""
        from compiler.capture import map_tree
        out = []
        for a in nums:
            i, j = spans[a]
            if _is_tree(args[a]):
                it = iter(grads[i:j])
                out.append(map_tree(args[a], lambda x, it=it: next(it)
                                    if isinstance(x, Tensor) else None))
            else:
                out.append(grads[i])
        return out


def value_and_grad(f, argnums=0, has_aux=False):
    """``f``'s value and its gradient with respect to ``argnums`` (f returns a scalar, or
    ``(scalar, aux)`` with ``has_aux=True``). An argument may be a tuple/list/dict of
    tensors; its gradient is then the same container of gradients."""
    flat = _Flat(f, "value_and_grad")

    def wrapped(*args):
        nums, single = _argnums(argnums, len(args), "value_and_grad")
        for a in nums:
            if not _is_tree(args[a]) and not isinstance(args[a], Tensor):
                raise ArgumentError(f"value_and_grad: argument {a} is not a tensor "
                                    f"(got {type(args[a]).__name__})")
        tr, flat_args, spans = flat.flatten(args)
        wrt = sorted({k for a in nums for k in range(*spans[a])})
        if not wrt:
            raise ArgumentError(f"value_and_grad: argnums {argnums} holds no tensor")
        for k in wrt:
            if not flat_args[k].dtype.is_floating_point:
                raise AutogradError(f"value_and_grad: only floating point tensors have "
                                    f"gradients, got {flat_args[k].dtype.name} in the "
                                    f"argument(s) {argnums}")
        out, grads, _ = tr.run(tuple(flat_args), tuple(wrt))
        value = out[0] if has_aux else out
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise ArgumentError("grad: f must return a scalar tensor (one element)"
                                + (" as the first element of (value, aux)" if has_aux else ""))
        by_pos = dict(zip(wrt, grads))
        per_flat = [by_pos.get(k) for k in range(len(flat_args))]
        gs = _Flat.regroup(args, spans, nums, per_flat)
        g = gs[0] if single else tuple(gs)
        return ((value, out[1]) if has_aux else value), g

    return wrapped


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``f`` with respect to argument(s) ``argnums``."""
    vg = value_and_grad(f, argnums, has_aux)

    def wrapped(*args):
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    return wrapped


def _match_outputs(tree, value, into: dict) -> None:
    """Record into ``into`` the value of each graph output leaf of a capture's out tree."""
    if isinstance(tree, (tuple, list)):
        for t, v in zip(tree, value):
            _match_outputs(t, v, into)
    elif isinstance(tree, dict):
        for k, t in tree.items():
            _match_outputs(t, value[k], into)
    elif getattr(tree, "kind", None) == "v":
        into[tree.x] = value


def vjp(f, *primals, has_aux=False):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` returns one gradient per primal.
    With ``has_aux=True`` f returns ``(output, aux)``, the result is
    ``(output, vjp_fn, aux)`` and ``vjp_fn`` takes cotangents for ``output`` only.
    A primal may be a tuple/list/dict of tensors (a parameter dict, torch.func style);
    its gradient is then the same container of gradients."""
    from compiler.capture import flatten
    from .creation import zeros_like
    tr, flat_args, spans = _Flat(f, "vjp").flatten(primals)
    flat_args = tuple(flat_args)
    nums = tuple(range(len(flat_args)))
    out, _, cap = tr.run(flat_args)
    if has_aux and not (isinstance(cap.out_tree, (tuple, list)) and len(cap.out_tree) == 2):
        raise ArgumentError("vjp(f, *primals, has_aux=True): f must return a tuple "
                            "(output, aux)")
    n_outs = len(cap.graph.outputs)
    main = [leaf.x for _, leaf in flatten(cap.out_tree[0] if has_aux else cap.out_tree)
            if getattr(leaf, "kind", None) == "v"]
    values: dict = {}  # graph output index -> its value (aux outputs get zero cotangents)
    _match_outputs(cap.out_tree, out, values)

    def vjp_fn(*cotangents):
        cots = [c for _, c in flatten(cotangents) if isinstance(c, Tensor)]
        if len(cots) != len(main):
            raise ArgumentError(f"vjp_fn: expected {len(main)} cotangent "
                                f"tensor(s), got {len(cots)}")
        if len(main) != n_outs:
            full = [zeros_like(values[k]) for k in range(n_outs)]
            for k, c in zip(main, cots):
                full[k] = c
            cots = full
        _, grads, _ = tr.run(flat_args, nums, cot=tuple(cots))
        return tuple(_Flat.regroup(primals, spans, range(len(primals)), grads))

    return (out[0], vjp_fn, out[1]) if has_aux else (out, vjp_fn)


def _tensor_leaves(tree) -> list:
    from compiler.capture import flatten
    return [x for _, x in flatten(tree)]


def jvp(f, primals, tangents):
    """``(f(*primals), J @ tangents)``. Forward-mode AD (:mod:`framework.autograd.forward_ad`):
    ``f`` runs once on dual tensors (a custom Function in ``f`` needs a ``jvp``). Inside an
    open dual level (forward AD has one level) the double VJP instead: the VJP is linear in
    its cotangent, so the JVP is the VJP of ``u -> vjp(u)``. A primal may be a
    tuple/list/dict of tensors (a parameter dict); its tangent is then a container of the
    same structure. Both results have the structure of ``f``'s output."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if (_is_tree(p) or _is_tree(t)) and _skeleton(p) != _skeleton(t):
            raise ArgumentError(f"jvp: tangent {i} must have the structure of its primal, "
                                f"got {_skeleton(t)} for {_skeleton(p)}")
        for pl, tl in zip(_tensor_leaves(p), _tensor_leaves(t)):
            if not isinstance(pl, Tensor) or not isinstance(tl, Tensor):
                raise ArgumentError(f"jvp: primal and tangent {i} must be tensors (or "
                                    f"containers of tensors), got {type(pl).__name__} and "
                                    f"{type(tl).__name__}")
            if tuple(pl.shape) != tuple(tl.shape):
                raise ArgumentError(f"jvp: tangent {i} has shape {list(tl.shape)} but its "
                                    f"primal has shape {list(pl.shape)}")
    from .autograd import forward_ad
    if forward_ad._current_level < 0:
        return _jvp_forward(f, primals, tangents)
    return _jvp_double_vjp(f, primals, tangents)


def _output_tensors(out) -> None:
    for o in _tensor_leaves(out):
        if not isinstance(o, Tensor):
            raise ArgumentError("jvp: f must return tensors (or containers of tensors), got "
                                f"{type(o).__name__}")


def _jvp_forward(f, primals, tangents):
    from compiler.capture import map_tree

    from .autograd.forward_ad import dual_level, make_dual, unpack_dual
    from .creation import zeros_like

    def tangent_or_zeros(o):
        t = unpack_dual(o).tangent
        return zeros_like(o) if t is None else t

    with dual_level():
        duals = []
        for p, t in zip(primals, tangents):
            it = iter(_tensor_leaves(t))
            duals.append(map_tree(p, lambda x, it=it: make_dual(x, next(it).to(x.dtype))))
        out = f(*duals)
        _output_tensors(out)
        tans = map_tree(out, tangent_or_zeros)
        outs = map_tree(out, lambda o: unpack_dual(o).primal)
    return outs, tans


def _jvp_double_vjp(f, primals, tangents):
    from compiler.capture import map_tree

    from .creation import zeros_like
    out, _ = vjp(f, *primals)
    _output_tensors(out)
    outs = _tensor_leaves(out)

    def pullback(*us):
        _, fn = vjp(f, *primals)
        return fn(*us)

    u0 = tuple(zeros_like(o) for o in outs)
    _, pb_vjp = vjp(pullback, *u0)
    it = iter(pb_vjp(*tangents))
    return out, map_tree(out, lambda o: next(it))


def grad_and_value(f, argnums=0, has_aux=False):
    """``torch.func.grad_and_value``: ``(gradient, value)`` of scalar-valued ``f`` (with
    ``has_aux=True``: ``(gradient, (value, aux))``). :func:`value_and_grad` is the same
    transform with the pair in JAX's order, ``(value, gradient)``."""
    vg = value_and_grad(f, argnums, has_aux)

    def wrapped(*args):
        value, g = vg(*args)
        return g, value

    return wrapped


# torch.func's other transforms live in their own modules (loaded on first use)
_REEXPORTS = {
    "vmap": "framework.func_vmap",
    "jacrev": "framework.func_jacobian",
    "jacfwd": "framework.func_jacobian",
    "hessian": "framework.func_jacobian",
    "linearize": "framework.func_jacobian",
    "functional_call": "framework.nn.utils.stateless",
    "stack_module_state": "framework.nn.utils.stateless",
}


def __getattr__(name):
    if name in _REEXPORTS:
        import importlib
        value = getattr(importlib.import_module(_REEXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'framework.func' has no attribute {name!r}")


__all__ = ["grad", "value_and_grad", "grad_and_value", "vjp", "jvp", *_REEXPORTS]
