"""Writes a traced function makes into the dicts and lists it was given.

A capture replaces every tensor argument by a stand-in. Stand-ins inside a dict or list
argument are put into the caller's own container (and its contents put back afterwards),
so the function, and anything else holding that container (a forward hook's closure, as
whisper's ``install_kv_cache_hooks`` cache), sees one object, as in eager mode.

What the function left in those containers is then compared with what was put in:

- ``d[key] = tensor`` and ``lst.append(tensor)`` become graph outputs that the compiled
  call stores into the caller's container again (:func:`replay`), as eager mode would;
- anything else (a deleted key, a replaced list item, a Python value stored) is a graph
  break: the compiled call could not repeat it, and dropping it would be silently wrong.
"""

from __future__ import annotations

from framework.errors import GraphBreak
from framework.tensor import Tensor


class ArgContainers:
    """The caller's dicts/lists that hold stand-ins during one trace."""

    def __init__(self):
        self.slots: list = []  # (container, path, original contents, contents with stand-ins)
        self._ids: set = set()

    def rebuild(self, obj, path, fn):
        """``obj`` with ``fn(path, leaf)`` for every leaf; dicts and lists are filled in
        place (a container met a second time is copied: its tensors get their own inputs,
        and writes into it are not tracked)."""
        if isinstance(obj, tuple):
            items = [self.rebuild(x, path + (i,), fn) for i, x in enumerate(obj)]
            return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
        if isinstance(obj, (list, dict)):
            fresh = id(obj) not in self._ids
            self._ids.add(id(obj))
            if isinstance(obj, list):
                new = [self.rebuild(x, path + (i,), fn) for i, x in enumerate(obj)]
                if not fresh:
                    return new
                original, obj[:] = list(obj), new
            else:
                new = {k: self.rebuild(x, path + (k,), fn) for k, x in obj.items()}
                if not fresh:
                    return new
                original = dict(obj)
                obj.clear()
                obj.update(new)
            self.slots.append((obj, path, original, type(obj)(new)))
            return obj
        return fn(path, obj)

    def writes(self, where: str, name_of) -> list:
        """(path, key or None for an append, tensor) for each write the trace made into a
        container (``name_of(path)`` names a container in messages); raises GraphBreak for
        a write that cannot be replayed."""
        found = []
        for obj, path, _, installed in self.slots:
            name = repr(name_of(path))
            if isinstance(obj, dict):
                gone = [k for k in installed if k not in obj]
                if gone:
                    _refuse(where, f"deletes key {gone[0]!r} of the dict argument {name}")
                for k, v in obj.items():
                    if k in installed and v is installed[k]:
                        continue
                    if not isinstance(v, Tensor):
                        _refuse(where, f"stores a {type(v).__name__} under key {k!r} of the "
                                       f"dict argument {name}")
                    found.append((path, k, v))
            else:
                n = len(installed)
                if len(obj) < n or any(a is not b for a, b in zip(obj, installed)):
                    _refuse(where, f"removes or replaces items of the list argument {name}")
                for v in obj[n:]:
                    if not isinstance(v, Tensor):
                        _refuse(where, f"appends a {type(v).__name__} to the list argument "
                                       f"{name}")
                    found.append((path, None, v))
        return found

    def restore(self) -> None:
        """Put the caller's original contents back."""
        for obj, _, original, _ in self.slots:
            if isinstance(obj, dict):
                obj.clear()
                obj.update(original)
            else:
                obj[:] = original


def replay(writes, results, args, kwargs) -> None:
    """Store a compiled call's write outputs into this call's containers (the final value
    of each dict key; appends in order)."""
    for path, key, i in writes:
        obj = (args, kwargs)
        for p in path:
            obj = obj[p]
        if key is None:
            obj.append(results[i])
        else:
            obj[key] = results[i]


def _refuse(where, what):
    raise GraphBreak(f"graph break: {where} {what}; a compiled call cannot repeat that")
