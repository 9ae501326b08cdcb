"""Shape arithmetic shared by the meta rules: dims, broadcasting, strides.

Sizes are ints or sympy expressions (symbolic dims from the compiler); these helpers
never assume ints except where a value must be known (then they say so).
"""

from __future__ import annotations

from ..errors import ArgumentError, FwTypeError, ShapeError

_BROADCAST_CACHE: dict = {}


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` in ``[-ndim, ndim)`` -> a non-negative dim (0-d tensors accept 0 and -1)."""
    n = max(ndim, 1)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise ArgumentError(f"{op}: dim must be an int, got {dim!r}")
    if dim < -n or dim >= n:
        raise ArgumentError(f"{op}: dimension out of range (expected to be in range of "
                            f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def normalize_dims(dims, ndim: int, op: str) -> tuple:
    """``dim`` argument (None, int, or a sequence) -> sorted tuple of non-negative dims."""
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        dims = (dims,)
    out = tuple(sorted(normalize_dim(d, ndim, op) for d in dims))
    if len(set(out)) != len(out):
        raise ArgumentError(f"{op}: dim {tuple(dims)} appears multiple times in the list of dims")
    return out if ndim else ()


def _broadcast_uncached(a0: tuple, b0: tuple, op: str) -> tuple:
    n = max(len(a0), len(b0))
    a = (1,) * (n - len(a0)) + tuple(a0)
    b = (1,) * (n - len(b0)) + tuple(b0)
    out = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif not (isinstance(x, int) and isinstance(y, int)):
            out.append(x if isinstance(y, int) else y)  # symbolic: assume they agree
        else:
            raise ShapeError(f"{op}: shapes {list(a0)} and {list(b0)} are not broadcastable "
                             f"(size {x} vs {y} at dim {i - n})")
    return tuple(out)


def broadcast_shapes(a: tuple, b: tuple, op: str = "broadcast") -> tuple:
    """NumPy/PyTorch broadcasting of two shapes; ShapeError naming ``op`` if they clash."""
    if a == b:
        return a
    key = (a, b)
    r = _BROADCAST_CACHE.get(key)
    if r is None:
        r = _broadcast_uncached(a, b, op)
        if len(_BROADCAST_CACHE) < 4096:
            _BROADCAST_CACHE[key] = r
    return r


def broadcast_many(shapes, op: str) -> tuple:
    """Broadcast any number of shapes."""
    out = ()
    for s in shapes:
        out = broadcast_shapes(out, s, op)
    return out


def contiguous_strides(shape) -> tuple:
    """Row-major strides in elements."""
    strides = []
    acc = 1
    for s in reversed(shape):
        strides.append(acc)
        acc = acc * s
    return tuple(reversed(strides))


def prod(values):
    """Product of sizes (int or sympy)."""
    out = 1
    for v in values:
        out = out * v
    return out


def infer_reshape(shape, numel, op: str = "reshape") -> tuple:
    """Resolve one ``-1`` in a target shape; ShapeError if the sizes don't match."""
    shape = tuple(shape)
    neg = [i for i, s in enumerate(shape) if isinstance(s, int) and s == -1]
    if len(neg) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred, got shape {list(shape)}")
    for s in shape:
        if isinstance(s, int) and s < -1:
            raise ShapeError(f"{op}: invalid shape dimension {s} in {list(shape)}")
    if neg:
        rest = prod(s for i, s in enumerate(shape) if i != neg[0])
        if isinstance(rest, int) and isinstance(numel, int):
            if rest == 0 or numel % rest:
                raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size "
                                 f"{numel}")
            inferred = numel // rest
        else:
            import sympy
            inferred = sympy.simplify(numel / rest)
            if inferred.is_Integer:  # ``reshape(b, -1, h, w)`` with a symbolic batch b: a
                inferred = int(inferred)  # plain int, which later static checks need
        shape = shape[:neg[0]] + (inferred,) + shape[neg[0] + 1:]
    total = prod(shape)
    if isinstance(total, int) and isinstance(numel, int) and total != numel:
        raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size {numel}")
    return shape


def as_shape(args, op: str) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])`` -> ``(2, 3)``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for a in args:
        if hasattr(a, "__index__") and not isinstance(a, bool):
            out.append(a.__index__() if not _is_symbolic(a) else a)
        elif _is_symbolic(a):
            out.append(a)
        else:
            # PyTorch raises TypeError here (``torch.zeros(2.0)``, ``nn.Conv2d(3, 8 / 2)``)
            raise FwTypeError(f"{op}: expected a sequence of ints for the size, got {a!r}")
    return tuple(out)


def _is_symbolic(x) -> bool:
    # a sympy size, or a traced int argument (compiler/symints.py: sympy's ``_sympy_``)
    return type(x).__module__.startswith("sympy") or hasattr(type(x), "_sympy_")
