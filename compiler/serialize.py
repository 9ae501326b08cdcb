"""A captured Graph as JSON data and back (no pickle anywhere).

``graph_to_json(graph)`` gives a dict of plain JSON values: the symbols, the inputs and
the externals (``constants``: name, shape, dtype, kind, device -- their data travels
separately, keyed by name), every node (the op by its registered name, its inputs, its
attrs and its outputs' types), the outputs and the write-backs (``mutations``).
``graph_from_json(data, tensors)`` rebuilds the Graph around the given external tensors
and verifies it (:meth:`compiler.ir.Graph.verify` re-runs every meta rule).

Attribute values (:func:`encode_value` / :func:`decode_value`): None, bools, ints,
floats (inf and nan too), strings, tuples (JSON arrays), lists, dicts, slices,
``Ellipsis``, index-key tensor slots, NumPy scalars, dtypes, devices and sympy
expressions (strings over the graph's named symbols, parsed back by a whitelisting
parser, so loading never evaluates arbitrary text). Anything else raises
``NotImplementedError`` naming the op and the attribute.
"""

from __future__ import annotations

import math
import re

import numpy as np
import sympy

from framework import dtypes
from framework.errors import FrameworkError

from .ir import Graph, Node, Value, symbol

FORMAT = "fw.graph/1"


class GraphFormatError(FrameworkError, ValueError):
    """JSON data that is not a well-formed serialized graph."""


class UnsupportedValueError(Exception):
    """An attribute value the format cannot store (re-raised naming the op)."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


# ---------------------------------------------------------------------------------------
# values
def encode_value(x):
    """``x`` as JSON data (see the module docstring for the supported types)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x) if math.isfinite(x) else {"$float": repr(float(x))}
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return [encode_value(v) for v in x]
    if isinstance(x, list):
        return {"$list": [encode_value(v) for v in x]}
    if isinstance(x, dict):
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in x.items()]}
    if isinstance(x, slice):
        return {"$slice": [encode_value(x.start), encode_value(x.stop), encode_value(x.step)]}
    if x is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(x, dtypes.DType):
        return {"$dtype": x.name}
    if type(x).__name__ == "device" and hasattr(x, "type"):
        return {"$device": str(x)}
    if isinstance(x, sympy.Basic):
        return {"$sym": _sym_str(x)}
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return {"$np": x.dtype.name, "v": encode_value(x.item())}
    if type(x).__name__ == "TensorSlot":
        return {"$slot": x.i}
    if isinstance(x, Graph):  # a control-flow branch (fw.cond, fw.while_loop)
        if x.constants:
            raise UnsupportedValueError("a subgraph with constants of its own")
        return {"$graph": graph_to_json(x)}
    raise UnsupportedValueError(f"a {type(x).__name__} ({_short(x)})")


def decode_value(x, symbols: dict):
    """The inverse of :func:`encode_value`; ``symbols``: name -> sympy symbol."""
    if isinstance(x, list):
        return tuple(decode_value(v, symbols) for v in x)
    if not isinstance(x, dict):
        return x
    if "$float" in x:
        return float(x["$float"])
    if "$list" in x:
        return [decode_value(v, symbols) for v in x["$list"]]
    if "$dict" in x:
        return {_hashable(decode_value(k, symbols)): decode_value(v, symbols)
                for k, v in x["$dict"]}
    if "$slice" in x:
        return slice(*[decode_value(v, symbols) for v in x["$slice"]])
    if "$ellipsis" in x:
        return Ellipsis
    if "$dtype" in x:
        return dtypes.from_name(x["$dtype"])
    if "$device" in x:
        from framework.device import device
        return device(x["$device"])
    if "$sym" in x:
        return parse_sym(x["$sym"], symbols)
    if "$np" in x:
        dt = np.dtype(x["$np"])
        if dt.kind not in "biuf":
            raise GraphFormatError(f"unsupported NumPy scalar type {x['$np']!r}")
        return dt.type(x["v"])
    if "$slot" in x:
        from framework.ops.indexing import TensorSlot
        return TensorSlot(int(x["$slot"]))
    if "$graph" in x:  # a subgraph reads everything through its inputs: no externals
        return graph_from_json(x["$graph"], {})
    raise GraphFormatError(f"unknown value tag in {sorted(x)}")


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k


def _short(x) -> str:
    r = repr(x)
    return r if len(r) <= 60 else r[:57] + "..."


# ---------------------------------------------------------------------------------------
# sympy expressions as text
_FUNCS = {"floor": sympy.floor, "ceiling": sympy.ceiling, "Mod": sympy.Mod, "Max": sympy.Max,
          "Min": sympy.Min, "Abs": sympy.Abs, "sqrt": sympy.sqrt}
_CONSTRUCTORS = {"Integer": sympy.Integer, "Float": sympy.Float, "Rational": sympy.Rational,
                 "Symbol": sympy.Symbol}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALLOWED = re.compile(r"^[A-Za-z0-9_+\-*/(). ,e]*$")


def _sym_str(e) -> str:
    return sympy.sstr(e)


def parse_sym(text: str, symbols: dict):
    """A sympy expression from its text, allowing only the named ``symbols``, numbers,
    arithmetic and a few integer functions (floor, ceiling, Mod, Max, Min, Abs, sqrt)."""
    from sympy.parsing.sympy_parser import parse_expr
    if not isinstance(text, str) or not _ALLOWED.match(text) or "__" in text:
        raise GraphFormatError(f"bad symbolic expression {text!r}")
    for name in _IDENT.findall(text):
        if name not in symbols and name not in _FUNCS and not re.fullmatch(r"e\d*", name):
            raise GraphFormatError(f"symbolic expression {text!r} uses the unknown name "
                                   f"{name!r} (symbols: {sorted(symbols)})")
    glb = {"__builtins__": {}, **_FUNCS, **_CONSTRUCTORS}
    try:
        return parse_expr(text, local_dict=dict(symbols), global_dict=glb)
    except Exception as e:  # sympy's own parse errors
        raise GraphFormatError(f"bad symbolic expression {text!r}: {e}") from None


# ---------------------------------------------------------------------------------------
# graphs
def _value_meta(v: Value) -> dict:
    return {"name": v.name, "shape": [encode_value(s) for s in v.shape],
            "dtype": v.dtype.name, "kind": v.kind,
            "device": None if v.device is None else str(v.device)}


def _attr(node: Node, key, value):
    try:
        return encode_value(value)
    except UnsupportedValueError as e:
        raise NotImplementedError(f"graph serialization: op {node.op.name!r}, attribute "
                                  f"{key!r} holds {e.what}, which the graph format cannot "
                                  "store") from None


def _operand(node: Node, i, x):
    if isinstance(x, Value):
        return {"$v": x.name}
    return _attr(node, f"<input {i}>", x)


def graph_to_json(graph: Graph) -> dict:
    """``graph`` as a dict of JSON values (external data not included)."""
    if graph.grad_writes:
        raise NotImplementedError("graph serialization: graphs that assign .grad "
                                  "(training steps) cannot be serialized")
    if any(v.kind == "scalar_input" for v in graph.inputs):
        raise NotImplementedError("graph serialization: graphs with runtime scalar inputs "
                                  "cannot be serialized")
    nodes = []
    for n in graph.nodes:
        nodes.append({"op": n.op.name,
                      "inputs": [_operand(n, i, x) for i, x in enumerate(n.inputs)],
                      "attrs": {k: _attr(n, k, a) for k, a in n.attrs.items()},
                      "outputs": [_value_meta(o) for o in n.outputs]})
    return {"format": FORMAT,
            "symbols": sorted(graph.symbols),
            "inputs": [_value_meta(v) for v in graph.inputs],
            "constants": [_value_meta(v) for v in graph.constants],
            "nodes": nodes,
            "outputs": [{"$v": o.name} for o in graph.outputs],
            "mutations": [[t.name, v.name] for t, v in graph.mutations],
            "passes": list(graph.passes)}


def graph_from_json(data: dict, tensors: dict) -> Graph:
    """Rebuild a Graph from :func:`graph_to_json` data; ``tensors`` maps each external's
    name to its tensor. The result is verified (raises on any inconsistency)."""
    from framework.ops.registry import OPS
    try:
        if data.get("format") != FORMAT:
            raise GraphFormatError(f"not a serialized graph (format {data.get('format')!r}, "
                                   f"expected {FORMAT!r})")
        g = Graph()
        g.symbols = {name: symbol(name) for name in data["symbols"]}
        values: dict = {}

        def meta(d, kind=None):
            shape = tuple(decode_value(s, g.symbols) for s in d["shape"])
            v = Value(d["name"], shape, dtypes.from_name(d["dtype"]), kind or d["kind"],
                      device=_device(d["device"]))
            if v.name in values:
                raise GraphFormatError(f"value name {v.name!r} is defined twice")
            g._names.add(v.name)
            values[v.name] = v
            return v

        def ref(x):
            if isinstance(x, dict) and "$v" in x:
                if x["$v"] not in values:
                    raise GraphFormatError(f"value %{x['$v']} is used before it is defined")
                return values[x["$v"]]
            return decode_value(x, g.symbols)

        for d in data["inputs"]:
            g.inputs.append(meta(d))
        for d in data["constants"]:
            v = meta(d)
            if v.name not in tensors:
                raise GraphFormatError(f"no tensor for the external {v.name!r}")
            g.constants[v] = tensors[v.name]
        for nd in data["nodes"]:
            if nd["op"] not in OPS:
                raise GraphFormatError(f"unknown op {nd['op']!r} (not registered in this "
                                       "version of the framework)")
            ins = tuple(ref(x) for x in nd["inputs"])
            attrs = {k: decode_value(a, g.symbols) for k, a in nd["attrs"].items()}
            outs = tuple(meta(o, "node") for o in nd["outputs"])
            node = Node(OPS[nd["op"]], ins, attrs, outs)
            for i, o in enumerate(outs):
                o.producer, o.index = node, i
            g.nodes.append(node)
        g.outputs = [ref(o) for o in data["outputs"]]
        g.mutations = [(values[t], values[v]) for t, v in data["mutations"]]
        g.passes = list(data.get("passes", ())) + ["load"]
    except GraphFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise GraphFormatError(f"corrupted serialized graph ({type(e).__name__}: {e})") \
            from None
    for v, t in g.constants.items():
        if tuple(t.shape) != v.shape or t.dtype is not v.dtype:
            raise GraphFormatError(f"external {v.name!r} is {t.dtype.name}{list(t.shape)}, "
                                   f"the graph expects {v.dtype.name}{list(v.shape)}")
    return g.verify()


def _device(text):
    if text is None:
        return None
    from framework.device import device
    return device(text)
