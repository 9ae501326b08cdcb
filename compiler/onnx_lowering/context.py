"""The lowering context: what every ONNX lowering rule emits through.

A rule receives the context and one IR node and returns the ONNX names of the node's
outputs. The context owns the ONNX nodes and initializers built so far, the map from IR
values to ONNX names, a cache of small constants, and the translation of symbolic sizes
(sympy expressions over the graph's dynamic dims) into int64 shape tensors computed at
run time from the inputs' ``Shape``.
"""

from __future__ import annotations

import numpy as np
import onnx
import sympy
from onnx import helper, numpy_helper

from framework.errors import ArgumentError

from .legalize import CURRENT_FORM_SINCE, older_form

INT64_MAX = 2 ** 63 - 1
INT64_MIN = -(2 ** 63)


class OpsetError(ArgumentError):
    """An op that cannot be expressed in the requested ONNX opset."""


def onnx_dtype(dtype) -> int:
    """The ``TensorProto`` element type of a framework dtype."""
    return helper.np_dtype_to_tensor_dtype(dtype.np)


def static_int(size):
    """``size`` as an int, or None when it is symbolic."""
    if isinstance(size, (int, np.integer)):
        return int(size)
    if isinstance(size, sympy.Basic) and size.is_Integer:
        return int(size)
    return None


def _c_order(array) -> np.ndarray:
    """A C-contiguous array with the same shape (np.ascontiguousarray makes 0-d 1-d)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _sanitize(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "._-/:" else "_" for c in str(name))
    return out or "v"


class LoweringContext:
    """Accumulates ONNX nodes/initializers for one graph at one opset."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.names: dict = {}             # IR Value -> ONNX name
        self._used: set[str] = set()
        self._consts: dict = {}           # (dtype, shape, bytes) -> name
        self._const_arrays: dict = {}     # name -> array, for every const() initializer
        self._symbols: dict = {}          # sympy Symbol -> (onnx input name, axis)
        self._dims: dict = {}             # sympy expr -> int64 [1] tensor name
        self.current = None               # IR node being lowered (for names and errors)
        self._fresh_here: set[str] = set()
        self.used: set = set()            # IR values some node or the output reads

    def is_used(self, value) -> bool:
        """True when ``value`` is read by a later node or returned."""
        return value in self.used

    # -- names ---------------------------------------------------------------------------
    def reserve(self, name: str) -> str:
        """Claim ``name`` (made unique with a numeric suffix when it is taken)."""
        base = _sanitize(name)
        cand, k = base, 1
        while cand in self._used:
            cand = f"{base}_{k}"
            k += 1
        self._used.add(cand)
        return cand

    def fresh(self, hint: str = "t") -> str:
        """A new unique name for an intermediate tensor of the current node."""
        if self.current is not None and self.current.outputs:
            hint = f"{self.current.outputs[0].name}/{hint}"
        name = self.reserve(hint)
        self._fresh_here.add(name)
        return name

    def name_of(self, value) -> str:
        """The ONNX name bound to an IR value."""
        try:
            return self.names[value]
        except KeyError:
            raise RuntimeError(f"onnx export: value {value.name!r} is used before it is "
                               "defined (graph not in topological order?)") from None

    # -- operands -----------------------------------------------------------------------
    def value(self, x, dtype=None) -> str:
        """ONNX name of an operand: an IR value, or a Python scalar made a 0-d constant of
        ``dtype``."""
        if isinstance(x, (bool, int, float, np.number, sympy.Basic)):
            if dtype is None:
                raise RuntimeError("onnx export: a scalar operand needs a dtype")
            return self.scalar(x, dtype)
        return self.name_of(x)

    def scalar(self, v, dtype) -> str:
        """A 0-d constant of a framework dtype; a sympy size (a dynamic dim used as a
        number) is computed at run time from the inputs' shapes."""
        if isinstance(v, sympy.Basic):
            if not v.is_number:
                return self._runtime_scalar(v, dtype)
            v = int(v) if v.is_Integer else float(v)
        return self.const(np.array(v, dtype=dtype.np), "scalar")

    def _runtime_scalar(self, expr, dtype) -> str:
        # exact: (integer polynomial) / (integer polynomial), divided in ``dtype``
        num, den = sympy.fraction(sympy.together(sympy.nsimplify(expr, rational=True)))
        parts = [self.emit("Reshape", [self._poly(p), self.ints([])]) for p in (num, den)]
        if dtype.name != "int64":
            parts = [self.cast(p, dtype) for p in parts]
        return parts[0] if den == 1 else self.emit("Div", parts)

    def ints(self, values) -> str:
        """A 1-D int64 constant."""
        return self.const(np.array([int(v) for v in values], dtype=np.int64), "ints")

    def const(self, array: np.ndarray, hint: str = "const") -> str:
        """An initializer holding ``array`` (small ones are shared between uses)."""
        array = _c_order(array)
        key = None
        if array.size <= 64:
            key = (array.dtype.str, array.shape, array.tobytes())
            hit = self._consts.get(key)
            if hit is not None:
                return hit
        name = self.reserve(f"const.{hint}" if not hint.startswith("const") else hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        self._const_arrays[name] = array
        if key is not None:
            self._consts[key] = name
        return name

    def const_value(self, name: str):
        """The array of an initializer made by :meth:`const`, or None."""
        return self._const_arrays.get(name)

    def add_initializer(self, name: str, array: np.ndarray) -> None:
        """A named initializer (parameters and buffers keep their module path)."""
        self.initializers.append(numpy_helper.from_array(_c_order(array), name))

    # -- nodes ---------------------------------------------------------------------------
    def emit(self, op_type: str, inputs, num_outputs: int = 1, outputs=None, **attrs):
        """Append one ONNX node; return its output name (or list of names). ``None`` in
        ``inputs`` is an omitted optional input; ``None`` attributes are left out.

        Rules write the current form of a node (axes as an input, ``Shape`` with
        start/end, ...); below the opset that introduced it, :mod:`.legalize` emits the
        older equivalent instead, writing the same outputs."""
        if outputs is None:
            outputs = [self.fresh(op_type) for _ in range(num_outputs)]
        ins = ["" if i is None else i for i in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        attrs = {k: v for k, v in attrs.items() if v is not None}
        if self.opset < CURRENT_FORM_SINCE.get(op_type, 0) and \
                older_form(self, op_type, ins, list(outputs), attrs):
            return outputs[0] if len(outputs) == 1 else list(outputs)
        node_name = self.reserve(f"/{outputs[0]}/{op_type}")
        self.nodes.append(helper.make_node(op_type, ins, list(outputs), name=node_name,
                                           **attrs))
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def cast(self, name: str, dtype) -> str:
        """``Cast`` to a framework dtype."""
        return self.emit("Cast", [name], to=onnx_dtype(dtype))

    def require(self, min_opset: int, what: str) -> None:
        """Raise :class:`OpsetError` unless the target opset is at least ``min_opset``."""
        if self.opset < min_opset:
            raise OpsetError(f"onnx export: {what} needs opset >= {min_opset}, but opset "
                             f"{self.opset} was requested; export with "
                             f"opset_version={min_opset} or newer")

    # -- sizes -----------------------------------------------------------------------------
    def bind_symbol(self, sym, input_name: str, axis: int) -> None:
        """Record that dynamic dim ``sym`` is axis ``axis`` of graph input ``input_name``."""
        if sym not in self._symbols:
            self._symbols[sym] = (input_name, axis)

    def shape_of(self, shape, hint: str = "shape") -> str:
        """An int64 1-D tensor holding ``shape`` (constant, or computed when symbolic)."""
        if all(static_int(s) is not None for s in shape):
            return self.ints([static_int(s) for s in shape])
        parts = [self.dim(s) for s in shape]
        return self.emit("Concat", parts, axis=0) if len(parts) > 1 else parts[0]

    def dim(self, size) -> str:
        """An int64 ``[1]`` tensor holding one size (int or sympy expression)."""
        v = static_int(size)
        if v is not None:
            return self.ints([v])
        expr = sympy.sympify(size)
        hit = self._dims.get(expr)
        if hit is None:
            num, den = sympy.fraction(sympy.together(expr))
            hit = self._poly(num)
            if den != 1:  # sizes are non-negative, so truncating Div is floor division
                hit = self.emit("Div", [hit, self._poly(den)])
            self._dims[expr] = hit
        return hit

    def _poly(self, e) -> str:
        if e.is_Integer:
            return self.ints([int(e)])
        if e.is_Symbol:
            if e not in self._symbols:
                raise NotImplementedError(f"onnx export: dynamic size {e} is not a dim of any "
                                          "graph input, so it cannot be computed at run time")
            hit = self._dims.get(e)
            if hit is None:
                src, axis = self._symbols[e]
                hit = self.emit("Shape", [src], start=axis, end=axis + 1)
                self._dims[e] = hit
            return hit
        if isinstance(e, sympy.Add):
            return self._fold("Add", e.args)
        if isinstance(e, sympy.Mul):
            return self._fold("Mul", e.args)
        if isinstance(e, sympy.Pow) and e.exp.is_Integer and int(e.exp) > 0:
            return self._fold("Mul", [e.base] * int(e.exp))
        if isinstance(e, sympy.Max):
            return self._fold("Max", e.args)
        if isinstance(e, sympy.Min):
            return self._fold("Min", e.args)
        if isinstance(e, sympy.Mod):
            return self.emit("Mod", [self.dim(e.args[0]), self.dim(e.args[1])])
        if isinstance(e, sympy.floor):
            return self.dim(e.args[0])
        if isinstance(e, sympy.ceiling):
            num, den = sympy.fraction(sympy.together(e.args[0]))
            return self.dim((num + den - 1) / den) if den != 1 else self.dim(num)
        raise NotImplementedError(f"onnx export: cannot compute the dynamic size {e} "
                                  f"({type(e).__name__}) at run time")

    def _fold(self, op_type, args) -> str:
        names = [self.dim(a) if not (isinstance(a, sympy.Basic) and a.is_Rational
                                     and not a.is_Integer) else None for a in args]
        if any(n is None for n in names):
            raise NotImplementedError(f"onnx export: fractional size term in {args}")
        out = names[0]
        for n in names[1:]:
            out = self.emit(op_type, [out, n])
        return out


def tensor_type(dtype, shape, dim_names=None):
    """A ``TypeProto`` for a tensor; symbolic dims become named ``dim_param``s."""
    dims = []
    for i, s in enumerate(shape):
        if dim_names and i in dim_names:
            dims.append(dim_names[i])
            continue
        v = static_int(s)
        dims.append(v if v is not None else str(s))
    return helper.make_tensor_type_proto(onnx_dtype(dtype), dims)


def value_info(name, dtype, shape, dim_names=None) -> onnx.ValueInfoProto:
    """A ``ValueInfoProto`` for a graph input or output."""
    return helper.make_value_info(name, tensor_type(dtype, shape, dim_names))


__all__ = ["LoweringContext", "OpsetError", "onnx_dtype", "static_int",
           "value_info", "tensor_type", "INT64_MAX", "INT64_MIN"]
