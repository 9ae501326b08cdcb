"""ONNX lowerings of the special functions of ``backends/special_gamma.py``,
``special_bessel.py``, ``special_bessel_more.py`` and ``special_poly.py`` (gammainc/gammaincc
as ``igamma``/``igammac``, zeta, erfcx, the Bessel and Airy functions, the orthogonal
polynomials): the same algorithm as the CPU kernel, emitted as elementary ONNX nodes; its
loops become ``Loop`` nodes whose bodies are subgraphs (so the graph stays the size of the
algorithm's text), with a trip count computed from the data (``ReduceMax``) for the
polynomials' recurrences. The ops in
``special_gamma.FLOAT64_COMPUTE`` compute in float64 for float32 inputs too, as their
Triton helpers do."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from framework import dtypes
from framework.backends import special_bessel, special_bessel_more, special_gamma, special_poly

from . import lowering
from .context import onnx_dtype
from .elementwise import _OnnxKit, compute_dtype, narrowed, widened


class _LoopKit(_OnnxKit):
    """The ONNX kit with ``loop``: a ``Loop`` node (trip count ``n``, no condition) whose
    carried values start as full-shape tensors (``zero + init``)."""

    def __init__(self, ctx, dt, zero):
        super().__init__(ctx, dt)
        self.zero = zero

    def loop(self, n, body, *carry):
        ctx = self.ctx
        init = [ctx.emit("Add", [self.zero, self._v(c)]) for c in carry]
        it, cond = ctx.fresh("iter"), ctx.fresh("cond")
        ins = [ctx.fresh("carry") for _ in carry]
        outer, ctx.nodes = ctx.nodes, []
        try:
            new = body(*ins)
            outs = [ctx.emit("Identity", [self._v(v)]) for v in new]
            cond_out = ctx.emit("Identity", [cond])
            nodes = ctx.nodes
        finally:
            ctx.nodes = outer
        elem = onnx_dtype(self.dt)
        graph = helper.make_graph(
            nodes, ctx.fresh("loop_body"),
            [helper.make_tensor_value_info(it, TensorProto.INT64, []),
             helper.make_tensor_value_info(cond, TensorProto.BOOL, [])]
            + [helper.make_tensor_value_info(i, elem, None) for i in ins],
            [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, [])]
            + [helper.make_tensor_value_info(o, elem, None) for o in outs])
        trips = n if isinstance(n, str) else ctx.const(np.array(int(n), np.int64), "trips")
        res = ctx.emit("Loop", [trips, "", *init], num_outputs=len(carry), body=graph)
        return tuple(res) if isinstance(res, list) else (res,)


    def trips(self, v, cap):
        """A data-dependent trip count: ``min(max(v), cap)`` as an int64 scalar (0 for an
        empty operand)."""
        ctx = self.ctx
        flat = ctx.emit("Reshape", [self._v(v), ctx.const(np.array([-1], np.int64), "flat")])
        most = ctx.emit("ReduceMax", [ctx.emit("Concat", [flat, ctx.const(
            np.zeros(1, self.dt.np), "zero")], axis=0)], keepdims=0)
        return ctx.emit("Cast", [ctx.emit("Min", [most, self._v(cap)])], to=TensorProto.INT64)


def _compute_dtype(name, dt):
    return dtypes.float64 if name in special_gamma.FLOAT64_COMPUTE else compute_dtype(dt)


def _rule(name, fn, nargs):
    def lower(ctx, node):
        dt = node.outputs[0].dtype
        cd = _compute_dtype(name, dt)
        args = widened(ctx, node, cd, dt)
        both = args[0] if nargs == 1 else ctx.emit("Add", args)
        zero = ctx.emit("ConstantOfShape", [ctx.emit("Shape", [both])],
                        value=numpy_helper.from_array(np.zeros(1, cd.np)))
        return [narrowed(ctx, fn(_LoopKit(ctx, cd, zero), *args), cd, dt)]
    return lower


for _name, _fn in (("erfcx", special_gamma.erfcx), ("bessel_j0", special_bessel.bessel_j0),
                   ("bessel_j1", special_bessel.bessel_j1), ("airy_ai", special_bessel.airy_ai),
                   ("spherical_bessel_j0", special_bessel.spherical_bessel_j0)):
    lowering(_name)(_rule(_name, _fn, 1))
for _name, _fn in special_bessel_more.UNARY.items():
    lowering(_name)(_rule(_name, _fn, 1))
for _name, _fn in (("igamma", special_gamma.gammainc), ("igammac", special_gamma.gammaincc),
                   ("zeta", special_gamma.zeta), *special_poly.BINARY.items()):
    lowering(_name)(_rule(_name, _fn, 2))
