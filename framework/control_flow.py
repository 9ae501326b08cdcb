"""Structured control flow: ``fw.cond`` (``torch.cond``) and ``fw.while_loop``
(``torch.while_loop`` / ``torch._higher_order_ops.while_loop``).

Eagerly ``while_loop`` is a Python ``while``, and ``cond`` a Python ``if`` without grad
mode; with grad mode, ``cond`` captures both branches and evaluates its node eagerly, so
every tensor a branch reads gets a gradient (zeros from the branch not taken), as with
torch.cond and as in a compiled step. Under a capture (``fw.compile``,
``fw.onnx.export``, ``fw.grad`` and the other transforms) both branches -- or the loop's
condition and body -- are traced into subgraphs (:mod:`compiler.subgraph`) and one
``cond`` / ``while_loop`` node holds them, so the predicate is data: one compiled graph
serves every outcome. The gradient of a captured ``cond`` is a ``cond`` of the branches'
vector-Jacobian products; ``while_loop`` is forward-only, as in PyTorch.

The node's inputs are the predicate (cond only), the operands, then every tensor the
subgraphs read from outside (parameters, closed-over tensors): the subgraphs take the same
list, so the node names everything it reads.
"""

from __future__ import annotations

import numpy as np

from ._state import tls
from .errors import ArgumentError, DTypeError, FwTypeError, ShapeError
from .ops.registry import apply, register
from .tensor import Tensor

__all__ = ["cond", "while_loop"]

CONTROL = "control"   # the registry group of control-flow ops (fusion: opaque)


# ---------------------------------------------------------------------------------------
# pytrees of operands and results (tuples, lists, dicts; tensors at the leaves)
def flatten_tree(tree, leaves: list):
    """The structure of ``tree`` (leaves appended to ``leaves``); None marks a leaf."""
    if isinstance(tree, (tuple, list)):
        return (type(tree), tuple(flatten_tree(x, leaves) for x in tree))
    if isinstance(tree, dict):
        return (dict, tuple((k, flatten_tree(x, leaves)) for k, x in tree.items()))
    leaves.append(tree)
    return None


def unflatten_tree(spec, it):
    """Rebuild the structure ``spec`` (from :func:`flatten_tree`) with leaves from ``it``."""
    if spec is None:
        return next(it)
    kind, items = spec
    if kind is dict:
        return {k: unflatten_tree(s, it) for k, s in items}
    vals = [unflatten_tree(s, it) for s in items]
    return kind(*vals) if hasattr(kind, "_fields") else kind(vals)


def _tensor_leaves(tree, what: str, where: str):
    """(leaves, spec) of ``tree``, every leaf a tensor (else a clear error)."""
    leaves: list = []
    spec = flatten_tree(tree, leaves)
    for i, x in enumerate(leaves):
        if not isinstance(x, Tensor):
            raise FwTypeError(f"{what}: {where} must be tensors (possibly in nested "
                              f"tuples/lists/dicts), got {type(x).__name__} at position {i}")
    return leaves, spec


def _operands(operands, what: str, name: str):
    if not isinstance(operands, (tuple, list)):
        raise FwTypeError(f"{what}: {name} must be a tuple or list of tensors, got "
                          f"{type(operands).__name__}")
    return _tensor_leaves(operands, what, name)


def _type_str(t) -> str:
    return f"{t.dtype.short}[{', '.join(str(s) for s in t.shape)}]"


# ---------------------------------------------------------------------------------------
# predicates
def _check_pred(pred, what: str, name: str = "pred"):
    """A Python bool, or a one-element bool tensor (returned as is)."""
    if isinstance(pred, (bool, np.bool_)):
        return bool(pred)
    if not isinstance(pred, Tensor):
        raise FwTypeError(f"{what}: {name} must be a Python bool or a one-element bool tensor, "
                          f"got {type(pred).__name__}")
    if pred.dtype.name != "bool":
        raise DTypeError(f"{what}: {name} must be a bool tensor, got {pred.dtype.name} "
                         f"(compare it, e.g. x.sum() > 0)")
    n = 1
    for s in pred.shape:
        n = n * s if isinstance(s, int) else -1
    if n != 1:
        raise ShapeError(f"{what}: {name} must have exactly one element, got shape "
                         f"{list(pred.shape)}")
    return pred


def _host_bool(raw) -> bool:
    """The value of a one-element bool buffer (a device buffer is read to the host)."""
    if not isinstance(raw, np.ndarray):
        from .backends import cuda
        raw = cuda.to_numpy(raw)
    return bool(np.asarray(raw).reshape(-1)[0])


# ---------------------------------------------------------------------------------------
# cond
def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)`` (``torch.cond``).

    pred: a Python bool or a one-element bool tensor. operands: a tuple/list (possibly
    nested) of tensors. Both branches take the operands and must return the same structure
    of tensors with the same shapes and dtypes, and must not modify their inputs; they may
    read other tensors (module parameters, closed-over tensors). Under ``fw.compile`` /
    ONNX export both branches are captured and the choice is made at run time (a bool
    ``pred`` just picks its branch, as a Python ``if`` would).
    """
    flat, spec = _operands(operands, "cond", "operands")
    p = _check_pred(pred, "cond")
    if isinstance(p, bool):
        return (true_fn if p else false_fn)(*operands)
    if tls.tracer is None:
        return _eager_cond(p, true_fn, false_fn, operands, flat, spec)
    return _captured_cond(p, true_fn, false_fn, flat, spec)


def _eager_cond(pred, true_fn, false_fn, operands, flat, spec):
    """Without grad mode: the chosen branch, called. With it, as torch.cond: both branches
    are captured and one cond node joins the autograd graph, so every operand and tensor
    the branches read gets a gradient (zeros from the branch not taken) -- the same
    gradients, and the same optimizer updates, as a compiled step. A branch that needs
    data to be traced, or draws random numbers, is called directly instead."""
    if tls.grad_enabled:
        traced = _trace_eagerly("cond", true_fn, false_fn, flat, spec)
        if traced is not None:
            graphs, out_specs, free = traced
            _check_same_outputs(graphs, out_specs)
            if not any(_draws_random(g) for g in graphs):
                return unflatten_tree(out_specs[0], iter(_cond_op(pred, flat, free, *graphs)))
    else:
        _validate_eager(("cond", true_fn, false_fn), flat, spec)
    out = (true_fn if bool(pred) else false_fn)(*operands)
    _tensor_leaves(out, "cond", "the branch outputs")
    return out


def _captured_cond(pred, true_fn, false_fn, flat, spec):
    from compiler.subgraph import trace_functions
    graphs, out_specs, free = trace_functions(
        "cond", (("true_fn", true_fn), ("false_fn", false_fn)), flat, spec)
    _check_same_outputs(graphs, out_specs)
    outs = _cond_op(pred, flat, free, graphs[0], graphs[1])
    return unflatten_tree(out_specs[0], iter(outs))


def _cond_op(pred, flat, free, true_graph, false_graph) -> tuple:
    return apply(COND, pred, *flat, *free, true_graph=true_graph, false_graph=false_graph)


def _check_same_outputs(graphs, specs) -> None:
    t, f = graphs
    if specs[0] != specs[1]:
        raise ArgumentError(f"cond: true_fn and false_fn must return the same structure of "
                            f"tensors; true_fn returned {len(t.outputs)} tensor(s) as "
                            f"{_spec_str(specs[0])}, false_fn {len(f.outputs)} as "
                            f"{_spec_str(specs[1])}")
    if not t.outputs:
        raise ArgumentError("cond: the branches must return at least one tensor")
    for i, (a, b) in enumerate(zip(t.outputs, f.outputs)):
        both = f"({_type_str(a)} vs {_type_str(b)})"
        if a.dtype is not b.dtype:
            raise DTypeError(f"cond: output {i} has dtype {a.dtype.name} in true_fn but "
                             f"{b.dtype.name} in false_fn {both}")
        if tuple(a.shape) != tuple(b.shape):
            raise ShapeError(f"cond: output {i} has shape {list(a.shape)} in true_fn but "
                             f"{list(b.shape)} in false_fn {both}")


def _spec_str(spec) -> str:
    if spec is None:
        return "a tensor"
    kind, items = spec
    inner = ", ".join(f"{k}: {_spec_str(s)}" if kind is dict else _spec_str(s)
                      for k, s in (items if kind is dict else enumerate(items)))
    return {dict: "{%s}", list: "[%s]"}.get(kind, "(%s)") % inner


def _cond_meta(pred, *ins, true_graph, false_graph):
    """Output types of a cond node: the branches' outputs (checked against each other and
    the inputs against the subgraphs' inputs)."""
    _check_pred(pred, "cond")
    env = _bind("cond", "true_graph", true_graph, ins)
    _bind("cond", "false_graph", false_graph, ins)
    _check_types("cond", "true_graph outputs", true_graph.outputs, "false_graph outputs",
                 false_graph.outputs)
    return tuple((_subs(v.shape, env), v.dtype) for v in true_graph.outputs)


def _bind(what, name, graph, ins) -> dict:
    """Check the inputs against the subgraph's; return {subgraph size symbol: the size
    given} (a subgraph is traced with the sizes of its first call, symbolic or not, and
    the meta rule also runs with other sizes, e.g. concrete ones)."""
    import sympy
    if len(graph.inputs) != len(ins):
        raise ArgumentError(f"{what}: {name} takes {len(graph.inputs)} inputs, the node "
                            f"passes {len(ins)}")
    env: dict = {}
    for i, (x, v) in enumerate(zip(ins, graph.inputs)):
        ok = x.dtype is v.dtype and len(x.shape) == len(v.shape)
        for a, f in zip(x.shape, v.shape) if ok else ():
            if isinstance(f, sympy.Symbol) and env.setdefault(f, a) == a:
                continue
            ok = ok and _subs((f,), env)[0] == a
        if not ok:
            raise ShapeError(f"{what}: input {i} is {_type_str(x)} but {name} takes "
                             f"{_type_str(v)}")
    return env


def _subs(shape, env) -> tuple:
    import sympy
    out = []
    for s in shape:
        if isinstance(s, sympy.Basic) and env:
            s = s.xreplace({k: sympy.sympify(v) for k, v in env.items()})
        out.append(int(s) if isinstance(s, sympy.Basic) and s.is_Integer else s)
    return tuple(out)


def _check_types(what, a_name, a, b_name, b) -> None:
    if len(a) != len(b):
        raise ArgumentError(f"{what}: {len(a)} {a_name} but {len(b)} {b_name}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x.dtype is not y.dtype or tuple(x.shape) != tuple(y.shape):
            raise ShapeError(f"{what}: {a_name} {i} is {_type_str(x)} but {b_name} {i} is "
                             f"{_type_str(y)}")


def _run_graph(graph, raws) -> tuple:
    """``graph`` evaluated on raw buffers (no trace, no autograd): raw outputs."""
    from compiler.passes.autodiff import interpret

    from .device import device
    cpu = device("cpu")
    ins = [Tensor._wrap(r, v.dtype, v.device or cpu) for r, v in zip(raws, graph.inputs)]
    saved = tls.tracer, tls.grad_enabled
    tls.tracer, tls.grad_enabled = None, False
    try:
        outs = interpret(graph, ins)
    finally:
        tls.tracer, tls.grad_enabled = saved
    return tuple(o._data for o in outs)


def _run_cond(pred, *raws, true_graph, false_graph):
    """The cond kernel (CPU and CUDA): the chosen subgraph on the inputs."""
    return _run_graph(true_graph if _host_bool(pred) else false_graph, raws)


def _cond_vjp(grads, args, out, true_graph, false_graph):
    """The VJP of cond is a cond of the branches' VJPs (each one traced like a branch)."""
    grads = grads if isinstance(grads, tuple) else (grads,)
    pred, ins = args[0], args[1:]
    want = [i for i, x in enumerate(ins)
            if isinstance(x, Tensor) and x.requires_grad and x.dtype.is_differentiable]
    result = [None] * len(args)
    if not want:
        return tuple(result)
    for g in (true_graph, false_graph):
        if _draws_random(g):
            raise NotImplementedError("cond: backward through a branch that draws random "
                                      "numbers (dropout, rand) is not supported: the backward "
                                      "recomputes the branch and would draw again")
    create_graph = tls.grad_enabled  # the engine runs VJPs with grad mode = create_graph
    branches = [_vjp_branch(g, len(ins), want, create_graph) for g in (true_graph, false_graph)]
    operands = tuple(ins) + tuple(grads)
    if tls.tracer is None:
        res = branches[0 if _host_bool(pred._data) else 1](*operands)
    else:
        res = _captured_cond(pred, branches[0], branches[1], list(operands),
                             flatten_tree(operands, []))
    for i, g in zip(want, res):
        result[1 + i] = g
    return tuple(result)


def _vjp_branch(graph, n, want, create_graph):
    """A branch computing the gradients of ``graph`` for inputs ``want`` from
    (inputs..., cotangents...)."""
    def vjp_branch(*xs):
        from compiler.passes.autodiff import interpret

        from .autograd import enable_grad, grad
        from .creation import zeros_like
        wanted = set(want)
        prim = [x.detach().requires_grad_(True) if i in wanted else x
                for i, x in enumerate(xs[:n])]
        with enable_grad():
            outs = interpret(graph, prim)
            pairs = [(o, c) for o, c in zip(outs, xs[n:]) if o.requires_grad]
            targets = [prim[i] for i in want]
            gs = grad([o for o, _ in pairs], targets, [c for _, c in pairs],
                      allow_unused=True, create_graph=create_graph) if pairs \
                else [None] * len(targets)
        return tuple(zeros_like(t) if g is None else g for g, t in zip(gs, targets))
    return vjp_branch


def _draws_random(graph) -> bool:
    from .ops.registry import RANDOM
    for n in graph.nodes:
        if n.op.group == RANDOM:
            return True
        if any(_draws_random(a) for a in n.attrs.values() if hasattr(a, "nodes")):
            return True
    return False


# ---------------------------------------------------------------------------------------
# while_loop
def while_loop(cond_fn, body_fn, carried_inputs):
    """``while cond_fn(*vals): vals = body_fn(*vals)``, returning ``vals`` as a tuple
    (``torch.while_loop``).

    carried_inputs: a tuple/list of tensors. ``cond_fn`` returns a one-element bool tensor;
    ``body_fn`` returns as many tensors as it takes, each with the shape and dtype of the
    carried value it replaces. Both may read other tensors but must not modify their
    inputs. Under ``fw.compile`` / ONNX export the loop is captured (its trip count is
    data); gradients through a captured loop are not supported (as in PyTorch).
    """
    if not isinstance(carried_inputs, (tuple, list)) or not carried_inputs:
        raise FwTypeError("while_loop: carried_inputs must be a non-empty tuple or list of "
                          f"tensors, got {type(carried_inputs).__name__}"
                          f"{' (empty)' if isinstance(carried_inputs, (tuple, list)) else ''}")
    flat, _ = _tensor_leaves(tuple(carried_inputs), "while_loop", "carried_inputs")
    if len(flat) != len(carried_inputs):
        raise FwTypeError("while_loop: carried_inputs must be a flat tuple or list of tensors")
    if tls.tracer is None:
        spec = flatten_tree(tuple(flat), [])
        _validate_eager(("while_loop", cond_fn, body_fn), flat, spec)
        vals = tuple(flat)
        while _loop_pred(cond_fn(*vals)):
            vals = _check_body(body_fn(*vals), vals)
        return vals
    from compiler.subgraph import trace_functions
    spec = flatten_tree(tuple(flat), [])
    graphs, out_specs, free = trace_functions(
        "while_loop", (("cond_fn", cond_fn), ("body_fn", body_fn)), flat, spec)
    _check_loop_graphs(graphs, flat)
    return tuple(apply(WHILE_LOOP, *flat, *free, cond_graph=graphs[0], body_graph=graphs[1]))


def _loop_pred(p) -> bool:
    p = _check_pred(p, "while_loop", "the result of cond_fn")
    if isinstance(p, bool):
        raise FwTypeError("while_loop: cond_fn must return a one-element bool tensor, got a "
                          "Python bool")
    return bool(p)


def _check_body(new, vals) -> tuple:
    if not isinstance(new, (tuple, list)):
        new = (new,)
    leaves, _ = _tensor_leaves(tuple(new), "while_loop", "the outputs of body_fn")
    _check_types("while_loop", "carried inputs", vals, "outputs of body_fn", leaves)
    return tuple(leaves)


def _check_loop_graphs(graphs, flat) -> None:
    cg, bg = graphs
    if len(cg.outputs) != 1 or cg.outputs[0].dtype.name != "bool" or \
            any(not isinstance(s, int) for s in cg.outputs[0].shape) or \
            int(np.prod([int(s) for s in cg.outputs[0].shape])) != 1:
        got = ", ".join(_type_str(o) for o in cg.outputs)
        raise ArgumentError(f"while_loop: cond_fn must return one one-element bool tensor, "
                            f"got ({got})")
    _check_types("while_loop", "carried inputs", flat, "outputs of body_fn", bg.outputs)


def _while_meta(*ins, cond_graph, body_graph):
    """Output types of a while_loop node: the carried values' (the first inputs)."""
    k = len(body_graph.outputs)
    _bind("while_loop", "cond_graph", cond_graph, ins)
    env = _bind("while_loop", "body_graph", body_graph, ins)
    for i, (x, o) in enumerate(zip(ins, body_graph.outputs)):
        if x.dtype is not o.dtype or _subs(o.shape, env) != tuple(x.shape):
            raise ShapeError(f"while_loop: carried input {i} is {_type_str(x)} but "
                             f"body_graph returns {_type_str(o)}")
    return tuple((x.shape, x.dtype) for x in ins[:k])


def _run_while(*raws, cond_graph, body_graph):
    """The while_loop kernel (CPU and CUDA)."""
    k = len(body_graph.outputs)
    carried, free = tuple(raws[:k]), tuple(raws[k:])
    while _host_bool(_run_graph(cond_graph, carried + free)[0]):
        carried = _run_graph(body_graph, carried + free)
    return own_copies(carried, raws[:k])


def own_copies(final, initial) -> tuple:
    """``final`` with a copy of each buffer that is still the initial one (a loop that ran
    zero times must not return its inputs' memory as new values)."""
    return tuple(copy_buffer(f) if f is i else f for f, i in zip(final, initial))


def copy_buffer(buf):
    """A copy of a raw buffer (a NumPy array, or a device buffer)."""
    if not hasattr(buf, "data_ptr"):
        return np.array(buf, copy=True)
    from .backends import cuda
    out = cuda.empty(buf.shape, buf.dtype, buf.alloc.device)
    cuda.copy_into(out, buf)
    return out


def _while_vjp(grads, args, out, cond_graph, body_graph):
    raise NotImplementedError("while_loop: backward (gradients through the loop) is not "
                              "supported, as with torch.while_loop; compute the gradient of "
                              "an unrolled Python loop instead")


# ---------------------------------------------------------------------------------------
# eager checks: capture both functions once per (code, operand types), as torch.cond does
_CHECKED: dict = {}


def _validate_eager(key_fns, flat, spec) -> None:
    """Trace both functions on data-less stand-ins to check what they return (once per
    code and operand types); a function that needs data (``.item()``) is not checked."""
    what, f1, f2 = key_fns
    key = (what, _code(f1), _code(f2), spec,
           tuple((tuple(t.shape), t.dtype, str(t.device)) for t in flat))
    if key in _CHECKED:
        return
    traced = _trace_eagerly(what, f1, f2, flat, spec)
    if traced is None:
        return
    graphs, out_specs, _ = traced
    if what == "cond":
        _check_same_outputs(graphs, out_specs)
    else:
        _check_loop_graphs(graphs, flat)
    if len(_CHECKED) > 512:
        _CHECKED.clear()
    _CHECKED[key] = True


def _trace_eagerly(what, f1, f2, flat, spec):
    """(graphs, output structures, free tensors) of the two functions traced outside any
    capture (the random state is left as it was), or None when one needs data."""
    from compiler.subgraph import trace_functions

    from .errors import GraphBreak
    from .random import restore_all, snapshot_all
    names = ("true_fn", "false_fn") if what == "cond" else ("cond_fn", "body_fn")
    rng = snapshot_all()
    try:
        return trace_functions(what, tuple(zip(names, (f1, f2))), flat, spec)
    except GraphBreak:
        return None
    finally:
        restore_all(rng)


def _code(fn):
    f = getattr(fn, "__func__", fn)
    return getattr(f, "__code__", type(fn))


COND = register("cond", CONTROL, _cond_meta, vjp=_cond_vjp, num_outputs=None)
WHILE_LOOP = register("while_loop", CONTROL, _while_meta, vjp=_while_vjp, num_outputs=None)
for _dev in ("cpu", "cuda"):
    COND.impls[_dev] = _run_cond
    WHILE_LOOP.impls[_dev] = _run_while
