"""``Dim`` and the ``dynamic_shapes`` argument of :func:`framework.export.export`.

``Dim("batch", min=1, max=1024)`` names a dynamic dimension and its range (inclusive).
One Dim used for several dims says they are always equal. ``Dim.AUTO`` (dynamic where the
program allows it, else static, silently), ``Dim.DYNAMIC`` (dynamic, unnamed; an error
if the program specializes it) and ``Dim.STATIC`` (or None) mark a dim without naming it.
:func:`parse_dynamic_shapes` turns PyTorch's forms (a dict keyed by ``forward``'s
argument names, or a tuple/list in argument order; per tensor a ``{dim: Dim}`` dict or a
list/tuple with one entry per dim) into one ``{dim: DimSpec}`` per tensor input.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass

from ..errors import ArgumentError, FwTypeError
from ..tensor import Tensor


class ConstraintViolationError(ArgumentError):
    """A dynamic dim the program does not allow to be dynamic (it specializes it, or ties
    it to another dim), or an example input outside its Dim's range."""


class _DimHint(enum.Enum):
    AUTO = "auto"
    STATIC = "static"
    DYNAMIC = "dynamic"

    def __repr__(self) -> str:
        return f"Dim.{self.name}"


class Dim:
    """A named dynamic dimension with an inclusive range ``[min, max]`` (PyTorch's
    ``torch.export.Dim``); ``max=None`` is unbounded."""

    AUTO = _DimHint.AUTO
    STATIC = _DimHint.STATIC
    DYNAMIC = _DimHint.DYNAMIC

    def __init__(self, name: str, *, min: int | None = None, max: int | None = None):  # noqa: A002
        if not isinstance(name, str) or not name.isidentifier():
            raise ArgumentError(f"Dim: name must be a Python identifier, got {name!r}")
        lo = 0 if min is None else min
        hi = math.inf if max is None else max
        for label, v in (("min", min), ("max", max)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise FwTypeError(f"Dim({name!r}): {label} must be an int, got {v!r}")
        if lo < 0 or hi <= lo:
            raise ArgumentError(f"Dim({name!r}): cannot create a Dim with inconsistent "
                                f"min={min}, max={max} (need 0 <= min < max)")
        self.__name__ = name
        self.min = lo
        self.max = hi

    def __repr__(self) -> str:
        parts = [repr(self.__name__)]
        if self.min != 0:
            parts.append(f"min={self.min}")
        if self.max != math.inf:
            parts.append(f"max={self.max}")
        return f"Dim({', '.join(parts)})"


def dims(*names: str, min: int | None = None, max: int | None = None) -> tuple:  # noqa: A002
    """One :class:`Dim` per name, all with the same range."""
    return tuple(Dim(n, min=min, max=max) for n in names)


@dataclass(frozen=True)
class DimSpec:
    """One dynamic dim of one input: its symbol name, range, and whether the program may
    specialize it silently (``Dim.AUTO``)."""

    name: str
    min: int
    max: float
    auto: bool = False
    named: bool = True


def _entry_dims(entry, t: Tensor, where: str) -> dict:
    """{dim: Dim | hint} for one tensor's entry."""
    if entry is None:
        return {}
    if isinstance(entry, dict):
        items = list(entry.items())
    elif isinstance(entry, (list, tuple)):
        if len(entry) != t.ndim:
            raise ArgumentError(f"export: dynamic_shapes{where} has {len(entry)} entries but "
                                f"the input has {t.ndim} dims (shape {list(t.shape)})")
        items = list(enumerate(entry))
    elif isinstance(entry, _DimHint) and entry is not Dim.STATIC:
        items = [(d, entry) for d in range(t.ndim)]
    elif entry is Dim.STATIC:
        return {}
    else:
        raise FwTypeError(f"export: dynamic_shapes{where} must be a dict {{dim: Dim}}, a "
                          f"list/tuple with one entry per dim, or None; got "
                          f"{type(entry).__name__}")
    out = {}
    for d, spec in items:
        if isinstance(d, bool) or not isinstance(d, int) or not -t.ndim <= d < t.ndim:
            raise ArgumentError(f"export: dynamic_shapes{where} names dim {d!r} but the "
                                f"input has {t.ndim} dims")
        if spec is None or spec is Dim.STATIC:
            continue
        if not isinstance(spec, (Dim, _DimHint)):
            raise FwTypeError(f"export: dynamic_shapes{where}[{d}] must be a Dim, Dim.AUTO, "
                              f"Dim.DYNAMIC, Dim.STATIC or None, got {spec!r}")
        out[d % t.ndim] = spec
    return out


def _match(entry, value, where, found):
    """Walk the dynamic_shapes ``entry`` alongside the argument ``value``; collect
    (id(tensor), {dim: spec}, where)."""
    if isinstance(value, Tensor):
        found.append((value, _entry_dims(entry, value, where), where))
        return
    if entry is None:
        return
    if isinstance(value, (list, tuple)) and isinstance(entry, (list, tuple)):
        if len(entry) != len(value):
            raise ArgumentError(f"export: dynamic_shapes{where} has {len(entry)} entries for "
                                f"an argument with {len(value)}")
        for i, (e, v) in enumerate(zip(entry, value)):
            _match(e, v, f"{where}[{i}]", found)
        return
    if isinstance(value, dict) and isinstance(entry, dict):
        for k, e in entry.items():
            if k not in value:
                raise ArgumentError(f"export: dynamic_shapes{where} names key {k!r}, which "
                                    "the argument does not have")
            _match(e, value[k], f"{where}[{k!r}]", found)
        return
    raise ArgumentError(f"export: dynamic_shapes{where} is given for a non-tensor argument "
                        f"({type(value).__name__}); use None")


def parse_dynamic_shapes(dynamic_shapes, arg_names, args, kwargs) -> list:
    """(tensor, {dim: Dim | hint}, where) for every tensor the spec mentions."""
    found: list = []
    if dynamic_shapes is None:
        return found
    bound = dict(zip(arg_names, args))
    bound.update(kwargs)
    if isinstance(dynamic_shapes, dict):
        unknown = [k for k in dynamic_shapes if k not in bound]
        if unknown:
            raise ArgumentError(f"export: dynamic_shapes names {unknown}, which are not "
                                f"arguments of forward (the arguments given are "
                                f"{list(bound)})")
        for k, entry in dynamic_shapes.items():
            _match(entry, bound[k], f"[{k!r}]", found)
    elif isinstance(dynamic_shapes, (list, tuple)):
        values = list(args) + list(kwargs.values())
        if len(dynamic_shapes) != len(values):
            raise ArgumentError(f"export: dynamic_shapes has {len(dynamic_shapes)} entries "
                                f"but {len(values)} arguments were given")
        for i, (entry, v) in enumerate(zip(dynamic_shapes, values)):
            _match(entry, v, f"[{i}]", found)
    else:
        raise FwTypeError(f"export: dynamic_shapes must be a dict, a tuple/list or None, "
                          f"got {type(dynamic_shapes).__name__}")
    return found


def resolve_specs(found, tensor_slots) -> list:
    """One ``{dim: DimSpec}`` per graph tensor input (``tensor_slots``: (tensor, label) in
    input order), checking the example sizes against the Dims' ranges and that every use
    of one Dim has one size."""
    by_id = {}
    for t, spec, where in found:
        by_id[id(t)] = (spec, where)
    sizes: dict = {}
    used_names = {s.__name__ for _, spec, _ in found for s in spec.values()
                  if isinstance(s, Dim)}
    auto_names = (f"s{i}" for i in itertools.count() if f"s{i}" not in used_names)
    out = []
    for t, label in tensor_slots:
        spec, where = by_id.get(id(t), ({}, label))
        res = {}
        for d, s in sorted(spec.items()):
            size = t.shape[d]
            if isinstance(s, Dim):
                if not s.min <= size <= s.max:
                    raise ConstraintViolationError(
                        f"export: example input {label} has size {size} at dim {d}, outside "
                        f"the range of {s!r} ([{s.min}, {s.max}])")
                prev = sizes.setdefault(s.__name__, (size, label, d))
                if prev[0] != size:
                    raise ConstraintViolationError(
                        f"export: {s!r} is used for {prev[1]} dim {prev[2]} (size {prev[0]}) "
                        f"and {label} dim {d} (size {size}); one Dim means equal sizes")
                res[d] = DimSpec(s.__name__, s.min, s.max)
            else:
                res[d] = DimSpec(next(auto_names), 0, math.inf, auto=s is Dim.AUTO,
                                 named=False)
        out.append(res)
    return out
