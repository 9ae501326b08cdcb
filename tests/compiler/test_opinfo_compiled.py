"""Every op of the op database, compiled vs eager (values and dtypes), float32 and the
record's first non-float dtype. Records whose op needs data to know its output shape (or
otherwise breaks the graph) must fall back to eager with a warning and still agree."""

import warnings

import numpy as np
import pytest

import framework as fw
from tests.opinfo import OP_DB, result_arrays, result_dtypes, to_fw


def _cases():
    for info in OP_DB:
        dts = [d for d in info.dtypes if d in (fw.float32,)]
        dts += [d for d in info.dtypes if not d.is_floating_point][:1]
        for dt in dts:
            yield pytest.param(info, dt, id=f"{info.name}-{dt.name}")


def _same(a, b, info, dt):
    atol, rtol = info.tol(dt)
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y, info, dt)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), atol=atol,
                               rtol=rtol, equal_nan=True)


@pytest.mark.parametrize("info,dt", list(_cases()))
def test_op_compiled_matches_eager(info, dt):
    samples = info.samples(dt)[:4]
    broke = []
    for s in samples:
        eager_args = to_fw(s.args)
        comp_args = to_fw(s.args)
        kwargs = s.kwargs

        def call(*a):
            return info.fn(*a, **kwargs)

        with fw.no_grad():
            try:
                ref = info.fn(*eager_args, **kwargs)
            except Exception as e:  # the sample is an error case: compiled must raise too
                with pytest.raises(type(e)):
                    fw.compile(call, mode="always")(*comp_args)
                continue
            cf = fw.compile(call, mode="always")
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                out = cf(*comp_args)
        if cf.stats()["eager_reason"]:
            broke.append(cf.stats()["eager_reason"])
        _same(result_arrays(ref), result_arrays(out), info, dt)
        assert result_dtypes(ref) == result_dtypes(out)
        if info.inplace:  # the write into the first argument happened in both
            _same(result_arrays(eager_args[0]), result_arrays(comp_args[0]), info, dt)
    for reason in broke:
        assert "graph break" in reason or "require grad" in reason, reason
