"""Batched evaluation for ``fw.vmap``: trace ``func`` on one sample, then run the graph on
the whole batch at once.

The trace is the compiler's capture (the one ``fw.grad`` uses), so ``func`` may call
``fw.grad``/``vjp``/``jvp`` and modules: their ops land in the graph as ordinary nodes.
Every node is then applied once with ``apply`` on batched values, which carry the batch as
their dim 0; a *batching rule* per op kind rewrites the node for that layout (elementwise
ops align ranks so broadcasting still pairs the per-sample dims, reductions and scans shift
their dims, ``matmul`` treats the batch as a broadcast dim, convolutions fold it into N,
...). A node without a rule runs once per sample and the results are stacked, as PyTorch's
fallback does. Values that do not depend on a mapped input stay unbatched.

Container and keyword arguments are flattened to their tensor leaves for the trace (a
dict of stacked parameters for model ensembling works). ``try_batched`` answers None when
this does not apply, and ``vmap`` then loops over the samples calling ``func`` itself:
functions that cannot be traced (Python control flow on tensor values, ``.item()``),
in-place updates of outside tensors, and random draws under ``randomness='error'`` (the
loop raises PyTorch's error).
"""

from __future__ import annotations

import contextlib

from ._state import tls
from .tensor import Tensor

# How vmap calls were served; read by tests and handy when profiling.
STATS = {"batched": 0, "loop": 0, "per_sample_nodes": 0, "batched_errors": 0}

_FAILED = object()
_ELEMENTWISE_GROUPS = ("unary", "binary", "ternary", "cast")
_ELEMENTWISE_COMPOSITES = ("gelu", "polygamma")


# ---------------------------------------------------------------------------------------
# tracing one sample
class _Flat:
    """``func`` over the tensor leaves of its arguments: containers (a dict of stacked
    parameters, JAX/torch.func style) and keyword arguments are rebuilt around the leaves,
    and the other leaves (numbers, strings, modules) are baked into the trace."""

    def __init__(self, func, args, kwargs):
        from .func_vmap import _leaves
        self.func = func
        self.tree = (tuple(args), dict(kwargs))
        leaves = _leaves(self.tree)
        self.paths = [p for p, x in leaves if isinstance(x, Tensor)]
        self.tensors = [x for _, x in leaves if isinstance(x, Tensor)]
        others = [(p, x) for p, x in leaves if not isinstance(x, Tensor)]
        # the call with its tensors left out (part of the cache key): numbers and strings
        # by value, anything else (a module, a dtype) by identity
        self.skeleton = tuple((p, (type(x).__name__, x) if _is_plain(x) else _Same(x))
                              for p, x in others)
        self.objects = tuple(x for _, x in others if not _is_plain(x))

    def __call__(self, *tensors):
        from .func_vmap import _replace
        args, kwargs = _replace(self.tree, dict(zip(self.paths, tensors)))
        return self.func(*args, **kwargs)


def _is_plain(x) -> bool:
    return x is None or isinstance(x, (bool, int, float, complex, str))


class _Same:
    """A key part equal only to itself's object (identity), keeping it alive."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def _capture(flat, mapped_dims, cache):
    """The capture of ``flat`` on one sample (cached), or None."""
    from compiler.capture import discover, trace
    from compiler.guards import static_key
    sample = tuple(t.select(mapped_dims[i], 0) if i in mapped_dims else t
                   for i, t in enumerate(flat.tensors))
    key, _ = static_key(sample, {}, set(), set())
    key = (key, tuple(sorted(mapped_dims.items())), flat.skeleton, tuple(flat.paths))
    hit = cache.get(key)
    if hit is not None and not hit[1].holds():
        hit = None  # func reads a name that was rebound since: trace again
    if hit is None:
        from compiler.guards import ClosureGuard
        try:
            names, _ = discover(flat, sample)
            cap = trace(flat, sample, names=names, specialize_floats=True, lift_free=True)
        except Exception:  # noqa: BLE001  (vmap's loop calls func itself: its real error)
            cap = None
        if cap is None or not _batchable(cap):
            cap = _FAILED
        # what func reads besides its arguments, and the modules passed as arguments
        # (their parameters are baked into the trace): the rest of the call is the key
        reads = () if cap is _FAILED else cap.attr_reads
        hit = cache[key] = (cap, ClosureGuard(flat.func, flat.objects, reads))
    return None if hit[0] is _FAILED else hit[0]


def _batchable(cap) -> bool:
    from .ops.registry import RANDOM
    g = cap.graph
    cap.draws = any(n.op.group == RANDOM for n in g.nodes)
    return (not g.mutations and not g.grad_writes
            and all(len(p) == 2 for p in cap.arg_paths)
            # a Python number computed from a runtime scalar is per call
            and all(leaf.kind != "s" for leaf in _out_leaf_list(cap.out_tree)))


def try_batched(func, args, kwargs, mapped, size, cache, randomness="error"):
    """The outputs of ``func`` over the batch as a tree of batched tensors (batch first;
    a leaf that does not depend on a mapped input is expanded), or None when the batched
    evaluation does not apply (see the module docstring). Random draws: one draw shared
    by every sample with ``randomness='same'``, a batch of draws with ``'different'``;
    with ``'error'`` the loop raises PyTorch's error."""
    from compiler.capture import map_tree
    flat = _Flat(func, args, kwargs)
    at = {(0,) + tuple(p): (t, d) for p, t, d in mapped}
    mapped_dims = {i: at[p][1] for i, p in enumerate(flat.paths) if p in at}
    cap = _capture(flat, mapped_dims, cache)
    if cap is None or (cap.draws and randomness == "error"):
        return None
    inputs = []
    for path in cap.arg_paths:
        i = path[1]
        t = flat.tensors[i]
        inputs.append((t.movedim(mapped_dims[i], 0), True) if i in mapped_dims else (t, False))
    inputs += [(t, False) for t in cap.lifted]
    try:
        outs = _run(cap.graph, inputs, size, randomness == "different")
    except Exception:  # noqa: BLE001  (a case no rule foresaw: the loop gives the answer)
        STATS["batched_errors"] += 1
        return None
    STATS["batched"] += 1

    def leaf(x):
        if x.kind != "v":
            return x.x
        t, batched = outs[x.x]
        if not isinstance(t, Tensor):
            return t
        return t if batched else _expand_batch(t, False, size).clone()
    return map_tree(cap.out_tree, leaf)


def _out_leaf_list(tree) -> list:
    from compiler.capture import map_tree
    found: list = []
    map_tree(tree, found.append)
    return found


# ---------------------------------------------------------------------------------------
# the batched interpreter
@contextlib.contextmanager
def _replaying_no_grad(node):
    if not node.no_grad:
        yield
        return
    saved = tls.grad_enabled, tls.replaying_no_grad
    tls.grad_enabled, tls.replaying_no_grad = False, True
    try:
        yield
    finally:
        tls.grad_enabled, tls.replaying_no_grad = saved


def _apply(node, args, attrs):
    from .ops.registry import apply
    if node.op.name == "reshape":  # traced on data-less tensors: may need a copy here
        return args[0].reshape(attrs["shape"])
    return apply(node.op, *args, **attrs)


def _run(graph, inputs, size, draws_per_sample=False):
    """[(value, batched)] of ``graph``'s outputs for ``inputs`` [(value, batched)]; random
    draws are made once per sample with ``draws_per_sample``, else once for all."""
    from compiler.ir import Value

    from .ops.registry import RANDOM
    env: dict = dict(zip(graph.inputs, inputs))
    for v, t in graph.constants.items():
        env[v] = (t, False)
    saved, tls.autocast = tls.autocast, None  # the graph holds autocast's casts already
    try:
        for n in graph.nodes:
            pairs = [env[x] if isinstance(x, Value) else (x, False) for x in n.inputs]
            args = [p[0] for p in pairs]
            flags = [p[1] for p in pairs]
            with _replaying_no_grad(n):
                if draws_per_sample and n.op.group == RANDOM:
                    attrs = dict(n.attrs, shape=(size,) + tuple(n.attrs["shape"]))
                    out, batched = _apply(n, args, attrs), True
                elif not any(flags):
                    out, batched = _apply(n, args, n.attrs), False
                else:
                    out, batched = _batched_node(n, args, flags, size), True
            outs = out if n.op.num_outputs != 1 else (out,)
            for v, t in zip(n.outputs, outs):
                env[v] = (t, batched)
    finally:
        tls.autocast = saved
    return [env[o] if isinstance(o, Value) else (o, False) for o in graph.outputs]


def _batched_node(n, args, flags, size):
    rule = _RULES.get(n.op.name) or _GROUP_RULES.get(n.op.group)
    if rule is not None:
        out = rule(n, args, flags, size)
        if out is not None:
            return out
    return _per_sample(n, args, flags, size)


def _per_sample(n, args, flags, size):
    """The fallback: the node once per sample, outputs stacked along a new dim 0."""
    from .ops import stack
    STATS["per_sample_nodes"] += 1
    results = []
    for i in range(size):
        sample = [a.select(0, i) if b else a for a, b in zip(args, flags)]
        results.append(_apply(n, sample, n.attrs))
    if n.op.num_outputs != 1:  # None: as many as the node has (cond, while_loop)
        return tuple(stack([r[k] for r in results]) for k in range(len(n.outputs)))
    return stack(results)


# ---------------------------------------------------------------------------------------
# batching rules: (node, args, flags, size) -> batched output(s), or None for the fallback
def _rank(x) -> int:
    return len(x.shape)


def _align(t, batched, rank):
    """A batched ``t`` with ones inserted after the batch dim, so its per-sample rank is
    ``rank`` (broadcasting then pairs per-sample dims); unbatched values unchanged."""
    if not batched or not isinstance(t, Tensor):
        return t
    extra = rank - (t.ndim - 1)
    if extra <= 0:
        return t
    return t.reshape((t.shape[0],) + (1,) * extra + tuple(t.shape[1:]))


def _expand_batch(t, batched, size):
    """``t`` with a leading batch dim (an expanded view when it had none)."""
    if batched:
        return t
    return t.unsqueeze(0).expand((size,) + tuple(t.shape))


def _elementwise(n, args, flags, size):
    rank = _rank(n.outputs[0])
    aligned = [_align(a, b, rank) for a, b in zip(args, flags)]
    return _apply(n, aligned, n.attrs)


def _shift(n, args, flags, size, key):
    """Ops whose attrs name per-sample dims (``dims`` tuple or ``dim`` int): add one."""
    if not flags[0] or any(flags[1:]):
        return None
    value = n.attrs[key]
    shifted = tuple(d + 1 for d in value) if isinstance(value, tuple) else value + 1
    return _apply(n, args, dict(n.attrs, **{key: shifted}))


def _shift_normalized(n, args, flags, size, key):
    """Like :func:`_shift` for attrs that may hold negative dims (the fft primitives)."""
    if not flags[0] or any(flags[1:]):
        return None
    rank = _rank(n.inputs[0])
    value = n.attrs[key]
    shifted = tuple(d % rank + 1 for d in value) if isinstance(value, tuple) \
        else value % rank + 1
    return _apply(n, args, dict(n.attrs, **{key: shifted}))


def _reshape(n, args, flags, size):
    return args[0].reshape((size,) + tuple(n.attrs["shape"]))


def _expand(n, args, flags, size):
    out = tuple(n.outputs[0].shape)
    return _align(args[0], True, len(out)).expand((size,) + out)


def _permute(n, args, flags, size):
    return _apply(n, args, {"dims": (0,) + tuple(d + 1 for d in n.attrs["dims"])})


def _slice(n, args, flags, size):
    a = n.attrs
    return _apply(n, args, {"starts": (0,) + tuple(a["starts"]),
                            "stops": (size,) + tuple(a["stops"]),
                            "steps": (1,) + tuple(a["steps"])})


def _same_layout(n, args, flags, size):
    """Ops on trailing dims only (``pad``, ``trilu``, ``clone``, ``detach``, and
    ``layer_norm`` with shared weight and bias)."""
    return _apply(n, args, n.attrs) if flags[0] and not any(flags[1:]) else None


def _cat(n, args, flags, size):
    tensors = [_expand_batch(a, b, size) for a, b in zip(args, flags)]
    return _apply(n, tensors, dict(n.attrs, dim=n.attrs["dim"] + 1))


def _index_dim(n, args, flags, size):
    """gather / scatter / scatter_add / scatter_reduce: every tensor operand batched."""
    tensors = [_expand_batch(a, b, size) if isinstance(a, Tensor) else a
               for a, b in zip(args, flags)]
    return _apply(n, tensors, dict(n.attrs, dim=n.attrs["dim"] + 1))


def _matmul(n, args, flags, size):
    (a, b), (fa, fb) = args, flags
    ra, rb = _rank(n.inputs[0]), _rank(n.inputs[1])
    if ra == 1:  # (k) as (1, k)
        a = a.unsqueeze(-2)
    if rb == 1:  # (k) as (k, 1)
        b = b.unsqueeze(-1)
    rank = max(ra, rb, 2)
    out = _apply(n, [_align(a, fa, rank), _align(b, fb, rank)], n.attrs)
    if rb == 1:
        out = out.squeeze(-1)
    if ra == 1:
        out = out.squeeze(-1 if rb == 1 else -2)
    return out


def _einsum(n, args, flags, size):
    eq = n.attrs["equation"].replace(" ", "")
    if "->" not in eq:
        return None
    lhs, rhs = eq.split("->")
    letter = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA"
                  if c not in eq)
    terms = [letter + t if f else t for t, f in zip(lhs.split(","), flags)]
    return _apply(n, args, {"equation": ",".join(terms) + "->" + letter + rhs})


def _fold_into_n(n, args, flags, size):
    """conv / conv_transpose / max_pool: the batch joins dim N of the input."""
    if not flags[0] or any(flags[1:]):
        return None
    x = args[0]
    folded = x.reshape((size * x.shape[1],) + tuple(x.shape[2:]))
    out = _apply(n, [folded] + list(args[1:]), n.attrs)

    def unfold(t):
        return t.reshape((size, x.shape[1]) + tuple(t.shape[1:]))
    return tuple(unfold(t) for t in out) if n.op.num_outputs > 1 else unfold(out)


def _fold_rows(n, args, flags, size):
    """``cross_entropy(logits (N, C), target (N,))``: the batch joins the rows."""
    logits, target = (_expand_batch(a, b, size) for a, b in zip(args, flags))
    rows = size * logits.shape[1]
    out = _apply(n, [logits.reshape((rows,) + tuple(logits.shape[2:])),
                     target.reshape((rows,))], n.attrs)
    return out.reshape((size, logits.shape[1]))


def _batched_key(key):
    """``key`` for a leading batch dim, or None: a full slice in front is exact unless
    the key's advanced entries (index tensors, and ints beside them) are split apart,
    which would move the broadcast index dims to the front."""
    from .ops.indexing import TensorSlot
    if any(isinstance(k, TensorSlot) for k in key):
        adv = [d for d, k in enumerate(key) if not isinstance(k, slice) and k is not None]
        if adv != list(range(adv[0], adv[-1] + 1)):
            return None
    return (slice(None),) + tuple(key)


def _index(n, args, flags, size):
    """``x[key]`` with a batched ``x`` and shared index tensors."""
    key = _batched_key(n.attrs["key"])
    if key is None or not flags[0] or any(flags[1:]):
        return None
    return _apply(n, args, {"key": key})


def _index_put(n, args, flags, size):
    """``x[key] = v`` (``+=``) with shared index tensors; ``x`` and ``v`` may be batched."""
    key = _batched_key(n.attrs["key"])
    if key is None or any(flags[2:]):
        return None
    x, v = args[0], args[1]
    x = _expand_batch(x, flags[0], size)
    if isinstance(v, Tensor) and flags[1]:
        v = _align(v, True, _target_rank(n))
    return _apply(n, [x, v] + list(args[2:]), dict(n.attrs, key=key))


def _target_rank(n) -> int:
    """Rank of ``x[key]`` per sample (what ``index_put``'s value broadcasts to)."""
    from .ops.indexing import _key_shape
    x = n.inputs[0]
    return len(_key_shape(x.shape, n.attrs["key"], [t.shape for t in n.inputs[2:]]))


def _conv_per_sample_weight(n, args, flags, size):
    """``conv`` with a batched weight (per-sample models, or the weight gradient of a
    per-sample conv): the batch becomes groups, ``(N, B*C, ...)`` against ``(B*Co, ...)``."""
    x, w = args[0], args[1]
    if len(args) != 2 or not flags[1]:
        return None
    x = _expand_batch(x, flags[0], size)
    groups = n.attrs["groups"]
    rows, chans = x.shape[1], x.shape[2]
    xg = x.movedim(0, 1).reshape((rows, size * chans) + tuple(x.shape[3:]))
    wg = w.reshape((size * w.shape[1],) + tuple(w.shape[2:]))
    out = _apply(n, [xg, wg], dict(n.attrs, groups=groups * size))
    out = out.reshape((rows, size, w.shape[1]) + tuple(out.shape[2:]))
    return out.movedim(1, 0)


def _conv(n, args, flags, size):
    if flags[1]:
        return _conv_per_sample_weight(n, args, flags, size)
    return _fold_into_n(n, args, flags, size)


def _recurrent(n, args, flags, size):
    """lstm / gru / rnn ``(x (T, N, I), h0 (N, H)[, c0], weights...)``: the batch joins N.
    Weights must be shared (unbatched)."""
    states = 3 if n.op.name == "lstm" else 2
    if any(flags[states:]):
        return None
    x, *h = (_expand_batch(a, b, size) for a, b in zip(args[:states], flags[:states]))
    t_len, rows = x.shape[1], x.shape[2]
    x = x.movedim(0, 1).reshape((t_len, size * rows) + tuple(x.shape[3:]))
    h = [s.reshape((size * rows,) + tuple(s.shape[2:])) for s in h]
    ys, *hs = _apply(n, [x, *h] + list(args[states:]), n.attrs)
    ys = ys.reshape((t_len, size, rows) + tuple(ys.shape[2:])).movedim(1, 0)
    return (ys, *(s.reshape((size, rows) + tuple(s.shape[1:])) for s in hs))


def _leading_unbatched(n, args, flags, size):
    """``embedding(weight, indices)``: per-sample indices pick rows of a shared table."""
    return _apply(n, args, n.attrs) if not flags[0] and flags[1] and not any(flags[2:]) \
        else None


def _batch_dims(n, args, flags, size):
    """linalg ops: leading dims are batch dims already; every operand gets the batch."""
    return _apply(n, [_expand_batch(a, b, size) if isinstance(a, Tensor) else a
                      for a, b in zip(args, flags)], n.attrs)


_GROUP_RULES = {g: _elementwise for g in _ELEMENTWISE_GROUPS}
_GROUP_RULES["linalg"] = _batch_dims
_GROUP_RULES["reduce"] = lambda n, a, f, s: _shift(n, a, f, s, "dims")
_GROUP_RULES["scan"] = lambda n, a, f, s: _shift(n, a, f, s, "dim")
_RULES = {name: _elementwise for name in _ELEMENTWISE_COMPOSITES}
_RULES.update({
    "softmax": _GROUP_RULES["scan"], "log_softmax": _GROUP_RULES["scan"],
    "flip": lambda n, a, f, s: _shift(n, a, f, s, "dims"),
    "reshape": _reshape, "expand": _expand, "permute": _permute, "slice": _slice,
    "pad": _same_layout, "trilu": _same_layout, "clone": _same_layout,
    "detach": _same_layout, "layer_norm": _same_layout, "cat": _cat,
    "gather": _index_dim, "scatter": _index_dim, "scatter_add": _index_dim,
    "scatter_reduce": _index_dim, "matmul": _matmul, "einsum": _einsum,
    "conv": _conv, "conv_transpose": _fold_into_n, "max_pool": _fold_into_n,
    "index": _index, "index_put": _index_put,
    "embedding": _leading_unbatched, "cross_entropy": _fold_rows,
    "lstm": _recurrent, "gru": _recurrent, "rnn": _recurrent,
    # complex numbers: elementwise, or acting on a trailing pair dim
    "conj": _elementwise, "real": _elementwise, "imag": _elementwise,
    "complex": _elementwise, "complex_angle": _elementwise,
    "view_as_real": _same_layout, "view_as_complex": _same_layout,
    "fft_c2c": lambda n, a, f, s: _shift_normalized(n, a, f, s, "dims"),
    "fft_r2c": lambda n, a, f, s: _shift_normalized(n, a, f, s, "dim"),
    "fft_c2r": lambda n, a, f, s: _shift_normalized(n, a, f, s, "dim"),
})
