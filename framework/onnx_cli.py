"""``python -m framework.onnx``: export a model defined in a Python file to ONNX.

    python -m framework.onnx path/to/models.py:make_mlp --shape 1,784 -o mlp.onnx \\
        --dynamic x:0:batch --verify

SPEC is ``FILE.py:NAME`` or ``package.module:NAME``. NAME may be an ``nn.Module``
instance, a Module class or a factory taking no arguments (called to build the model), or
a function taking tensors (exported as it is). One ``--shape`` per input (comma-separated
sizes); ``--dtype`` gives each input's dtype (one value applies to all), integer inputs
are drawn from ``--int-range``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
from collections import Counter


def _load(spec: str):
    if ":" not in spec:
        raise SystemExit(f"error: SPEC must be FILE.py:NAME or module:NAME, got {spec!r}")
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py") or os.path.sep in where:
        path = os.path.abspath(where)
        if not os.path.exists(path):
            raise SystemExit(f"error: no such file {where!r}")
        sys.path.insert(0, os.path.dirname(path))
        mod_spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(path))[0], path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    try:
        return getattr(module, name)
    except AttributeError:
        raise SystemExit(f"error: {where!r} has no attribute {name!r}") from None


def _build(obj):
    """A Module instance, or what a class/zero-argument factory returns, or a function."""
    from .nn import Module
    if isinstance(obj, Module):
        return obj
    if isinstance(obj, type):
        return obj()
    if callable(obj):
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            return obj
        required = [p for p in params if p.default is p.empty and
                    p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return obj() if not required else obj
    raise SystemExit(f"error: {obj!r} is neither a Module, a factory nor a function")


def _inputs(shapes, dtypes_, int_range, seed):
    import numpy as np

    import framework as fw
    if not shapes:
        raise SystemExit("error: give one --shape per model input, e.g. --shape 1,784")
    if len(dtypes_) not in (0, 1, len(shapes)):
        raise SystemExit(f"error: {len(dtypes_)} --dtype values for {len(shapes)} inputs")
    rng = np.random.default_rng(seed)
    lo, hi = int_range
    out = []
    for i, s in enumerate(shapes):
        try:
            shape = tuple(int(v) for v in s.split(",") if v.strip())
        except ValueError:
            raise SystemExit(f"error: bad --shape {s!r} (comma-separated ints)") from None
        name = dtypes_[i] if len(dtypes_) > 1 else (dtypes_[0] if dtypes_ else "float32")
        dt = fw.dtypes.from_name(name)
        if dt.is_floating_point:
            data = rng.standard_normal(shape)
        elif dt is fw.bool:
            data = rng.random(shape) < 0.5
        else:
            data = rng.integers(lo, hi, size=shape)
        out.append(fw.tensor(np.asarray(data).astype(dt.np), dtype=dt))
    return tuple(out)


def _dynamic(items):
    spec = {}
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise SystemExit(f"error: bad --dynamic {item!r} (NAME:AXIS[:DIM_NAME])")
        name, axis = parts[0], int(parts[1])
        spec.setdefault(name, {})[axis] = parts[2] if len(parts) == 3 else f"{name}_dim{axis}"
    return spec


def _describe(model, path):
    def dims(v):
        return "[" + ", ".join(d.dim_param or str(d.dim_value)
                               for d in v.type.tensor_type.shape.dim) + "]"
    ops = Counter(n.op_type for n in model.graph.node)
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    lines = [f"wrote {path}: opset {model.opset_import[0].version}",
             "  inputs:  " + ", ".join(f"{i.name}{dims(i)}" for i in model.graph.input),
             "  outputs: " + ", ".join(f"{o.name}{dims(o)}" for o in model.graph.output),
             f"  {len(model.graph.node)} nodes: " +
             ", ".join(f"{k} x{v}" if v > 1 else k for k, v in ops.most_common()),
             f"  {len(model.graph.initializer)} initializers, {size / 1e6:.2f} MB"]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Parse the command line, export, print a summary; returns the exit status."""
    from compiler.onnx import DEFAULT_OPSET, supported_opsets
    p = argparse.ArgumentParser(prog="python -m framework.onnx",
                                description="Export a framework model to ONNX.")
    p.add_argument("spec", help="FILE.py:NAME or package.module:NAME")
    p.add_argument("--shape", action="append", default=[], help="input sizes, e.g. 1,784")
    p.add_argument("--dtype", action="append", default=[], help="input dtype(s)")
    p.add_argument("-o", "--output", help="output path (default: NAME.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"opset {min(supported_opsets())}..{max(supported_opsets())}")
    p.add_argument("--input-names", help="comma-separated input names")
    p.add_argument("--output-names", help="comma-separated output names")
    p.add_argument("--dynamic", action="append", default=[],
                   help="NAME:AXIS[:DIM_NAME] dynamic dim (repeatable)")
    p.add_argument("--int-range", default="0,10", help="LOW,HIGH for integer inputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verify", action="store_true", help="compare onnxruntime with eager")
    a = p.parse_args(argv)

    import framework as fw
    model = _build(_load(a.spec))
    lo, hi = (int(v) for v in a.int_range.split(","))
    fw.manual_seed(a.seed)
    path = a.output or a.spec.rsplit(":", 1)[1] + ".onnx"
    try:
        args = _inputs(a.shape, a.dtype, (lo, hi), a.seed)
        m = fw.onnx.export(model, args, path,
                           input_names=a.input_names.split(",") if a.input_names else None,
                           output_names=a.output_names.split(",") if a.output_names else None,
                           dynamic_axes=_dynamic(a.dynamic) or None, opset_version=a.opset,
                           verify=a.verify)
    except (fw.FrameworkError, NotImplementedError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(_describe(m, path) + ("\n  verified against eager in onnxruntime" if a.verify
                                else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
