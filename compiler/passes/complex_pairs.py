"""Complex values as real pairs, for ONNX export (which has no complex tensors).

``run(graph)`` returns a graph in which each complex value ``z`` of shape S is a real
tensor of shape S + (2,) holding (real, imaginary): the layout ``view_as_real`` gives, so
``view_as_complex`` / ``view_as_real`` become no-ops. That is what rotary embeddings
written with ``torch.polar`` and ``view_as_complex`` (Meta's llama) need. Supported on
complex values: constants, view_as_complex / view_as_real, complex(re, im), real, imag,
conj, neg, add, sub, mul, div, cast, reshape, expand, permute and slice. A complex graph
input or output, a complex in-place update, or any other op on a complex value raises
NotImplementedError naming it.
"""

from __future__ import annotations

import numpy as np

from framework import dtypes
from framework.tensor import Tensor

from ..ir import Graph, Value
from . import rebuild
from .decompose import inline

_REAL_OF = {dtypes.complex64: dtypes.float32, dtypes.complex128: dtypes.float64}


def _re(p):
    return p[..., 0]


def _im(p):
    return p[..., 1]


def _pack(re, im):
    import framework as fw
    re, im = fw.broadcast_tensors(re, im)
    return fw.stack([re, im], -1)


def _mul(a, b, ca, cb):
    """``a * b`` where ``ca`` / ``cb`` say which operands are pairs (a Python complex
    scalar counts as one)."""
    if ca and cb:
        ar, ai = (a.real, a.imag) if isinstance(a, complex) else (_re(a), _im(a))
        br, bi = (b.real, b.imag) if isinstance(b, complex) else (_re(b), _im(b))
        return _pack(ar * br - ai * bi, ar * bi + ai * br)
    z, x = (a, b) if ca else (b, a)
    if isinstance(z, complex):  # a Python complex times a real tensor
        return _pack(x * z.real, x * z.imag)
    return z * (x.unsqueeze(-1) if isinstance(x, Tensor) else x)


def _add(a, b, ca, cb, sign):
    if ca and cb:
        ar, ai = (a.real, a.imag) if isinstance(a, complex) else (_re(a), _im(a))
        br, bi = (b.real, b.imag) if isinstance(b, complex) else (_re(b), _im(b))
        return _pack(ar + sign * br, ai + sign * bi)
    if ca:
        return _pack(_re(a) + sign * b, _im(a) + 0 * b)
    return _pack(a + sign * _re(b), sign * _im(b) + 0 * a)


def _div(a, b, ca, cb):
    if not cb:
        return a / (b.unsqueeze(-1) if isinstance(b, Tensor) else b)
    br, bi = (b.real, b.imag) if isinstance(b, complex) else (_re(b), _im(b))
    den = br * br + bi * bi
    conj_b = _pack(br, -bi) if isinstance(br, Tensor) else complex(br, -bi)
    num = _mul(a, conj_b, ca, True)
    return num / (den.unsqueeze(-1) if isinstance(den, Tensor) else den)


def _cast(x, to, was_complex):
    import framework as fw
    if to.is_complex:
        rt = _REAL_OF[to]
        return x.to(rt) if was_complex else _pack(x.to(rt), fw.zeros_like(x, dtype=rt))
    return _re(x).to(to)  # complex -> real keeps the real part (PyTorch warns)


def _rule(name, attrs, cplx):
    """The pair computation of one node: a function of its (mapped) inputs, or None."""
    if name in ("view_as_complex", "view_as_real"):
        return lambda p: p
    if name == "complex":
        return _pack
    if name == "real":
        return _re
    if name == "imag":
        return _im
    if name == "conj":
        return lambda p: _pack(_re(p), -_im(p))
    if name == "neg":
        return lambda p: -p
    if name == "mul":
        return lambda a, b: _mul(a, b, *cplx)
    if name in ("add", "sub") and attrs.get("alpha", 1) == 1:
        return lambda a, b: _add(a, b, *cplx, 1 if name == "add" else -1)
    if name == "div" and attrs.get("rounding_mode") is None:
        return lambda a, b: _div(a, b, *cplx)
    if name == "cast":
        return lambda x: _cast(x, attrs["dtype"], cplx[0])
    if name == "reshape":
        return lambda p: p.reshape(*attrs["shape"], 2)
    if name == "expand":
        return lambda p: p.expand(*attrs["shape"], 2)
    if name == "permute":
        dims = tuple(d % (len(attrs["dims"])) for d in attrs["dims"])
        return lambda p: p.permute(*dims, len(dims))
    if name == "slice":
        return lambda p: _slice(p, attrs)
    return None


def _slice(p, attrs):
    from framework.ops.movement import SLICE
    from framework.ops.registry import apply
    return apply(SLICE, p, starts=tuple(attrs["starts"]) + (0,),
                 stops=tuple(attrs["stops"]) + (2,), steps=tuple(attrs["steps"]) + (1,))


def _is_complex(x) -> bool:
    if isinstance(x, Value):
        return x.dtype is not None and x.dtype.is_complex
    return isinstance(x, complex)


def has_complex(graph: Graph) -> bool:
    """True when any value of ``graph`` is complex."""
    return any(v.dtype is not None and v.dtype.is_complex for v in graph.values())


def run(graph: Graph) -> Graph:
    """A copy of ``graph`` with its complex values as real (..., 2) pairs."""
    return rewrite(graph)[0]


def rewrite(graph: Graph) -> tuple[Graph, dict]:
    """:func:`run`, also returning the old -> new Value map."""
    for v in graph.inputs:
        if _is_complex(v):
            raise NotImplementedError(f"onnx export: input {v.name} is complex "
                                      f"({v.dtype.name}); ONNX has no complex tensors: pass "
                                      "torch.view_as_real(z) and view_as_complex it inside")
    for v in graph.outputs:
        if _is_complex(v):
            raise NotImplementedError(f"onnx export: the function returns a complex tensor "
                                      f"({v.dtype.name}); ONNX has no complex tensors: return "
                                      "torch.view_as_real(z) instead")
    if any(_is_complex(t) for t, _ in graph.mutations):
        raise NotImplementedError("onnx export: the function updates a complex tensor in "
                                  "place; ONNX has no complex tensors")
    consts: dict = {}
    sources = dict(getattr(graph, "sources", {}))

    def pair(g, x):
        if not (isinstance(x, Value) and _is_complex(x)):
            return x  # already a pair (made by a rewritten node), or a real value
        if x not in consts:  # a complex constant: its (real, imaginary) pairs
            t = g.constants[x]
            arr = np.asarray(t.detach().cpu().numpy() if t.device.type != "cpu" else t._data)
            real = Tensor._wrap(np.ascontiguousarray(np.stack([arr.real, arr.imag], -1)),
                                _REAL_OF[t.dtype], t.device)
            consts[x] = g.add_constant(x.name + "_pairs", real)
            g.sources[consts[x].name] = ("tensor", real)
        return consts[x]

    def visit(g, n, ins):
        if not hasattr(g, "sources"):
            g.sources = sources
        cplx = [_is_complex(x) for x in n.inputs]
        if not any(cplx) and not any(_is_complex(o) for o in n.outputs):
            return None
        rule = _rule(n.op.name, n.attrs, cplx)
        if rule is None:
            raise NotImplementedError(f"onnx export: {n.op.name} on a complex value has no "
                                      "lowering (ONNX has no complex tensors; supported: "
                                      "view_as_complex/real, complex, real, imag, conj, neg, "
                                      "add, sub, mul, div, cast, reshape, expand, permute, "
                                      "slice)")
        args = [pair(g, x) for x in ins]
        if n.op.name in ("view_as_complex", "view_as_real"):
            return [args[0]]
        tensors = [a for a in args if isinstance(a, Value)]
        it = iter(range(len(tensors)))
        slots = [next(it) if isinstance(a, Value) else None for a in args]

        def body(*ts):
            return rule(*[ts[s] if s is not None else a for s, a in zip(slots, args)])
        return inline(g, body, tensors)

    g, vmap = rebuild(graph, visit)
    g.sources = {**sources, **getattr(g, "sources", {})}
    g.passes.append("complex_pairs")
    return g, vmap
