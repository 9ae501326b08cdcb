"""Run an exported Graph node by node through the public op dispatch.

Every node is one ``apply(op, *inputs, **attrs)`` call, so the outputs are ordinary
tensors: autograd records them (gradients flow to the parameters), they run on whatever
device the inputs live on, and a capture (``fw.compile``, ONNX export) records the same
ops again. Sizes in attrs and operands that are symbols (``reshape(x, shape=(batch,
16))``) are replaced by the call's sizes first.
"""

from __future__ import annotations

import math

import sympy

from compiler.ir import Value

from .._state import tls
from ..errors import DTypeError, FwTypeError, ShapeError
from ..ops.registry import apply
from ..tensor import Tensor


def has_symbols(x) -> bool:
    """True when ``x`` (an operand or attr) holds a sympy expression."""
    if isinstance(x, sympy.Basic):
        return not x.is_number
    if isinstance(x, (tuple, list)):
        return any(has_symbols(v) for v in x)
    if isinstance(x, slice):
        return has_symbols((x.start, x.stop, x.step))
    if isinstance(x, dict):
        return any(has_symbols(v) for v in x.values())
    return False


def substitute(x, env: dict):
    """``x`` with the symbols of ``env`` (Symbol -> size) replaced; sizes that become
    numbers are Python ints (floats for non-integral ratios)."""
    if isinstance(x, sympy.Basic):
        r = x.xreplace(env)
        if r.is_Integer:
            return int(r)
        if r.is_number:
            return float(r)
        return r
    if isinstance(x, tuple):
        return tuple(substitute(v, env) for v in x)
    if isinstance(x, list):
        return [substitute(v, env) for v in x]
    if isinstance(x, slice):
        return slice(substitute(x.start, env), substitute(x.stop, env),
                     substitute(x.step, env))
    if isinstance(x, dict):
        return {k: substitute(v, env) for k, v in x.items()}
    return x


def bind_inputs(values, tensors, labels, ranges, who) -> dict:
    """Check ``tensors`` against the graph inputs ``values`` (dtype, rank, static sizes,
    dynamic sizes within ``ranges``: {symbol: (min, max)}, one size per symbol) and return
    {symbol: size} for the call. Sizes that are symbols themselves (a capture of the
    program) are bound without range checks."""
    env: dict = {}
    where: dict = {}
    for v, t, label in zip(values, tensors, labels):
        if not isinstance(t, Tensor):
            raise FwTypeError(f"{who}: input {label} must be a Tensor, got "
                              f"{type(t).__name__}")
        if t.dtype is not v.dtype:
            raise DTypeError(f"{who}: input {label} must be {v.dtype.name}, got "
                             f"{t.dtype.name}")
        if t.ndim != v.ndim:
            raise ShapeError(f"{who}: input {label} must have {v.ndim} dims (shape "
                             f"{_fmt(v.shape)}), got shape {list(t.shape)}")
        for d, (want, got) in enumerate(zip(v.shape, t.shape)):
            if isinstance(want, int):
                if got != want:
                    raise ShapeError(f"{who}: input {label} must have size {want} at dim "
                                     f"{d} (shape {_fmt(v.shape)}), got shape "
                                     f"{list(t.shape)}")
                continue
            if isinstance(want, sympy.Symbol):
                if want in env:
                    if env[want] != got:
                        first = where[want]
                        raise ShapeError(f"{who}: dim {d} of input {label} and dim "
                                         f"{first[1]} of input {first[0]} are both "
                                         f"'{want}' and must be equal, got {got} and "
                                         f"{env[want]}")
                    continue
                lo, hi = ranges.get(want, (0, math.inf))
                if isinstance(got, int) and not lo <= got <= hi:
                    raise ShapeError(f"{who}: input {label} has size {got} at dim {d}, "
                                     f"outside the range of dim '{want}' ([{lo}, {hi}]); "
                                     f"got shape {list(t.shape)}")
                env[want] = got
                where[want] = (label, d)
    return env


def _fmt(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def run_graph(graph, inputs, consts: dict, env: dict, device_map=None):
    """Evaluate ``graph`` on ``inputs`` (tensors, in graph input order) and ``consts``
    ({external Value: tensor}); return (outputs, [(mutation target Value, new tensor)]).
    ``device_map``: (exported device, run device) to move creation ops with (exported
    device None: every device attr)."""
    vals = dict(zip(graph.inputs, inputs))
    vals.update(consts)
    senv = {s: sympy.Integer(n) if isinstance(n, int) else n for s, n in env.items()}
    saved, tls.autocast = tls.autocast, None  # the graph holds autocast's casts already
    try:
        for n, sym_attrs, sym_ins in _plan(graph):
            ins = [vals[x] if isinstance(x, Value) else x for x in n.inputs]
            attrs = substitute(n.attrs, senv) if sym_attrs else n.attrs
            if sym_ins:
                ins = [x if isinstance(x, Tensor) else substitute(x, senv) for x in ins]
            if device_map is not None and attrs.get("device") is not None and \
                    device_map[0] in (None, attrs["device"]):
                attrs = {**attrs, "device": device_map[1]}
            if n.op.name == "reshape":  # traced on data-less tensors: may need a copy here
                out = ins[0].reshape(attrs["shape"])
            else:
                out = apply(n.op, *ins, **attrs)
            outs = out if n.op.num_outputs != 1 else (out,)  # None: variadic (cond)
            for o, r in zip(n.outputs, outs):
                vals[o] = r
    finally:
        tls.autocast = saved
    outputs = [vals[o] for o in graph.outputs]
    return outputs, [(t, vals[v]) for t, v in graph.mutations]


def _plan(graph) -> list:
    """(node, attrs hold symbols, operands hold symbols) per node, computed once."""
    plan = graph.__dict__.get("_export_plan")
    if plan is None or len(plan) != len(graph.nodes):
        plan = [(n, has_symbols(n.attrs),
                 any(has_symbols(x) for x in n.inputs if not isinstance(x, Value)))
                for n in graph.nodes]
        graph.__dict__["_export_plan"] = plan
    return plan
