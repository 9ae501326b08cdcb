"""``fw.onnx.export``: a model or function -> an ONNX file, checked and optionally verified
in onnxruntime.

```python
model = nn.Sequential(nn.Linear(784, 256), nn.GELU(), nn.Linear(256, 10))
fw.onnx.export(model, fw.randn(1, 784), "mlp.onnx", dynamic_axes={"x": {0: "batch"}},
               verify=True)
```

The function runs once under the compiler's tracer (in ``eval()`` mode and without
autograd), the captured graph is lowered by :mod:`compiler.onnx`, and the model is checked
with ``onnx.checker.check_model(full_check=True)`` and strict shape inference. ``verify``
runs it in onnxruntime on the example inputs, and on a second size of every dynamic dim,
and raises :class:`OnnxVerificationError` with the worst mismatch against eager.

Command line: ``python -m framework.onnx file.py:factory --shape 1,784 -o model.onnx``
(see :mod:`framework.onnx_cli`).
"""

from __future__ import annotations

import inspect
import os
import tempfile
import warnings

import numpy as np

from .errors import ArgumentError, FrameworkError, GraphBreak
from .tensor import Tensor, meta_tensor
from .onnx_program import ONNXProgram  # noqa: F401  (fw.onnx.ONNXProgram)
from .onnx_options import (TrainingMode, dynamic_axes_from_shapes, place_weights,  # noqa: F401
                           set_modes)

_TWO_GB = 2 ** 31 - 1


class OnnxVerificationError(FrameworkError, AssertionError):
    """onnxruntime's outputs differ from eager execution (the message names the worst)."""


def export(model_or_fn, args, path=None, *, f=None, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: int | None = None, verify: bool = False,
           kwargs=None, dynamic: bool = False, external_data: bool | None = None,
           rtol: float | None = None, atol: float | None = None, dynamic_shapes=None,
           export_params: bool = True, keep_initializers_as_inputs: bool = False,
           training=TrainingMode.EVAL, do_constant_folding: bool = True, verbose=None,
           dynamo: bool = False):
    """Export ``model_or_fn(*args, **kwargs)`` to ONNX; return the ``onnx.ModelProto``.

    path (or PyTorch's ``f``): a path or an open binary file to write the model to (nothing
    is written when None).
    input_names: names of
    the tensor arguments (default: the parameter names of ``forward``/the function).
    output_names: names of the returned tensors (default ``output`` / ``output_<i>``).
    dynamic_axes: PyTorch's form, ``{"x": {0: "batch"}}`` or ``{"x": [0]}``, for inputs
    and outputs; dims marked with ``fw.mark_dynamic`` are dynamic too, and ``dynamic=True``
    makes every input dim dynamic (with a single tensor input and no input_names, a
    dynamic_axes key naming no input or output names that input, so the blueprint call
    ``export(model, x, "m.onnx", dynamic_axes={"x": {0: "batch"}})`` works for any
    ``forward`` argument name). opset_version: 12 up to the newest the installed onnx
    knows (18 by default; below 17 LayerNormalization, and below 14 Trilu, are decomposed,
    see docs/onnx.md). verify: compare onnxruntime with eager (raises OnnxVerificationError).
    external_data: store initializers in ``<path>.data`` (default: only above 2 GB).

    PyTorch's other options: ``dynamic_shapes`` (``torch.export``'s forms, with
    :class:`framework.export.Dim` or a name per dynamic dim; an alternative to
    ``dynamic_axes``), ``training`` (:class:`TrainingMode`: EVAL, the default, PRESERVE or
    TRAINING), ``export_params=False`` (the weights become graph inputs without data),
    ``keep_initializers_as_inputs`` (initializers also listed as inputs), ``verbose``
    (print the graph). ``do_constant_folding`` is accepted: constants are always folded.
    There is one exporter; ``dynamo=True`` returns the model wrapped in an
    :class:`framework.onnx_program.ONNXProgram` (``.save``, ``.model_proto``,
    ``.optimize()``, callable in onnxruntime), as PyTorch's dynamo exporter does.
    """
    import onnx

    from compiler.capture import discover
    from compiler.onnx import graph_to_onnx

    if f is not None:
        if path is not None:
            raise ArgumentError("onnx export: give the file as path or f, not both")
        path = f
    opset_version = 18 if opset_version is None else opset_version
    model_or_fn = _unwrap_compiled(model_or_fn)
    source_ep = model_or_fn if type(model_or_fn).__name__ == "ExportedProgram" else None
    model_or_fn, ep_axes = _from_exported_program(model_or_fn)
    args = _as_tuple(args)
    kwargs = dict(kwargs or {})
    if _flat_tensors(tuple(kwargs.values())):
        raise ArgumentError("onnx export: pass tensor inputs positionally in args (kwargs may "
                            "only hold Python values, which are baked into the model)")
    modes = _enter_eval(model_or_fn, args, training)
    try:
        names = _input_names(model_or_fn, args, input_names)
        if dynamic_shapes is not None:
            if dynamic_axes is not None:
                raise ArgumentError("onnx export: give dynamic_axes or dynamic_shapes, not "
                                    "both")
            dynamic_axes = dynamic_axes_from_shapes(dynamic_shapes, names)
        names = _adopt_single_input_name(names, input_names, dynamic_axes, output_names)
        if ep_axes:  # an ExportedProgram's dynamic dims, unless dynamic_axes names them
            dynamic_axes = {**{names[i]: a for i, a in ep_axes.items() if i < len(names)},
                            **(dynamic_axes or {})}
        asked = _dynamic_spec(args, names, dynamic_axes, False)
        dyn = _dynamic_spec(args, names, dynamic_axes, dynamic)
        graph, dyn = _capture_specializing(model_or_fn, args, kwargs, names, dyn, asked)
        known, _ = discover(model_or_fn, args)
        const_names = {v: known[id(t)][0] for v, t in graph.constants.items()
                       if id(t) in known}
        out_dims = {k: v for k, v in (dynamic_axes or {}).items() if k not in names}
        model = graph_to_onnx(graph, opset=opset_version, input_names=names,
                              output_names=output_names, constant_names=const_names,
                              output_dim_names=out_dims)
        if not export_params or keep_initializers_as_inputs:
            place_weights(model, set(const_names.values()), export_params,
                          keep_initializers_as_inputs)
        if verbose:
            print(onnx.printer.to_text(model.graph))
        unknown = [k for k in out_dims if k not in [o.name for o in model.graph.output]]
        if unknown:
            raise ArgumentError(f"onnx export: dynamic_axes names {unknown} that are neither "
                                f"inputs {names} nor outputs "
                                f"{[o.name for o in model.graph.output]}; name the inputs "
                                "with input_names=[...] (or the outputs with output_names)")
        if hasattr(path, "write"):  # a binary file object, as torch.onnx.export's f takes
            if external_data or _initializer_bytes(model) > _TWO_GB:
                raise ArgumentError("onnx export: weights in external data need a file path, "
                                    "not a file object")
            _check(onnx, model, None)
            path.write(model.SerializeToString())
            external = False
        else:
            path = None if path is None else os.fspath(path)
            external = _check_and_save(onnx, model, path, external_data)
        if verify and not export_params:
            raise ArgumentError("onnx export: verify=True needs the weights in the model "
                                "(export_params=True)")
        if verify:
            verify_model(model, model_or_fn, args, kwargs, dyn,
                         source=path if external else None, rtol=rtol, atol=atol)
    finally:
        _restore_modes(modes)
    if dynamo:
        from .onnx_program import ONNXProgram
        return ONNXProgram(model, source_ep)
    return model


# ---------------------------------------------------------------------------------------
# arguments, names, dynamic dims
def _as_tuple(args):
    if isinstance(args, Tensor):
        return (args,)
    if isinstance(args, list):
        return tuple(args)
    if not isinstance(args, tuple):
        raise ArgumentError(f"onnx export: args must be a Tensor or a tuple of inputs, got "
                            f"{type(args).__name__}")
    return args


def _unwrap_compiled(obj):
    """``fw.compile`` wrappers export the module or function they wrap."""
    if type(obj).__name__ == "OptimizedModule":
        return obj._orig_mod
    if type(obj).__name__ == "CompiledFunction" and callable(getattr(obj, "fn", None)):
        return obj.fn
    return obj


def _from_exported_program(obj):
    """An ``fw.export`` ExportedProgram exports its ``module()``; its dynamic dims become
    named ONNX dims: (model, {input index: {dim: name}} or None)."""
    if type(obj).__name__ != "ExportedProgram" or not hasattr(obj, "module"):
        return obj, None
    axes = {i: {d: str(s) for d, s in enumerate(v.shape) if not isinstance(s, int)}
            for i, v in enumerate(obj.graph.inputs)}
    return obj.module(), {i: a for i, a in axes.items() if a}


def _is_module(obj) -> bool:
    return hasattr(obj, "named_parameters") and hasattr(obj, "eval") and hasattr(obj, "modules")


def _enter_eval(obj, args=(), training=TrainingMode.EVAL):
    """Put the model -- or, for a function, every module it reaches through its closure,
    globals and arguments -- in the mode ``training`` asks for (eval() by default);
    returns the modes to restore."""
    if _is_module(obj):
        roots = [obj]
    else:
        from compiler.capture import reachable
        roots = [o for _, o in reachable(obj, args) if _is_module(o)]
    return set_modes(roots, training)


def _restore_modes(modes):
    for m, training in modes or ():
        m.training = training


def _tensor_slots(args):
    """(position, flat path suffix) of each tensor leaf of ``args``, in order."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            out.append((i, ()))
        elif isinstance(a, (tuple, list)):
            out += [(i, (j,)) for j, x in enumerate(a) if isinstance(x, Tensor)]
    return out


def _input_names(fn, args, given):
    slots = _tensor_slots(args)
    if given is not None:
        given = list(given)
        if len(given) != len(slots):
            raise ArgumentError(f"onnx export: {len(given)} input_names given for "
                                f"{len(slots)} tensor inputs")
        return given
    target = fn.forward if _is_module(fn) and hasattr(fn, "forward") else fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i, sub in slots:
        base = params[i] if i < len(params) else f"input_{i}"
        names.append(base if not sub else f"{base}_{sub[0]}")
    return names


def _adopt_single_input_name(names, given, dynamic_axes, output_names):
    """``export(model, x, dynamic_axes={"x": {0: "batch"}})`` with one tensor input and no
    input_names: the one dynamic_axes key that names no input/output names that input."""
    if given is not None or len(names) != 1 or not dynamic_axes:
        return names
    outs = set(output_names or ("output",)) | {f"output_{i}" for i in range(64)}
    unknown = [k for k in dynamic_axes if k not in names and k not in outs]
    return [unknown[0]] if len(unknown) == 1 else names


def _flat_tensors(args):
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out += [x for x in a if isinstance(x, Tensor)]
    return out


def _map_tensors(args, fn):
    """``args`` with ``fn`` applied to each tensor leaf (top level, or inside a tuple/list)."""
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(fn(a))
        elif isinstance(a, (tuple, list)):
            out.append(type(a)(fn(x) if isinstance(x, Tensor) else x for x in a))
        else:
            out.append(a)
    return tuple(out)


def _dynamic_spec(args, names, dynamic_axes, dynamic_all):
    """Per tensor input: {axis: dim name} of its dynamic dims."""
    tensors = _flat_tensors(args)
    spec = [dict() for _ in tensors]
    for i, t in enumerate(tensors):
        for d in sorted(t.__dict__.get("_fw_dynamic", ())):
            spec[i][d] = f"{names[i]}_dim{d}"
        if dynamic_all:
            spec[i].update({d: f"{names[i]}_dim{d}" for d in range(t.ndim)})
    for key, dims in (dynamic_axes or {}).items():
        if key not in names:
            continue
        i = names.index(key)
        nd = tensors[i].ndim
        items = dims.items() if isinstance(dims, dict) else ((d, None) for d in dims)
        for d, dn in items:
            if not isinstance(d, int) or not -nd <= d < nd:
                raise ArgumentError(f"onnx export: dynamic_axes[{key!r}] names axis {d!r} but "
                                    f"input {key!r} has {nd} dims")
            spec[i][d % nd] = dn if dn is not None else f"{key}_dim{d % nd}"
    return spec


def _capture_specializing(fn, args, kwargs, names, dyn, asked):
    """Capture with the dynamic dims ``dyn``. Dims that ``dynamic=True`` added (beyond the
    ``asked`` ones: dynamic_axes, fw.mark_dynamic) are let go when the program constrains
    them, as PyTorch's automatic dynamic shapes do: feature dims (the last) first, then
    channel dims (dim 1), then all but the batch dim; the dims kept static are named in a
    warning. Returns (graph, the dynamic dims used)."""
    from compiler.capture import capture_graph

    from .autograd import no_grad

    def keep(pred):
        return [{d: n for d, n in spec.items() if d in a or pred(d, t.ndim)}
                for spec, a, t in zip(dyn, asked, _flat_tensors(args))]
    ladder = [dyn, keep(lambda d, nd: d != nd - 1 or nd < 2),
              keep(lambda d, nd: d != 1 and (d != nd - 1 or nd < 2)), keep(lambda d, nd: d == 0),
              keep(lambda d, nd: False)]
    tried, error = [], None
    for option in ladder:
        if option in tried:
            continue
        tried.append(option)
        try:
            with no_grad():
                graph = capture_graph(fn, _trace_args(args, option), kwargs or None,
                                      input_names=names,
                                      dynamic={i: d for i, d in enumerate(option) if d})
        except (FrameworkError, TypeError, ValueError, NotImplementedError) as e:
            error = error or e  # NotImplementedError: an op that needs the dim static
            continue
        dropped = [f"{names[i]} dim {d}" for i, (full, got) in enumerate(zip(dyn, option))
                   for d in full if d not in got]
        if dropped:
            warnings.warn(f"onnx export: dynamic=True, but the model constrains "
                          f"{', '.join(dropped)} (first error with them dynamic: "
                          f"{type(error).__name__}: {error}); exported with those dims static",
                          stacklevel=3)
        return graph, option
    if isinstance(error, TypeError) and "truth value of Relational" in str(error):
        rel = str(error).rsplit(": ", 1)[-1]
        raise GraphBreak(f"onnx export: the model tests a dynamic dim in Python ({rel}: an "
                         f"`assert` or `if` on a size), which cannot be traced with the dim "
                         f"symbolic; export that dim static, or test the size outside "
                         f"forward") from error
    if isinstance(error, TypeError) and "Cannot convert symbols to int" in str(error):
        raise GraphBreak("onnx export: the model turns a dynamic dim into a Python int "
                         "(int() or float arithmetic on a size, e.g. Swin's "
                         "`int(windows.shape[0] / (H * W / ws / ws))`), which cannot be traced "
                         "with the dim symbolic; compute the size with // on sizes, or export "
                         "that dim static") from error
    raise error


def _trace_args(args, dyn):
    """Stand-ins for tracing: a dynamic dim of size 1 (or 0) is traced at size 2, since the
    tracer keeps sizes 0 and 1 static (they change broadcasting)."""
    it = iter(range(len(dyn)))

    def stand(t):
        i = next(it)
        if not any(t.shape[d] < 2 for d in dyn[i]):
            return t
        shape = tuple(2 if d in dyn[i] and s < 2 else s for d, s in enumerate(t.shape))
        m = meta_tensor(shape, t.dtype, t.device)
        m.requires_grad = t.requires_grad
        return m

    return _map_tensors(args, stand)


# ---------------------------------------------------------------------------------------
# saving and checking
def _initializer_bytes(model) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def _save(onnx, model, path, external):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if external:
        location = os.path.basename(path) + ".data"
        if os.path.exists(os.path.join(d, location)):
            os.remove(os.path.join(d, location))  # the writer appends to an existing file
        copy = type(model)()
        copy.CopyFrom(model)
        onnx.save_model(copy, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=location, size_threshold=0)
    else:
        onnx.save_model(model, path)


def _check_and_save(onnx, model, path, external_data) -> bool:
    """Check the model, then write it to ``path`` (if any); return whether its weights
    went to external data. Models above 2 GB are checked from a file (protobuf's limit)."""
    external = _initializer_bytes(model) > _TWO_GB if external_data is None \
        else bool(external_data)
    if not external:
        _check(onnx, model, None)
        if path is not None:
            _save(onnx, model, path, False)
    elif path is not None:
        _save(onnx, model, path, True)
        _check(onnx, model, path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "model.onnx")
            _save(onnx, model, p, True)
            _check(onnx, model, p)
    return external and path is not None


def _check(onnx, model, path):
    """check_model(full_check=True) and strict shape inference (from ``path`` when the
    weights live in external data)."""
    if path is not None:
        onnx.checker.check_model(path, full_check=True)
        return
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


# ---------------------------------------------------------------------------------------
# verification against eager
def _tolerances(dtype, rtol, atol):
    if rtol is not None or atol is not None:
        return rtol or 0.0, atol or 0.0
    name = dtype.name
    if name == "float64":
        return 1e-7, 1e-9
    if name in ("float16", "bfloat16"):
        return 2e-2, 2e-2
    if name == "float32":
        return 1e-4, 1e-5
    return 0.0, 0.0


def _flatten_out(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten_out(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flatten_out(o)]
    return []


def _host(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy() if t.device.type != "cpu" else t.detach().numpy())


def compare_outputs(names, got, expected, rtol=None, atol=None) -> None:
    """Raise OnnxVerificationError naming the worst mismatch between ``got`` (NumPy arrays
    from onnxruntime) and ``expected`` (eager tensors)."""
    if len(got) != len(expected):
        raise OnnxVerificationError(f"onnx verify: onnxruntime returned {len(got)} outputs, "
                                    f"eager {len(expected)}")
    worst = None
    for name, g, e in zip(names, got, expected):
        ref = _host(e)
        r, a = _tolerances(e.dtype, rtol, atol)
        if g.shape != ref.shape:
            raise OnnxVerificationError(f"onnx verify: output {name!r} has shape "
                                        f"{list(g.shape)} in onnxruntime but "
                                        f"{list(ref.shape)} in eager")
        if ref.size == 0:
            continue
        gf, rf = g.astype(np.float64), ref.astype(np.float64)
        err = np.abs(gf - rf)
        both_nan = np.isnan(gf) & np.isnan(rf)
        same_inf = np.isinf(rf) & (gf == rf)
        err = np.where(both_nan | same_inf, 0.0, np.nan_to_num(err, nan=np.inf))
        excess = err - (a + r * np.abs(np.nan_to_num(rf)))
        k = int(np.argmax(excess))
        if excess.flat[k] > 0 and (worst is None or excess.flat[k] > worst[0]):
            idx = np.unravel_index(k, ref.shape)
            worst = (excess.flat[k], name, tuple(int(i) for i in idx), g.flat[k], ref.flat[k],
                     err.flat[k], r, a, int(np.sum(excess > 0)), ref.size)
    if worst is not None:
        _, name, idx, gv, rv, err, r, a, bad, total = worst
        raise OnnxVerificationError(
            f"onnx verify: output {name!r} differs from eager at index {idx}: onnxruntime "
            f"{gv!r} vs eager {rv!r} (abs diff {err:.3g}, rtol={r:g}, atol={a:g}; "
            f"{bad} of {total} elements out of tolerance)")


def _session(model, source):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1  # example inputs are small; thread pools cost more
    opts.inter_op_num_threads = 1
    bf16 = _bf16_io(model)
    if bf16:  # onnxruntime's Python API has no bfloat16 arrays: feed/fetch float32
        model = _float32_io(model, bf16)
        source = None
    src = source if source is not None else model.SerializeToString()
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _bf16_io(model):
    from onnx import TensorProto
    return {v.name for v in list(model.graph.input) + list(model.graph.output)
            if v.type.tensor_type.elem_type == TensorProto.BFLOAT16}


def _float32_io(model, names):
    """A copy of ``model`` whose bfloat16 inputs/outputs are float32, cast inside."""
    from onnx import TensorProto, helper
    m = type(model)()
    m.CopyFrom(model)
    g = m.graph
    casts_in, casts_out = [], []
    for v in g.input:
        if v.name in names:
            inner = v.name + "__bf16"
            for n in g.node:
                for i, x in enumerate(n.input):
                    if x == v.name:
                        n.input[i] = inner
            casts_in.append(helper.make_node("Cast", [v.name], [inner], to=TensorProto.BFLOAT16))
            v.type.tensor_type.elem_type = TensorProto.FLOAT
    for v in g.output:
        if v.name in names:
            inner = v.name + "__bf16"
            for n in g.node:
                for i, x in enumerate(n.output):
                    if x == v.name:
                        n.output[i] = inner
                for i, x in enumerate(n.input):
                    if x == v.name:
                        n.input[i] = inner
            casts_out.append(helper.make_node("Cast", [inner], [v.name], to=TensorProto.FLOAT))
            v.type.tensor_type.elem_type = TensorProto.FLOAT
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    return m


def _resized_inputs(args, dyn, rng):
    """Fresh example inputs where every dynamic dim has a different size."""
    sizes = {}
    tensors = _flat_tensors(args)
    for t, spec in zip(tensors, dyn):
        for d, dn in spec.items():
            sizes.setdefault(dn, t.shape[d] + 2 if t.shape[d] >= 2 else 3)
    from .creation import tensor as make
    it = iter(zip(tensors, dyn))

    def fresh(t):
        _, spec = next(it)
        if not spec:
            return t
        shape = tuple(sizes[spec[d]] if d in spec else s for d, s in enumerate(t.shape))
        ref = _host(t)
        if t.dtype.is_floating_point:
            data = rng.standard_normal(shape).astype(ref.dtype)
        elif t.dtype.name == "bool":
            data = rng.random(shape) < 0.5
        else:
            lo, hi = (int(ref.min()), int(ref.max())) if ref.size else (0, 0)
            data = rng.integers(lo, hi + 1, size=shape).astype(ref.dtype)
        return make(data, dtype=t.dtype, device=t.device)

    return _map_tensors(args, fresh), sizes


def _feed(t):
    a = np.array(_host(t), copy=True)
    return a.astype(np.float32) if t.dtype.name == "bfloat16" else a


def verify_model(model, fn, args, kwargs=None, dyn=None, *, source=None, rtol=None,
                 atol=None) -> None:
    """Run ``model`` in onnxruntime on ``args`` (and on resized inputs when some dims are
    dynamic) and compare with ``fn(*args)`` run eagerly; raise OnnxVerificationError.
    Modules run in eval mode (their modes are restored after)."""
    modes = _enter_eval(_unwrap_compiled(fn))
    try:
        _verify(model, fn, args, kwargs, dyn, source, rtol, atol)
    finally:
        _restore_modes(modes)


def _verify(model, fn, args, kwargs, dyn, source, rtol, atol):
    from .autograd import no_grad
    sess = _session(model, source)
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    runs = [(args, None)]
    if dyn and any(dyn):
        runs.append(_resized_inputs(args, dyn, np.random.default_rng(0)))
    for run_args, sizes in runs:
        # copies: the eager call below may write into its inputs (in-place functions)
        feeds = dict(zip(in_names, (_feed(t) for t in _flat_tensors(run_args))))
        with no_grad():
            expected = _flatten_out(fn(*run_args, **(kwargs or {})))
        got = sess.run(None, feeds)
        try:
            compare_outputs(out_names, got, expected, rtol, atol)
        except OnnxVerificationError as e:
            if sizes:
                raise OnnxVerificationError(f"{e} [with dynamic dims resized to {sizes}]") \
                    from None
            raise


if __name__ == "__main__":  # python -m framework.onnx ...
    from .onnx_cli import main
    raise SystemExit(main())
