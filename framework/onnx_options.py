"""The ``torch.onnx.export`` keyword arguments that are not about the graph itself:
``training`` (:class:`TrainingMode`), ``dynamic_shapes`` (turned into ``dynamic_axes``),
``export_params`` / ``keep_initializers_as_inputs`` (where the weights go in the model),
and ``verbose``. :func:`framework.onnx.export` applies them."""

from __future__ import annotations

import enum

from .errors import ArgumentError, FwTypeError


class TrainingMode(enum.IntEnum):
    """``torch.onnx.TrainingMode``: export in eval mode (the default), in the model's
    current mode, or in training mode (dropout active, batch statistics in batch norm)."""

    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


def set_modes(roots, training) -> list:
    """Put every module under ``roots`` in the mode ``training`` asks for; return the
    (module, previous mode) pairs to restore."""
    mode = TrainingMode(training) if not isinstance(training, TrainingMode) else training
    modes = [(m, m.training) for r in roots for m in r.modules()]
    if mode is not TrainingMode.PRESERVE:
        for r in roots:
            r.train(mode is TrainingMode.TRAINING)
    return modes


def dynamic_axes_from_shapes(dynamic_shapes, names) -> dict:
    """``dynamic_shapes`` in ``torch.export``'s forms (a dict keyed by input name, or a
    tuple/list in input order; per input ``{dim: Dim | str | Dim.AUTO}`` or one entry per
    dim, None for static) as ``dynamic_axes`` (``{input: {dim: name}}``)."""
    if isinstance(dynamic_shapes, dict):
        unknown = [k for k in dynamic_shapes if k not in names]
        if unknown:
            raise ArgumentError(f"onnx export: dynamic_shapes names {unknown}, which are not "
                                f"inputs {names}")
        items = dynamic_shapes.items()
    elif isinstance(dynamic_shapes, (tuple, list)):
        if len(dynamic_shapes) > len(names):
            raise ArgumentError(f"onnx export: dynamic_shapes has {len(dynamic_shapes)} "
                                f"entries for {len(names)} inputs {names}")
        items = zip(names, dynamic_shapes)
    else:
        raise FwTypeError(f"onnx export: dynamic_shapes must be a dict or a tuple, got "
                          f"{type(dynamic_shapes).__name__}")
    axes = {}
    for name, spec in items:
        if spec is None:
            continue
        per_dim = spec.items() if isinstance(spec, dict) else enumerate(spec)
        named = {int(d): _dim_name(dim, name, int(d)) for d, dim in per_dim
                 if dim is not None and _dim_name(dim, name, int(d)) is not None}
        if named:
            axes[name] = named
    return axes


def _dim_name(dim, input_name, d):
    if isinstance(dim, str):
        return dim
    hint = getattr(dim, "name", None)
    if hint == "STATIC":
        return None
    if hint in ("AUTO", "DYNAMIC"):
        return f"{input_name}_dim_{d}"
    name = getattr(dim, "__name__", None)
    if isinstance(name, str):
        return name
    raise FwTypeError(f"onnx export: dynamic_shapes[{input_name!r}][{d}] must be a Dim, a "
                      f"name or None, got {dim!r}")


def place_weights(model, weight_names, export_params: bool, as_inputs: bool) -> None:
    """``export_params=False``: the weights (initializers named in ``weight_names``) become
    graph inputs without data, for the caller to feed. ``keep_initializers_as_inputs``:
    every initializer is also listed as a graph input (a default the caller may
    override)."""
    from onnx import helper
    graph = model.graph
    existing = {i.name for i in graph.input}
    if not export_params:
        keep = [t for t in graph.initializer if t.name not in weight_names]
        moved = [t for t in graph.initializer if t.name in weight_names]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        for t in moved:
            graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
            existing.add(t.name)
    if as_inputs:
        for t in graph.initializer:
            if t.name not in existing:
                graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
