"""The autograd engine's slow path: anomaly detection and saved-tensor hooks.

The hot path pays one module-global read for both: ``Node.__init__`` reads
``framework.autograd._extras`` (this module while anomaly mode is on or a
``saved_tensors_hooks`` block is open in any thread, else None) and ``run_backward`` reads
``framework.autograd._slow_backward`` once per call (this module once either feature was
ever used, since nodes recorded then may hold packed tensors or forward tracebacks).
"""

from __future__ import annotations

import sys
import threading
import traceback
import warnings

from .._state import tls
from ..errors import AutogradError

_lock = threading.Lock()
_hook_blocks = 0  # open saved_tensors_hooks blocks, all threads together


def refresh() -> None:
    """Point the engine's globals at this module when a feature needs the slow path."""
    from . import anomaly
    ag = sys.modules[__package__]
    active = anomaly._enabled or _hook_blocks > 0
    ag._extras = sys.modules[__name__] if active else None
    if active:
        ag._slow_backward = sys.modules[__name__]


def hooks_opened(delta: int) -> None:
    """A ``saved_tensors_hooks`` block opened (+1) or closed (-1) in some thread."""
    global _hook_blocks
    with _lock:
        _hook_blocks += delta
        refresh()


# -- at node creation ----------------------------------------------------------------------
def node_created(node, outs) -> None:
    """Record the forward traceback (anomaly mode) and pack the saved tensors (hooks)."""
    from . import anomaly
    from ..tensor import Tensor
    from .graph import SavedTensor, current_hooks, edge_of
    if anomaly._enabled:
        node.anomaly_trace = _forward_stack()
    hooks = current_hooks()
    # traces (fw.compile, fw.func) keep their graph whole, as torch.func transforms do
    # not run saved-tensor hooks either
    if hooks is None or tls.tracer is not None:
        return
    # saved inputs are packed; the others (whose data the VJP never reads) become
    # data-less shells with the same metadata and identity, so no buffer stays referenced;
    # custom Functions read nothing from their node (their ctx packs what they save)
    custom = node.op.group == "custom"
    node.args = tuple((SavedTensor(a, hooks, edge_of(a)) if v is not None and not custom
                       else _shell(a)) if isinstance(a, Tensor) else a
                      for a, v in zip(node.args, node.versions))
    saves_output = node.op.saves_output
    # the node keeps only the packed outputs (or none at all), never their buffers
    read = saves_output is True or (lambda i: i in saves_output)  # indices the VJP reads
    node.out_meta = tuple(m[:3] + ((SavedTensor(o, hooks) if saves_output and
                                    (read is True or read(i)) else None),) + m[4:]
                          for i, (o, m) in enumerate(zip(outs, node.out_meta)))
    node.out_refs = None


def _forward_stack() -> list:
    """The formatted stack of the op call being recorded, without the dispatch frames
    (``framework/ops``, ``framework/autograd``) at its end."""
    import os
    frames = traceback.extract_stack()
    here = os.path.dirname(os.path.dirname(__file__))
    internal = (os.path.join(here, "ops") + os.sep, os.path.join(here, "autograd") + os.sep)
    end = len(frames)
    while end > 1 and frames[end - 1].filename.startswith(internal):
        end -= 1
    return traceback.format_list(frames[:end])


def _shell(t):
    """``t``'s metadata and autograd identity without its data."""
    from ..tensor import Tensor
    s = Tensor._wrap(None, t.dtype, t.device, t.shape, t._storage)
    s.requires_grad, s.grad_fn, s._output_nr = t.requires_grad, t.grad_fn, t._output_nr
    return s


# -- during backward -----------------------------------------------------------------------
def run_node(node, g_arg, create_graph: bool):
    """The VJP of one node with its saved tensors unpacked, under anomaly checks."""
    from . import anomaly
    from .graph import SavedTensor
    try:
        args = node.args
        if any(a.__class__ is SavedTensor for a in args):
            args = tuple(a.unpack(f"input {i} of {node.op.name}", create_graph)
                         if a.__class__ is SavedTensor else a
                         for i, a in enumerate(args))
        out = _outputs(node, create_graph) if node.op.saves_output else None
        in_grads = node.op.vjp(g_arg, args, out, **node.attrs)
    except Exception as exc:
        if anomaly._enabled:
            _report(node, exc)
        raise
    if anomaly._enabled and anomaly._check_nan:
        for i, gi in enumerate(in_grads):
            if _has_nan(gi):
                exc = AutogradError(f"Function '{node.name()}' returned nan values in its "
                                    f"{i}th output.")
                _report(node, exc)
                raise exc
    return in_grads


def _outputs(node, create_graph):
    from .graph import SavedTensor, relink
    metas = node.out_meta
    if not any(m[3].__class__ is SavedTensor for m in metas):
        return node.saved_outputs(create_graph)
    outs = [None if m[3] is None else
            relink(m[3].unpack(f"output {i} of {node.op.name}"), (node, i), create_graph)
            for i, m in enumerate(metas)]
    return outs[0] if len(outs) == 1 else tuple(outs)


def _has_nan(g) -> bool:
    from ..tensor import Tensor
    if not isinstance(g, Tensor) or g._data is None or not g.dtype.is_floating_point:
        return False
    from .. import ops as F
    saved = tls.grad_enabled, tls.tracer
    tls.grad_enabled, tls.tracer = False, None
    try:
        return bool(F.isnan(g).any().item())
    finally:
        tls.grad_enabled, tls.tracer = saved


def forward_trace_message(node) -> str:
    """What anomaly mode says about the forward call that recorded ``node``."""
    trace = getattr(node, "anomaly_trace", None)
    if trace is None:
        return (f"Error detected in {node.name()}. No forward pass information available. "
                "Enable detect anomaly during forward pass for more information.")
    return (f"Error detected in {node.name()}. Traceback of forward call that caused the "
            f"error:\n{''.join(trace)}")


def _report(node, exc: BaseException) -> None:
    """Warn with the forward traceback (as PyTorch does) and attach it to ``exc``."""
    msg = forward_trace_message(node)
    if getattr(exc, "_fw_anomaly_reported", False):
        return  # an inner backward (create_graph inside a custom backward) reported it
    try:
        exc._fw_anomaly_reported = True
        exc.add_note(msg)
    except (AttributeError, TypeError):
        pass
    warnings.warn(msg, UserWarning, stacklevel=2)
