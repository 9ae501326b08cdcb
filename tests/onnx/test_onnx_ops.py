"""Every record of the op database exported alone and run in onnxruntime against eager,
and the coverage of the lowering table over the registry."""

import warnings

import numpy as np
import pytest

import framework as fw
from compiler.onnx import LOWERINGS, missing_lowerings, supported_opsets
from framework.ops.registry import OPS
from tests.opinfo import OP_DB, to_fw

# ORT kernels run float32/float64/int32/int64; the narrow types go through widening casts.
DTYPES = (fw.float32, fw.int64, fw.int32, fw.bool, fw.float64, fw.float16, fw.bfloat16,
          fw.uint8, fw.int8, fw.int16)


def _cases():
    """Every dtype for the first record of each registered op; one dtype (float32 when
    the record has it) for the other records of the same op (methods, operators,
    in-place forms), which lower to the same rules."""
    out, seen = [], set()
    for info in OP_DB:
        variant = info.name.endswith("_") or info.name.startswith("__")  # x.add_, x + y
        first = not variant and (info.op is None or info.op not in seen)
        seen.add(info.op)
        dts = [dt for dt in info.dtypes if dt in DTYPES]
        if not first and dts:
            dts = [fw.float32] if fw.float32 in dts else dts[:1]
        for dt in dts:
            out.append(pytest.param(info, dt, id=f"{info.name}-{dt.name}"))
    return out


def _tensor_outputs(out):
    if isinstance(out, fw.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensor_outputs(o)]
    return []


def _tol(info, dtype):
    atol, rtol = info.tol(dtype if dtype.is_floating_point else fw.float32)
    return max(rtol, 1e-5), max(atol, 1e-6)


def export_and_verify(info, dtype, opset=18):
    """Export each sample of ``info`` at ``dtype`` and compare onnxruntime with eager.
    Returns (samples run, graph-break messages, onnxruntime kernels missing)."""
    ran, breaks, missing = 0, [], []
    for s in info.samples(dtype):
        args = to_fw(s.args)
        kwargs = dict(s.kwargs)

        def fn(*a, _kw=kwargs):
            return info.fn(*a, **_kw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe = fn(*to_fw(s.args))
        except Exception:  # samples of error cases are the eager suite's business
            continue
        if not _tensor_outputs(probe):
            breaks.append("returns no tensor")
            continue
        rtol, atol = _tol(info, dtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # in-place records: "updates not exported"
                fw.onnx.export(fn, tuple(args), opset_version=opset, verify=True, rtol=rtol,
                               atol=atol)
        except fw.GraphBreak as e:  # data-dependent shapes (nonzero, masks, sort, .item())
            breaks.append(str(e).split(" at ")[0])
            continue
        except Exception as e:
            # onnxruntime lacks some float64 kernels (Conv, Erf, Atan); the model is valid
            if dtype is fw.float64 and "NOT_IMPLEMENTED" in str(e):
                missing.append(str(e).split("implementation for ")[-1].split(" node")[0])
                continue
            raise
        ran += 1
    return ran, breaks, missing


@pytest.mark.parametrize("info,dtype", _cases())
def test_op_exports_and_matches_eager(info, dtype):
    ran, breaks, missing = export_and_verify(info, dtype)
    if missing:
        pytest.xfail(f"onnxruntime has no float64 kernel for {sorted(set(missing))}")
    if not ran:
        pytest.skip(f"{info.name}: nothing to export ({sorted(set(breaks))}: data-dependent "
                    "output shapes cannot be captured, Python results are not tensors)")


@pytest.mark.parametrize("opset", [17, max(supported_opsets())])
@pytest.mark.parametrize("name", ["add", "sum", "cumprod", "softmax", "sin", "where"])
def test_ops_at_other_opsets(name, opset):
    infos = [i for i in OP_DB if i.name == name]
    assert infos, f"no op-database record {name!r}"
    assert export_and_verify(infos[0], fw.float32, opset)[0] > 0


def _load_all_ops():
    import importlib
    import pkgutil

    import framework.nn  # noqa: F401  (nn-level ops)
    import framework.ops
    import framework.transfer  # noqa: F401  (to_device)
    for m in pkgutil.iter_modules(framework.ops.__path__):
        importlib.import_module(f"framework.ops.{m.name}")


def test_every_registered_op_has_a_lowering():
    """Every registered op has a row in the lowering table (a composite's rule may still
    pick its decomposition for some opsets); ops with no way to export at all are listed
    separately."""
    _load_all_ops()
    assert not missing_lowerings(), f"ops with no ONNX lowering: {missing_lowerings()}"
    missing = sorted(n for n, op in OPS.items()
                     if n not in LOWERINGS and op.group != "library")  # not users' ops
    assert not missing, f"ops with no row in compiler.onnx_lowering.LOWERINGS: {missing}"


def test_op_database_covers_exported_ops():
    """The ONNX op test runs a record for every registered op that has one."""
    tested = {i.op for i in OP_DB if i.op}
    covered = tested & set(LOWERINGS)
    assert covered, "no op-database record maps to a lowered op"


def test_no_lowering_is_an_error(monkeypatch):
    """Removing a primitive's rule makes export fail with the op's name (not silently)."""
    monkeypatch.delitem(LOWERINGS, "sin")
    with pytest.raises(NotImplementedError, match="sin"):
        fw.onnx.export(lambda x: x.sin(), fw.randn(3))


def test_wrong_lowering_is_caught_by_verify(monkeypatch):
    """verify=True compares with eager: a deliberately wrong rule is reported."""
    def bad(ctx, node):
        return [ctx.emit("Cos", [ctx.name_of(node.inputs[0])])]
    monkeypatch.setitem(LOWERINGS, "sin", bad)
    with pytest.raises(fw.onnx.OnnxVerificationError, match="differs from eager"):
        fw.onnx.export(lambda x: x.sin(), fw.randn(3), verify=True)


def test_bitwise_needs_opset_18():
    x = fw.tensor(np.array([1, 6, 3], np.int64))
    with pytest.raises(ValueError, match=r"bitwise_and.*opset >= 18"):
        fw.onnx.export(lambda a: a & 5, x, opset_version=17)
    fw.onnx.export(lambda a: a & 5, x, opset_version=18, verify=True)


def test_wrong_shape_is_caught_by_the_checker(monkeypatch):
    """Intermediate values carry the IR's shapes, so strict shape inference rejects a rule
    whose output shape disagrees with the op's meta rule."""
    def bad(ctx, node):
        x = ctx.name_of(node.inputs[0])
        return [ctx.emit("Concat", [x, x], axis=0)]
    monkeypatch.setitem(LOWERINGS, "sin", bad)
    with pytest.raises(Exception, match="Inferred shape and existing shape differ"):
        fw.onnx.export(lambda x: x.sin().cos(), fw.randn(3))
