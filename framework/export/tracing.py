"""``export(mod, args, ...)``: capture a module's forward into an :class:`ExportedProgram`.

The forward runs once under the compiler's tracer (:func:`compiler.capture.trace`, the
capture ``fw.compile`` and ``fw.onnx.export`` use), in the module's current train/eval
mode and without autograd, on data-less stand-ins for the example inputs. Export is always
whole-graph: anything the trace cannot capture (``.item()``, a data-dependent ``if``)
raises :class:`framework.errors.GraphBreak` naming the file and line.

Dims named in ``dynamic_shapes`` become sympy symbols. After the capture each symbol is
checked: the graph's meta rules are re-run with that dim at another size in its range; if
they fail, the program specialized the dim (or tied it to another), which raises
:class:`ConstraintViolationError` naming the dim -- except for ``Dim.AUTO`` dims, which are
then made static.
"""

from __future__ import annotations

import dataclasses
import inspect

import sympy

from compiler.capture import discover, flatten, map_tree, trace
from compiler.symbolic import check_assumptions

from ..autograd import no_grad
from ..errors import FrameworkError, FwTypeError, GraphBreak, ShapeError
from ..nn.modules.module import Module
from ..tensor import Tensor, meta_tensor
from .dims import ConstraintViolationError, parse_dynamic_shapes, resolve_specs
from .program import CallSpec, ExportedProgram, InSlot, OutSlot, StateEntry, ValueRange
from .signature import InputKind

_CAPTURE_ERRORS = (ShapeError, TypeError, ValueError, NotImplementedError)


def export(mod, args, kwargs=None, *, dynamic_shapes=None, strict: bool = False,
           preserve_module_call_signature=()) -> ExportedProgram:
    """Export ``mod``'s forward for the example inputs ``args``/``kwargs`` (PyTorch's
    ``torch.export.export``).

    dynamic_shapes: a dict keyed by ``forward``'s argument names (or a tuple/list in
    argument order) giving, per tensor, ``{dim: Dim}`` or one entry per dim (a
    :class:`Dim`, ``Dim.AUTO``, ``Dim.DYNAMIC``, ``Dim.STATIC`` or None). strict: accepted
    for PyTorch compatibility (there is one tracer; both modes behave the same).
    preserve_module_call_signature: not supported (raises NotImplementedError when given).
    """
    if not isinstance(mod, Module):
        raise FwTypeError(f"export: expected `mod` to be an nn.Module, got "
                          f"{type(mod).__name__} (wrap a function in a Module whose forward "
                          "calls it)")
    if not isinstance(args, tuple):
        raise FwTypeError(f"export: expected `args` to be a tuple, got {type(args).__name__}")
    kwargs = dict(kwargs or {})
    if preserve_module_call_signature:
        raise NotImplementedError("export: preserve_module_call_signature (for unflatten) "
                                  "is not implemented")
    arg_names = _arg_names(mod, len(args))
    slots = [(path, t) for path, t in flatten((args, kwargs)) if isinstance(t, Tensor)]
    labels = [_label(path, arg_names) for path, _ in slots]
    found = parse_dynamic_shapes(dynamic_shapes, arg_names, args, kwargs)
    specs = resolve_specs(found, [(t, lab) for (_, t), lab in zip(slots, labels)])
    cap, specs = _capture(mod, args, kwargs, specs, labels)
    return _program(mod, args, kwargs, cap, specs, arg_names, labels)


def _arg_names(mod, n) -> list:
    try:
        params = list(inspect.signature(mod.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), "args")
    return [names[i] if i < len(names) else f"{var}_{i}" for i in range(n)]


def _label(path, arg_names) -> str:
    head = arg_names[path[1]] if path[0] == 0 else str(path[1])
    return head + "".join(f"[{p!r}]" for p in path[2:])


# ---------------------------------------------------------------------------------------
# capture with the dynamic dims, checking what the program did with them
def _trace(mod, args, kwargs, specs):
    """One capture. Dynamic dims whose example size is 0 or 1 are traced at size 2
    (the tracer keeps 0 and 1 static: they change broadcasting)."""
    it = iter(specs)

    def stand(t):
        spec = next(it)
        shape = tuple(2 if d in spec and s < 2 else s for d, s in enumerate(t.shape))
        return meta_tensor(shape, t.dtype, t.device)

    s_args, s_kwargs = map_tree((args, kwargs), lambda x: stand(x) if isinstance(x, Tensor)
                                else x)
    names, _ = discover(mod, ())
    dynamic = {i: {d: s.name for d, s in spec.items()} for i, spec in enumerate(specs) if spec}
    with no_grad():
        return trace(mod, tuple(s_args), s_kwargs, names=names, dynamic=dynamic or None,
                     specialize_floats=True)


def _capture(mod, args, kwargs, specs, labels):
    """Capture, dropping ``Dim.AUTO`` dims the program needs static; raise
    ConstraintViolationError for other dims it specializes."""
    unified = False
    while True:
        try:
            cap = _trace(mod, args, kwargs, specs)
        except GraphBreak as e:
            raise GraphBreak(f"export: {e} (export captures the whole forward; rewrite "
                             "data-dependent code with tensor ops such as fw.where)") from None
        except _CAPTURE_ERRORS as e:
            if not any(specs):
                raise
            autos = {s.name for spec in specs for s in spec.values() if s.auto}
            if autos and not unified:
                unified = True
                merged = _unify_auto_dims(specs, autos, args, kwargs)
                if merged is not None:
                    specs = merged
                    continue
            if autos:
                specs = _viable_auto_dims(mod, args, kwargs, specs)
                continue
            _raise_if_static_works(mod, args, kwargs, specs, labels, e)
            raise
        problems = _specialized(cap.graph, specs, labels)
        if not problems:
            return cap, specs
        auto = {name for name, _ in problems if _spec_by_name(specs, name)[0].auto}
        if auto and not unified:
            unified = True
            merged = _unify_auto_dims(specs, {s.name for spec in specs for s in spec.values()
                                              if s.auto}, args, kwargs)
            if merged is not None:
                specs = merged
                continue
        if auto:
            specs = [{d: s for d, s in spec.items() if s.name not in auto} for spec in specs]
            continue
        raise ConstraintViolationError("export: " + "; ".join(msg for _, msg in problems))


def _unify_auto_dims(specs, names, args, kwargs):
    """The program ties ``Dim.AUTO`` dims ``names`` to others (``a * b`` with two batch
    dims): give the ones of equal example size one symbol, as PyTorch unifies them; None
    when that changes nothing."""
    tensors = [t for _, t in flatten((args, kwargs)) if isinstance(t, Tensor)]
    first: dict = {}
    out = [dict(spec) for spec in specs]
    for i, spec in enumerate(specs):
        for d, s in spec.items():
            if s.auto and s.name in names:
                name = first.setdefault(tensors[i].shape[d], s.name)
                if name != s.name:
                    out[i][d] = dataclasses.replace(s, name=name)
    return None if out == specs else out


def _viable_auto_dims(mod, args, kwargs, specs):
    """The capture failed with some ``Dim.AUTO`` dims dynamic: keep each AUTO symbol (with
    every dim that shares it) that captures when it is the only dynamic one besides the
    named dims (a linear layer's feature dim does not, its batch dim does); if that keeps
    them all, drop them all."""
    fixed = [{d: s for d, s in spec.items() if not s.auto} for spec in specs]
    kept = [dict(spec) for spec in fixed]
    for name in dict.fromkeys(s.name for spec in specs for s in spec.values() if s.auto):
        trial = [{**f, **{d: s for d, s in spec.items() if s.name == name}}
                 for f, spec in zip(fixed, specs)]
        try:
            _trace(mod, args, kwargs, trial)
        except (GraphBreak, *_CAPTURE_ERRORS):
            continue
        for k, spec in zip(kept, specs):
            k.update({d: s for d, s in spec.items() if s.name == name})
    return fixed if kept == specs else kept


def _spec_by_name(specs, name):
    """(DimSpec, [(input index, dim), ...]) of the dynamic dim called ``name``."""
    locs = [(i, d) for i, spec in enumerate(specs) for d, s in spec.items() if s.name == name]
    i, d = locs[0]
    return specs[i][d], locs


def _where(specs, name, labels) -> str:
    spec, locs = _spec_by_name(specs, name)
    what = f"Dim({name!r})" if spec.named else f"the dynamic dim {name!r}"
    return f"{what} ({', '.join(f'{labels[i]} dim {d}' for i, d in locs)})"


def _raise_if_static_works(mod, args, kwargs, specs, labels, error):
    """The capture with dynamic dims failed: if it works with every dim static, the
    program constrains those dims -- say so."""
    try:
        _trace(mod, args, kwargs, [{} for _ in specs])
    except (FrameworkError, *_CAPTURE_ERRORS):
        return
    names = sorted({s.name for spec in specs for s in spec.values()})
    dims = ", ".join(_where(specs, n, labels) for n in names)
    raise ConstraintViolationError(
        f"export: the program cannot be captured with {dims} dynamic, but can with them "
        f"static, so it constrains them (first error: {type(error).__name__}: {error}); "
        "make them static (Dim.STATIC / None) or Dim.AUTO") from None


def _alternative(size, spec):
    for c in (size + 1, size - 1, size + 2):
        if c >= 2 and spec.min <= c <= spec.max and c != size:
            return c
    return None


def _specialized(graph, specs, labels) -> list:
    """(symbol name, message) for each dynamic dim the graph does not hold for at another
    size in its range."""
    base = dict(graph.sym_values)
    bad = {}
    for name in graph.symbols:
        spec, _ = _spec_by_name(specs, name)
        alt = _alternative(base[name], spec)
        err = None if alt is None else _fails(graph, {**base, name: alt})
        if err is not None:
            bad[name] = (alt, err)
    out = []
    done: set = set()
    for name, (alt, err) in bad.items():
        if name in done:
            continue
        same = [n for n in bad if base[n] == base[name]]
        if len(same) > 1 and _fails(graph, {**base, **{n: alt for n in same}}) is None:
            done.update(same)
            out.append((same[0], f"the program requires "
                        f"{' and '.join(_where(specs, m, labels) for m in same)} to be "
                        "equal; use one Dim for all of them"))
            continue
        out.append((name, f"{_where(specs, name, labels)} cannot be dynamic: the program "
                    f"specializes it to {base[name]} (at size {alt} it fails: {err}); mark "
                    "it static or change the model"))
    return out


def _fails(graph, sizes: dict):
    """Why ``graph`` does not hold when its symbols have ``sizes`` (name -> int), or None.
    Re-runs the meta rules against the recorded shapes, then runs the graph on data-less
    tensors of those sizes the way ``module()`` would (which also checks what meta rules
    leave to the public functions, such as a reshape keeping the element count)."""
    from ..device import meta
    from .interpreter import run_graph, substitute
    try:
        check_assumptions(graph, sizes)
        env = {graph.symbols[n]: v for n, v in sizes.items()}
        senv = {s: sympy.Integer(v) for s, v in env.items()}

        def standin(v):
            return meta_tensor(tuple(substitute(s, senv) for s in v.shape), v.dtype, meta)
        with no_grad():
            run_graph(graph, [standin(v) for v in graph.inputs],
                      {v: standin(v) for v in graph.constants}, env, (None, meta))
    except (FrameworkError, *_CAPTURE_ERRORS, IndexError) as e:
        return e
    return None


# ---------------------------------------------------------------------------------------
def _program(mod, args, kwargs, cap, specs, arg_names, labels) -> ExportedProgram:
    g = cap.graph
    if g.grad_writes or any(v.kind == "scalar_input" for v in g.inputs):
        raise NotImplementedError("export: forward assigns .grad or reads runtime scalars; "
                                  "export a pure forward")
    owned = _module_state(mod)
    state, tensors, k = {}, {}, 0
    for v, t in g.constants.items():
        entry = owned.get(id(t))
        if entry is None:
            target = f"lifted_tensor_{k}"
            k += 1
            entry = StateEntry(InputKind.CONSTANT_TENSOR, target)
        state[v.name] = entry
        tensors[entry.target] = t
    for t, _ in g.mutations:
        if t.kind != "input" and state[t.name].kind is not InputKind.BUFFER:
            raise NotImplementedError(f"export: forward updates {state[t.name].target!r} in "
                                      "place; only buffers and inputs may be mutated")
    if cap.out_tree is None or any(getattr(leaf, "kind", None) == "s"
                                   for _, leaf in flatten(cap.out_tree)):
        raise NotImplementedError("export: forward returns a runtime Python float")
    out_spec = map_tree(cap.out_tree, lambda leaf: OutSlot(leaf.x) if leaf.kind == "v"
                        else leaf.x)
    counter = iter(range(len(cap.arg_paths)))
    in_spec = map_tree((args, kwargs), lambda x: InSlot(next(counter))
                       if isinstance(x, Tensor) else x)
    call = CallSpec(tuple(arg_names), tuple(kwargs), in_spec, out_spec, tuple(labels))
    ranges = {}
    for spec in specs:
        for s in spec.values():
            sym = g.symbols.get(s.name)
            if sym is not None:
                ranges[sym] = ValueRange(s.min, s.max)
    first = next((t for _, t in flatten((args, kwargs)) if isinstance(t, Tensor)), None)
    device = first.device if first is not None else next(
        (t.device for t in tensors.values()), None)
    return ExportedProgram(g, state, tensors, call, ranges, (args, kwargs), device)


def _module_state(mod) -> dict:
    """id(tensor) -> StateEntry for the module's parameters and buffers."""
    out = {}
    for name, p in mod.named_parameters():
        out.setdefault(id(p), StateEntry(InputKind.PARAMETER, name))
    for mname, m in mod.named_modules():
        for bname, b in m._buffers.items():
            if b is None:
                continue
            full = f"{mname}.{bname}" if mname else bname
            persistent = bname not in m._non_persistent_buffers_set
            out.setdefault(id(b), StateEntry(InputKind.BUFFER, full, persistent))
    return out
