"""``save(ep, f)`` / ``load(f)``: an ExportedProgram as a zip archive, never pickled.

The archive (``f``: a path or a binary file object) holds

- ``fw_export/version``: the format name;
- ``fw_export/program.json``: the graph (:mod:`compiler.serialize`), where each external
  of the graph lives (kind, state name, persistence), the call structure of ``forward``
  and the dims' ranges -- plain JSON;
- ``fw_export/weights.safetensors``: the parameters, buffers and constants and the
  example inputs, in the framework's checkpoint format (:mod:`framework.serialization`);
- ``fw_export/extra/<name>``: the ``extra_files`` given to :func:`save`.

Loading rebuilds the graph, verifies it (every meta rule re-run) and checks every tensor
against the graph's types; nothing in the file is executed.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

from compiler.serialize import (UnsupportedValueError, decode_value, encode_value, graph_from_json,
                                graph_to_json)

from ..errors import ArgumentError, FwTypeError
from ..serialization import CheckpointError
from ..serialization import load as load_checkpoint
from ..serialization import save as save_checkpoint
from .program import CallSpec, ExportedProgram, InSlot, OutSlot, StateEntry, ValueRange
from .signature import InputKind

FORMAT = "fw.export/1"
_DIR = "fw_export/"


def save(ep, f, *, extra_files=None, opset_version=None, pickle_protocol: int = 2) -> None:
    """Write ``ep`` to ``f`` (a path or a binary file object). ``extra_files``: {name:
    str or bytes} stored alongside (read back by :func:`load`). ``pickle_protocol`` is
    accepted for PyTorch compatibility and ignored: nothing is pickled."""
    if not isinstance(ep, ExportedProgram):
        raise FwTypeError(f"export.save: expected an ExportedProgram, got {type(ep).__name__}")
    if opset_version is not None:
        raise NotImplementedError("export.save: opset_version is not supported (ops are "
                                  "stored by their registered names)")
    spec = ep.call_spec
    program = {
        "format": FORMAT,
        "graph": graph_to_json(ep.graph),
        "state": [{"value": name, "kind": e.kind.name, "target": e.target,
                   "persistent": e.persistent} for name, e in ep._state.items()],
        "call_spec": {"arg_names": list(spec.arg_names), "kwarg_names": list(spec.kwarg_names),
                      "in_spec": _encode_tree(spec.in_spec),
                      "out_spec": _encode_tree(spec.out_spec), "labels": list(spec.labels)},
        "range_constraints": [[s.name, encode_value(r.lower), encode_value(r.upper)]
                              for s, r in ep.range_constraints.items()],
        "device": None if ep._device is None else str(ep._device),
    }
    weights = io.BytesIO()
    save_checkpoint({"tensors": ep._tensors, "example_inputs": ep.example_inputs}, weights)
    target = f if hasattr(f, "write") else os.fspath(f)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(_DIR + "version", FORMAT)
        z.writestr(_DIR + "program.json", json.dumps(program, allow_nan=False, indent=1))
        z.writestr(_DIR + "weights.safetensors", weights.getvalue())
        for name, data in (extra_files or {}).items():
            z.writestr(_DIR + "extra/" + name, data)


def load(f, *, extra_files=None, expected_opset_version=None) -> ExportedProgram:
    """Read an ExportedProgram written by :func:`save`. ``extra_files``: a dict whose keys
    name the extra files to read; their contents (str) are filled in."""
    where = getattr(f, "name", None) or (f if isinstance(f, (str, os.PathLike)) else "<file>")
    try:
        with zipfile.ZipFile(f if hasattr(f, "read") else os.fspath(f)) as z:
            names = set(z.namelist())
            if _DIR + "program.json" not in names:
                raise CheckpointError(f"export.load: {where!r} is not an exported program "
                                      f"(no {_DIR}program.json)")
            program = json.loads(z.read(_DIR + "program.json").decode("utf-8"))
            weights = z.read(_DIR + "weights.safetensors")
            for name in list(extra_files or {}):
                if _DIR + "extra/" + name not in names:
                    raise ArgumentError(f"export.load: {where!r} has no extra file {name!r}")
                extra_files[name] = z.read(_DIR + "extra/" + name).decode("utf-8")
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"export.load: {where!r} is not an exported program archive "
                              f"({e})") from None
    if program.get("format") != FORMAT:
        raise CheckpointError(f"export.load: {where!r} has format {program.get('format')!r}, "
                              f"expected {FORMAT!r}")
    data = load_checkpoint(io.BytesIO(weights))
    tensors = data["tensors"]
    try:
        state = {d["value"]: StateEntry(InputKind[d["kind"]], d["target"], d["persistent"])
                 for d in program["state"]}
        by_value = {name: tensors[e.target] for name, e in state.items()}
    except KeyError as e:
        raise CheckpointError(f"export.load: {where!r} is corrupted (missing {e})") from None
    graph = graph_from_json(program["graph"], by_value)
    syms = graph.symbols
    cs = program["call_spec"]
    call = CallSpec(tuple(cs["arg_names"]), tuple(cs["kwarg_names"]),
                    _decode_tree(cs["in_spec"], syms), _decode_tree(cs["out_spec"], syms),
                    tuple(cs["labels"]))
    ranges = {syms[name]: ValueRange(decode_value(lo, syms), decode_value(hi, syms))
              for name, lo, hi in program["range_constraints"]}
    device = program["device"]
    if device is not None:
        from ..device import device as make_device
        device = make_device(device)
    return ExportedProgram(graph, state, tensors, call, ranges, data["example_inputs"], device)


def _encode_tree(x):
    if isinstance(x, InSlot):
        return {"$in": x.i}
    if isinstance(x, OutSlot):
        return {"$out": x.i}
    if isinstance(x, tuple):
        return [_encode_tree(v) for v in x]
    if isinstance(x, list):
        return {"$list": [_encode_tree(v) for v in x]}
    if isinstance(x, dict):
        return {"$dict": [[encode_value(k), _encode_tree(v)] for k, v in x.items()]}
    try:
        return encode_value(x)
    except UnsupportedValueError:
        raise NotImplementedError(f"export.save: forward's inputs or outputs hold a "
                                  f"{type(x).__name__} ({x!r:.40}), which the archive "
                                  "cannot store") from None


def _decode_tree(x, syms):
    if isinstance(x, list):
        return tuple(_decode_tree(v, syms) for v in x)
    if isinstance(x, dict):
        if "$in" in x:
            return InSlot(int(x["$in"]))
        if "$out" in x:
            return OutSlot(int(x["$out"]))
        if "$list" in x:
            return [_decode_tree(v, syms) for v in x["$list"]]
        if "$dict" in x:
            return {decode_value(k, syms): _decode_tree(v, syms) for k, v in x["$dict"]}
    return decode_value(x, syms)
