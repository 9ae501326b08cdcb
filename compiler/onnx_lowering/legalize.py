"""Older forms of ONNX nodes whose signature changed between opsets.

Lowering rules emit the current form of a node; :meth:`LoweringContext.emit` asks
:func:`older_form` for the equivalent valid at the target opset when that opset predates
the current form (``CURRENT_FORM_SINCE``):

- ``Squeeze`` / ``Unsqueeze`` / ``ReduceSum`` take ``axes`` as an input from opset 13
  (an attribute before), the other ``Reduce*`` ops from opset 18;
- ``Shape`` has ``start`` / ``end`` from opset 15 (a ``Slice`` of the whole shape before).

Only syntax changes live here: an axes input must be a constant (every rule builds it with
``ctx.ints``). Changes of meaning (Softmax's axis below 13, Trilu below 14, ScatterElements'
reduction below 16/18, LayerNormalization below 17) are handled by the rules themselves,
which know the IR shapes and dtypes.
"""

from __future__ import annotations

_REDUCE_18 = ("ReduceMax", "ReduceMin", "ReduceProd", "ReduceMean", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")

#: op type -> the opset whose form the rules write
CURRENT_FORM_SINCE = {"Squeeze": 13, "Unsqueeze": 13, "ReduceSum": 13, "Shape": 15,
                      **{op: 18 for op in _REDUCE_18}}


def _axes_attribute(ctx, op_type, ins, outputs, attrs) -> bool:
    """``op(x, axes)`` -> ``op(x, axes=[...])`` (an omitted or empty axes input: every
    dim, as before)."""
    if attrs.pop("noop_with_empty_axes", 0):
        ctx.require(CURRENT_FORM_SINCE[op_type], f"{op_type} with noop_with_empty_axes")
    if len(ins) < 2:
        return False  # already the old form
    axes = ctx.const_value(ins[1])
    if axes is None:
        ctx.require(CURRENT_FORM_SINCE[op_type], f"{op_type} with axes computed at run time")
    axes = [int(a) for a in axes.reshape(-1)]
    ctx.emit(op_type, [ins[0]], outputs=outputs, axes=axes or None, **attrs)
    return True


def _shape_slice(ctx, op_type, ins, outputs, attrs) -> bool:
    """``Shape(x, start, end)`` -> ``Slice(Shape(x), start, end)``."""
    if "start" not in attrs and "end" not in attrs:
        return False
    start = int(attrs.get("start", 0))
    end = attrs.get("end")
    full = ctx.emit("Shape", [ins[0]])
    ends = ctx.ints([end if end is not None else 2 ** 63 - 1])
    ctx.emit("Slice", [full, ctx.ints([start]), ends, ctx.ints([0])], outputs=outputs)
    return True


_RULES = {"Squeeze": _axes_attribute, "Unsqueeze": _axes_attribute,
          "ReduceSum": _axes_attribute, "Shape": _shape_slice,
          **{op: _axes_attribute for op in _REDUCE_18}}


def older_form(ctx, op_type: str, ins: list, outputs: list, attrs: dict) -> bool:
    """Emit ``op_type``'s form valid at ``ctx.opset`` writing ``outputs``; False when the
    node as given is already valid there (the caller then emits it unchanged)."""
    return _RULES[op_type](ctx, op_type, ins, outputs, attrs)


__all__ = ["CURRENT_FORM_SINCE", "older_form"]
