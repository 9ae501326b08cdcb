"""``fw.vmap`` (``torch.vmap`` / ``torch.func.vmap``): map a function over a batch dimension.

Two ways, the same values. Batched (framework/func_batching.py): ``func`` is traced once
on one sample and its graph runs on the whole batch, op by op, through batching rules (an
op without a rule runs per sample and is stacked). Loop: ``func`` runs once per index of
the mapped dimension on that slice of every mapped argument (a view from ``unbind``) and the
per-sample outputs are stacked along ``out_dims``; it serves whatever the trace cannot:
Python control flow on tensor values and in-place updates of outside tensors (and raises
``randomness='error'``'s error for random draws). Both
let autograd flow, nest, and record into an enclosing ``fw.compile`` capture.
``chunk_size`` splits the batched evaluation into chunks of that many samples.
"""

from __future__ import annotations

import functools

from .errors import ArgumentError, FwTypeError, TransformError
from .func_batching import STATS, try_batched
from .tensor import Tensor

__all__ = ["vmap"]

_RANDOMNESS = ("error", "different", "same")


# ---------------------------------------------------------------------------------------
# pytrees (tuples, lists, namedtuples, dicts) with paths
def _is_node(x) -> bool:
    return isinstance(x, (tuple, list, dict))


def _children(x):
    return list(x.items()) if isinstance(x, dict) else list(enumerate(x))


def _rebuild(like, items):
    if isinstance(like, dict):
        return dict(zip(like.keys(), items))
    if isinstance(like, tuple) and hasattr(like, "_fields"):
        return type(like)(*items)
    return type(like)(items)


def _leaves(tree, path=()):
    """[(path, leaf)] of ``tree`` in order."""
    if not _is_node(tree):
        return [(path, tree)]
    out = []
    for k, x in _children(tree):
        out += _leaves(x, path + (k,))
    return out


def _structure(tree) -> str:
    """A short description of a tree's structure (leaves as ``*``), for error messages."""
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_structure(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, (tuple, list)):
        inner = ", ".join(_structure(v) for v in tree)
        return f"[{inner}]" if isinstance(tree, list) else \
            f"({inner}{',' if len(tree) == 1 else ''})"
    return "*"


def _broadcast(prefix, tree, path=()):
    """``prefix`` (an int/None at a subtree means that value for all its leaves) expanded
    to one dim per leaf of ``tree``: [(path, leaf, dim)]; None when they do not fit."""
    if prefix is None or (isinstance(prefix, int) and not isinstance(prefix, bool)):
        return [(p, leaf, prefix) for p, leaf in _leaves(tree, path)]
    if isinstance(prefix, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(prefix) != len(tree):
            return None
        out = []
        for i, (d, t) in enumerate(zip(prefix, tree)):
            sub = _broadcast(d, t, path + (i,))
            if sub is None:
                return None
            out += sub
        return out
    if isinstance(prefix, dict) and isinstance(tree, dict):
        if set(prefix) != set(tree):
            return None
        out = []
        for k, t in tree.items():
            sub = _broadcast(prefix[k], t, path + (k,))
            if sub is None:
                return None
            out += sub
        return out
    return None


def _replace(tree, new: dict, path=()):
    """``tree`` with the leaves at the paths in ``new`` replaced."""
    if path in new:
        return new[path]
    if not _is_node(tree):
        return tree
    return _rebuild(tree, [_replace(x, new, path + (k,)) for k, x in _children(tree)])


def _path_str(path) -> str:
    return "args" + "".join(f"[{p!r}]" for p in path)


def _name(f) -> str:
    return getattr(f, "__name__", type(f).__name__)


# ---------------------------------------------------------------------------------------
# random number generator state (to detect or repeat random draws per sample)
def _rng_state():
    from .random import snapshot_all
    return snapshot_all()


def _set_rng_state(state) -> None:
    from .random import restore_all
    restore_all(state)


# ---------------------------------------------------------------------------------------
def _mapped_inputs(func, in_dims, args):
    """[(path, tensor, dim)] of the mapped arguments (dims made non-negative) and the
    batch size, after checking in_dims against the arguments."""
    fname = _name(func)
    head = f"vmap({fname}, in_dims={in_dims}, ...)(<inputs>)"
    if not isinstance(in_dims, (int, tuple, list)) or isinstance(in_dims, bool):
        raise ArgumentError(f"vmap({fname}, in_dims={in_dims}, ...): expected `in_dims` to be "
                            "int or a (potentially nested) tuple matching the structure of "
                            f"inputs, got: {type(in_dims).__name__}")
    if not args:
        raise ArgumentError(f"vmap({fname})(<inputs>): got no inputs. Maybe you forgot to add "
                            "inputs, or you are trying to vmap over a function with no "
                            "inputs; the latter is unsupported")
    if isinstance(in_dims, (tuple, list)) and len(in_dims) != len(args):
        raise ArgumentError(f"{head}: expected one in_dim per input (got {len(in_dims)} "
                            f"in_dims for {len(args)} inputs)")
    flat = _broadcast(in_dims if isinstance(in_dims, int) else tuple(in_dims), tuple(args))
    if flat is None:
        raise ArgumentError(f"{head}: in_dims is not compatible with the structure of "
                            f"`inputs`. in_dims has structure {_structure(in_dims)} but "
                            f"inputs has structure {_structure(tuple(args))}")
    mapped = []
    for path, leaf, d in flat:
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ArgumentError(f"{head}: in_dims must hold ints or None, got "
                                f"{type(d).__name__} for {_path_str(path)}")
        if not isinstance(leaf, Tensor):
            raise ArgumentError(f"{head}: got in_dim={d} for {_path_str(path)}, but it is of "
                                f"type {type(leaf).__name__}. We cannot vmap over non-Tensor "
                                "arguments, please use None as the respective in_dim")
        if leaf.dim() == 0 or not -leaf.dim() <= d < leaf.dim():
            raise ArgumentError(f"{head}: got in_dim={d} for {_path_str(path)}, but it is a "
                                f"Tensor of dimensionality {leaf.dim()} so expected in_dim to "
                                f"satisfy -{leaf.dim()} <= in_dim < {leaf.dim()}")
        mapped.append((path, leaf, d % leaf.dim()))
    if not mapped:
        raise ArgumentError(f"{head}: at least one input must be a Tensor to vmap over "
                            "(every in_dim is None)")
    sizes = [t.shape[d] for _, t, d in mapped]
    if any(s != sizes[0] for s in sizes):
        which = ", ".join(f"{_path_str(p)} (dim {d}): {t.shape[d]}" for p, t, d in mapped)
        raise ArgumentError(f"vmap: Expected all tensors to have the same size in the mapped "
                            f"dimension, got sizes {sizes} for the mapped dimension ({which})")
    return mapped, sizes[0]


def _out_leaves(func, out_dims, first):
    """[(path, leaf, out_dim)] of one sample's output tree, checked against ``out_dims``."""
    fname = _name(func)
    flat = _broadcast(out_dims, first)
    if flat is None and isinstance(out_dims, tuple) and len(out_dims) == 1:
        flat = _broadcast(out_dims[0], first)  # out_dims=(0,) for a single output
    if flat is None:
        raise ArgumentError(f"vmap({fname}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                            "not compatible with the structure of `outputs`. out_dims has "
                            f"structure {_structure(out_dims)} but outputs has structure "
                            f"{_structure(first)}")
    for _, leaf, d in flat:
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ArgumentError(f"vmap({fname}, ..., out_dims={out_dims}): out_dims must hold "
                                f"ints or None, got {type(d).__name__}")
        if not isinstance(leaf, Tensor):
            raise ArgumentError(f"vmap({fname}, ...): `{fname}` must only return Tensors, got "
                                f"type {type(leaf).__name__}. Did you mean to set out_dims= "
                                "to None for output?")
    return flat


def _check_out_dim(func, out_dims, d, rank):
    if not -(rank + 1) <= d <= rank:
        raise ArgumentError(f"vmap({_name(func)}, ..., out_dims={out_dims}): dimension out of "
                            f"range (expected to be in range of [{-(rank + 1)}, {rank}], but "
                            f"got {d}) for an output of {rank} dimensions")


def _stack_outputs(func, out_dims, outs):
    """Stack the per-sample outputs ``outs`` (one tree each) along ``out_dims``."""
    from .ops import stack
    first = outs[0]
    flat = _out_leaves(func, out_dims, first)
    per_sample = [_leaves(o) for o in outs]
    if any(len(ls) != len(flat) for ls in per_sample):
        fname = _name(func)
        raise ArgumentError(f"vmap({fname}, ...): `{fname}` returned outputs of different "
                            "structures for different samples")
    new = {}
    for k, (path, leaf, d) in enumerate(flat):
        if d is None:
            new[path] = leaf  # not batched: the value of the first sample, as PyTorch's
            continue
        items = [ls[k][1] for ls in per_sample]
        bad = next((x for x in items if not isinstance(x, Tensor)), None)
        if bad is not None:
            _out_leaves(func, out_dims, _replace(first, {path: bad}))  # raises
        _check_out_dim(func, out_dims, d, items[0].dim())
        new[path] = stack(items, dim=d)
    return _replace(first, new)


def _place_outputs(func, out_dims, tree):
    """The batched outputs ``tree`` (batch first) with the batch moved to ``out_dims``."""
    new = {}
    for path, leaf, d in _out_leaves(func, out_dims, tree):
        if d is None:
            new[path] = leaf.select(0, 0) if isinstance(leaf, Tensor) else leaf
            continue
        _check_out_dim(func, out_dims, d, leaf.dim() - 1)
        new[path] = leaf if d in (0, -leaf.dim()) else leaf.movedim(0, d)
    return _replace(tree, new)


def _chunked(func, args, kwargs, mapped, size, chunk_size, captures, randomness):
    """The batched outputs computed ``chunk_size`` samples at a time (bounding the memory
    of the batched values), concatenated; None when the batched evaluation does not apply.
    With ``randomness='same'`` every chunk starts from the same generator state."""
    from .ops import cat
    start_state = _rng_state() if randomness == "same" else None
    trees = []
    for start in range(0, size, chunk_size):
        n = min(chunk_size, size - start)
        part = [(p, t.narrow(d, start, n), d) for p, t, d in mapped]
        if start_state is not None and start:
            _set_rng_state(start_state)
        tree = try_batched(func, _replace(tuple(args), {p: t for p, t, _ in part}), kwargs,
                           part, n, captures, randomness)
        if tree is None:
            return None
        trees.append(tree)
    leaves = [dict(_leaves(t)) for t in trees]
    return _replace(trees[0], {p: cat([lv[p] for lv in leaves]) if isinstance(x, Tensor)
                               else x for p, x in leaves[0].items()})


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``func`` mapped over a dimension of its inputs (``torch.vmap``).

    ``in_dims``: per positional argument the dimension to map over, or None to pass the
    argument unchanged to every call; an int applies to every argument, and a nested
    tuple/list/dict matching an argument's structure gives a dim per leaf. All mapped
    tensors must have the same size along their mapped dim. Keyword arguments are never
    mapped. ``out_dims``: where the mapped dimension goes in each output (an int, or a
    tree matching the outputs; negative dims count from the end of the output); None
    returns an output of the first sample unbatched (non-Tensor outputs need it).
    ``func`` may return a Tensor or a tuple/list/dict of Tensors.

    ``randomness``: ``'error'`` raises when ``func`` draws from the default generators
    (checked by comparing their state before and after each call; draws from an explicit
    ``generator=`` are not seen), ``'different'`` gives each sample its own draws and
    ``'same'`` the same draws for every sample (the generators are rewound before each
    call). ``chunk_size`` (None or a positive int): evaluate that many samples at a time
    and concatenate, bounding the memory of the batched values.

    Implementation note: ``func`` is traced on one sample and run batched where it can
    be, else called per sample (see the module docstring); either way the results match
    an explicit loop, and gradients (``backward``, ``fw.grad`` inside or outside) flow
    through it.
    """
    if randomness not in _RANDOMNESS:
        raise ArgumentError("Only allowed values for randomness are 'error', 'different', or "
                            f"'same'. Got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ArgumentError(f"vmap: chunk_size should be None or greater than 0. (got "
                            f"{chunk_size})")
    if not callable(func):
        raise FwTypeError(f"vmap: expected `func` to be callable, got {type(func).__name__}")

    captures: dict = {}  # per argument signature: func traced on one sample

    def wrapped(*args, **kwargs):
        mapped, size = _mapped_inputs(func, in_dims, args)
        if size == 0:
            raise ArgumentError(f"vmap({_name(func)}, ...): the mapped dimension has size 0; "
                                "vmap needs at least one sample to know the output shapes")
        if chunk_size is not None and size > chunk_size:
            tree = _chunked(func, args, kwargs, mapped, size, chunk_size, captures,
                            randomness)
        else:
            tree = try_batched(func, args, kwargs, mapped, size, captures, randomness)
        if tree is not None:
            return _place_outputs(func, out_dims, tree)
        STATS["loop"] += 1
        slices = [(path, t.unbind(d)) for path, t, d in mapped]
        start = None if randomness == "different" else _rng_state()
        outs = []
        for i in range(size):
            sample = _replace(tuple(args), {path: s[i] for path, s in slices})
            if randomness == "same" and i > 0:
                _set_rng_state(start)
            outs.append(func(*sample, **kwargs))
            if randomness == "error" and _rng_state() != start:
                _set_rng_state(start)
                raise TransformError("vmap: called random operation while in randomness "
                                     "error mode. Please either use the 'same' or 'different' "
                                     "randomness flags on vmap or perform the randomness "
                                     "operation out of vmap")
        return _stack_outputs(func, out_dims, outs)

    return functools.wraps(func, updated=())(wrapped)
