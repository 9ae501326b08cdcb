"""``fw.utils.module_tracker.ModuleTracker``: which modules are running now, forward or
backward (as ``torch.utils.module_tracker``; ``FlopCounterMode`` builds on it).

While the tracker is open, ``parents`` is the set of the fully qualified names of the
modules whose ``forward`` is running, always with ``"Global"``. A module called at the
top is named by its class (``"Sequential"``), its submodules by their path under it
(``"Sequential.0"``). During ``backward()`` the same names come back: a gradient hook on a
module's outputs adds its name when their gradient arrives, one on its inputs removes it
when theirs has been computed.

PyTorch resets ``parents`` when the autograd engine finishes; this framework's engine has
no end-of-backward callback, so names added by backward (a module whose inputs need no
gradient is never removed) are cleared when the next module is called, or when the tracker
closes. ``is_bw`` is True from the first backward hook until then (PyTorch documents the
same lag).
"""

from __future__ import annotations

import weakref

from .._state import tls
from ..tensor import Tensor
from ._pytree import tree_leaves

__all__ = ["ModuleTracker"]


class ModuleTracker:
    """Context manager tracking the module hierarchy of the running code (``parents``,
    ``is_bw``)."""

    def __init__(self) -> None:
        self.parents = {"Global"}
        self._is_bw = False
        self._names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._seen: weakref.WeakSet = weakref.WeakSet()
        self._handles: list = []
        self._open = False

    @property
    def is_bw(self) -> bool:
        """True while (and after) backward ran through a tracked module, until the next
        module call."""
        return self._is_bw

    def _name(self, mod) -> str:
        name = self._names.get(mod)
        if name is None:
            name = self._names[mod] = type(mod).__name__
        if mod not in self._seen:
            self._seen.add(mod)
            for child_name, child in mod.named_children():
                self._names[child] = f"{name}.{child_name}"
                self._name(child)
        return name

    # -- gradient hooks -----------------------------------------------------------------
    def _grad_hook(self, name: str, add: bool):
        def hook(grad):
            if self._open:
                self._is_bw = True
                if add:
                    self.parents.add(name)
                else:
                    self.parents.discard(name)
        return hook

    def _hook_tensors(self, tree, name: str, add: bool) -> None:
        for t in tree_leaves(tree):
            if isinstance(t, Tensor) and t.requires_grad:
                self._handles.append(t.register_hook(self._grad_hook(name, add)))

    # -- module hooks -------------------------------------------------------------------
    def _pre_hook(self, mod, args):
        if tls.tracer is not None:  # fw.compile capturing: nothing runs yet
            return None
        if self._is_bw:  # a new forward: what backward left behind is over
            self.parents = {"Global"}
            self._is_bw = False
        name = self._name(mod)
        self.parents.add(name)
        self._hook_tensors(args, name, add=False)
        return None

    def _post_hook(self, mod, args, out):
        if tls.tracer is not None:
            return None
        name = self._name(mod)
        self.parents.discard(name)
        self._hook_tensors(out, name, add=True)
        return None

    def __enter__(self):
        from ..nn.modules.module import (register_module_forward_hook,
                                         register_module_forward_pre_hook)
        self.parents = {"Global"}
        self._is_bw = False
        self._open = True
        self._handles = [register_module_forward_pre_hook(self._pre_hook),
                         register_module_forward_hook(self._post_hook)]
        return self

    def __exit__(self, *exc):
        self._open = False
        for h in self._handles:  # module hooks and the gradient hooks left on tensors
            h.remove()
        self._handles = []
        self.parents = {"Global"}
        self._is_bw = False
        return False
