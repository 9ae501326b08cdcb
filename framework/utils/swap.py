"""``fw.utils.swap_tensors``: exchange two tensor objects' contents in place."""

from __future__ import annotations

from ..tensor import Tensor

_NOT_SWAPPED = ("__weakref__", "__dict__")


def _slots(cls) -> list:
    names = []
    for klass in cls.__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name not in _NOT_SWAPPED and name not in names:
                names.append(name)
    return names


def swap_tensors(t1, t2) -> None:
    """Swap ``t1`` and ``t2`` in place, as ``torch.utils.swap_tensors``: their classes,
    ``__dict__``, storage, shape, dtype, device and autograd state. Every reference to
    ``t1`` (an optimizer's parameter list, say) now sees what was ``t2``, and the other way
    round."""
    if not isinstance(t1, Tensor) or not isinstance(t2, Tensor):
        raise TypeError(f"swap_tensors: expected two Tensors, got {type(t1).__name__} and "
                        f"{type(t2).__name__}")
    if t1 is t2:
        return
    missing = object()
    names = _slots(type(t1))
    for name in _slots(type(t2)):
        if name not in names:
            names.append(name)
    values1 = {n: getattr(t1, n, missing) for n in names}
    values2 = {n: getattr(t2, n, missing) for n in names}
    cls1, cls2 = type(t1), type(t2)
    t1.__class__, t2.__class__ = cls2, cls1
    dict1, dict2 = dict(t1.__dict__), dict(t2.__dict__)
    for t, values, d in ((t1, values2, dict2), (t2, values1, dict1)):
        for n, v in values.items():
            if v is missing:
                if hasattr(t, n):
                    delattr(t, n)
            else:
                object.__setattr__(t, n, v)
        t.__dict__.clear()
        t.__dict__.update(d)
