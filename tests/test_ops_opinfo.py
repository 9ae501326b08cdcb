"""Op database tests: forward values per dtype against NumPy, gradients by finite
differences (float64), and registry coverage (every registered op has a record)."""

import importlib
import pkgutil
import warnings

import numpy as np
import pytest

import framework as fw
from framework._state import tls
from framework.ops.registry import OPS
from tests.opinfo import (EXCLUDED, OP_DB, result_arrays, result_dtypes, to_fw,
                          to_np)


def _cases(kind):
    out = []
    for info in OP_DB:
        if kind == "grad":
            if info.differentiable:
                out.append(pytest.param(info, id=info.name))
            continue
        for dt in info.dtypes:
            out.append(pytest.param(info, dt, id=f"{info.name}-{dt.name}"))
    return out


def _expected_dtype(info, dtype, want):
    if info.out_dtype is not None:
        return info.out_dtype(dtype)
    if np.asarray(want).dtype == np.bool_:
        return fw.bool
    return dtype


def _element_dtype(info, exp, i, want):
    """Expected dtype of output ``i`` of a multi-output op (values, indices, ...)."""
    if isinstance(exp, tuple):
        return exp[i]
    kind = np.asarray(want).dtype.kind
    if i and kind in "iu" and info.out_dtype is not None:  # (values, indices)
        return fw.int64
    return fw.bool if kind == "b" else exp


def _compare(info, dtype, sample, got, want, got_dtype, exp_dt):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), (sample, got)
        for i, (g, w, gd) in enumerate(zip(got, want, got_dtype)):
            _compare(info, dtype, sample, g, w, gd, _element_dtype(info, exp_dt, i, w))
        return
    want = np.asarray(want)
    got = np.asarray(got)
    assert got.shape == want.shape, f"{info.name} {sample}: shape {got.shape} != {want.shape}"
    if got_dtype is not None:
        assert got_dtype is exp_dt, f"{info.name} {sample}: dtype {got_dtype} != {exp_dt}"
    if got_dtype is not None and got_dtype.is_floating_point:
        atol, rtol = info.tol(got_dtype if dtype.is_floating_point else fw.float32)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   atol=atol, rtol=rtol, equal_nan=True,
                                   err_msg=f"{info.name} {sample}")
    else:
        np.testing.assert_array_equal(got, want, err_msg=f"{info.name} {sample}")


@pytest.mark.parametrize("info,dtype", _cases("forward"))
def test_forward(info, dtype):
    samples = info.samples(dtype)
    assert samples, f"{info.name}: no samples for {dtype}"
    for s in samples:
        with warnings.catch_warnings():  # NumPy's own warnings in the reference
            warnings.simplefilter("ignore", RuntimeWarning)
            want = info.ref(*to_np(s.args), **to_np(s.kwargs))
        args, kwargs = to_fw(s.args), to_fw(s.kwargs)
        buffer = args[0]._data if info.inplace else None
        got = info.fn(*args, **kwargs)
        if info.inplace:
            assert got is args[0], f"{info.name}: in-place op must return its input"
            assert got._data is buffer, f"{info.name}: in-place op replaced the buffer"
        _compare(info, dtype, s, result_arrays(got), want, result_dtypes(got),
                 _expected_dtype(info, dtype, want if not isinstance(want, tuple) else want[0]))


def _grad_samples(info):
    return [s for s in info.samples(fw.float64) if s.grad]


@pytest.mark.parametrize("info", _cases("grad"))
def test_gradcheck(info):
    samples = _grad_samples(info)
    assert samples, f"{info.name}: no gradcheck samples"
    checked = 0
    for s in samples:
        args = to_fw(s.args, requires_grad=True)
        kwargs = to_fw(s.kwargs)
        leaves = [a for a in _flatten(args) if isinstance(a, fw.Tensor) and a.requires_grad]
        if not leaves:
            continue
        fn = info.fn
        if info.inplace:  # in-place on a non-leaf copy, so the leaves stay untouched
            def fn(first, *rest, _f=info.fn, **kw):
                return _f(first * 1.0, *rest, **kw)
        n_list = [len(a) if isinstance(a, list) else None for a in args]

        def call(*flat, _fn=fn, _n=n_list, _kw=kwargs):
            return _fn(*_unflatten(flat, _n), **_kw)
        assert fw.autograd.gradcheck(call, tuple(_flatten(args)), num_projections=1), \
            f"{info.name} {s}"
        checked += 1
    assert checked, f"{info.name}: no sample has a floating input"


def _flatten(args):
    out = []
    for a in args:
        out.extend(a if isinstance(a, list) else [a])
    return out


def _unflatten(flat, n_list):
    out, i = [], 0
    for n in n_list:
        if n is None:
            out.append(flat[i])
            i += 1
        else:
            out.append(list(flat[i:i + n]))
            i += n
    return out


# ---------------------------------------------------------------------------------------
_SKIP_MODULES = {"framework.bench", "framework.demo", "framework.__main__"}


def _import_all_framework_modules():
    """Import every framework module so lazily-registered ops are in OPS."""
    for mod in pkgutil.walk_packages(fw.__path__, "framework."):
        if any(mod.name == s or mod.name.startswith(s + ".") for s in _SKIP_MODULES):
            continue
        if mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError:  # optional dependency (cuda-bindings) missing
            pass


def test_every_registered_op_has_a_record():
    _import_all_framework_modules()
    covered = {info.op for info in OP_DB if info.op}
    users = {n for n, op in OPS.items() if op.group == "library"}  # fw.library ops
    missing = sorted(set(OPS) - covered - set(EXCLUDED) - users)
    assert not missing, ("registered ops without an OpInfo record (add one in "
                         f"tests/opinfo_<area>.py, or to EXCLUDED with the covering test): "
                         f"{missing}")
    stale = sorted(set(EXCLUDED) & covered)
    assert not stale, f"ops both excluded and recorded: {stale}"


class _OpRecorder:
    """A minimal tracer (the protocol in docs/internals.md) that notes op names."""

    def __init__(self):
        self.names = set()

    def record(self, op, args, attrs, outs):
        self.names.add(op.name)

    def mutate(self, target, value):
        pass

    def alias(self, src, dst):
        pass

    def graph_break(self, what):
        pass


@pytest.mark.parametrize("info", [pytest.param(i, id=i.name) for i in OP_DB if i.op])
def test_record_dispatches_its_op(info):
    rec = _OpRecorder()
    tls.tracer = rec
    try:
        for dt in info.dtypes:
            for s in info.samples(dt):
                info.fn(*to_fw(s.args), **to_fw(s.kwargs))
    finally:
        tls.tracer = None
    assert info.op in rec.names, f"{info.name} never dispatched op {info.op!r}: {rec.names}"


def test_public_functions_have_records():
    """Every public op function in framework.ops has a record (or is listed as not an op)."""
    import inspect
    import framework.ops as F
    names = {n for n in dir(F) if not n.startswith("_") and inspect.isfunction(getattr(F, n))}
    recorded = {i.name for i in OP_DB}
    aliases = {getattr(F, n) for n in recorded if hasattr(F, n)}
    missing = sorted(n for n in names - recorded - NOT_OPS if getattr(F, n) not in aliases)
    assert not missing, f"public functions without an OpInfo record: {missing}"


# Public names in framework.ops that are not ops on tensors, or are tested elsewhere.
NOT_OPS = {
    # complex numbers (record sweeps are real-dtype): tests/test_complex.py
    "real", "imag", "view_as_real", "view_as_complex", "conj", "conj_physical", "resolve_conj",
    "resolve_neg", "is_conj", "is_neg", "complex", "polar",
    # the STFT (composites over unfold/fft/index_add, complex results) and its window
    # functions (host-computed constants): tests/test_stft.py
    "stft", "istft", "hann_window", "hamming_window", "blackman_window", "bartlett_window",
    "kaiser_window",
    "apply", "register", "get_op", "binary", "unary", "cast", "numel", "index_put_key",
    # creation and random functions: tests/test_tensor_creation.py
    "tensor", "as_tensor", "from_numpy", "from_dlpack", "empty", "empty_like", "rand",
    "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm", "normal",
    "bernoulli", "multinomial",
    # order statistics and counting (composites over argsort, or host-computed with
    # data-dependent sizes): tests/test_order_stats.py, tests/gpu/test_gpu_order_stats.py
    "median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile", "msort",
    "searchsorted", "bucketize", "unique", "unique_consecutive", "bincount", "histc",
    # host computed with data-dependent bin edges (a graph break under fw.compile, not
    # differentiable): tests/test_torch_extra.py (test_histogram_*, test_histogramdd_*)
    "histogram", "histogramdd",
    # shape/dtype utilities, random sampling (graph break, zero gradient) and constructors
    # that share or lay out memory: tests/test_torch_gaps.py
    "broadcast_shapes", "can_cast", "poisson", "empty_strided", "asarray", "frombuffer",
    # special functions: records polygamma_1/polygamma_2 (opinfo_pointwise), tests/test_special.py
    "polygamma", "xlogy",
}


def _to_meta(x):
    if isinstance(x, fw.Tensor):
        return x.to("meta")
    if isinstance(x, (list, tuple)):
        return type(x)(_to_meta(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_meta(v) for k, v in x.items()}
    return x


def _tensors(out):
    if isinstance(out, fw.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for v in out for t in _tensors(v)]
    return []


@pytest.mark.parametrize("info", [pytest.param(i, id=i.name) for i in OP_DB])
def test_meta_tensors_get_the_eager_shapes_and_dtypes(info):
    """The meta rules alone (no data) predict every eager result's shape and dtype;
    data-dependent ops (nonzero, boolean masks, sort) must say so with a GraphBreak."""
    from framework.errors import GraphBreak
    dt = info.dtypes[0]
    for s in info.samples(dt):
        args, kwargs = to_fw(s.args), to_fw(s.kwargs)
        want = _tensors(info.fn(*args, **kwargs))
        try:
            got = _tensors(info.fn(*_to_meta(to_fw(s.args)), **_to_meta(to_fw(s.kwargs))))
        except GraphBreak:
            continue
        assert [(tuple(t.shape), t.dtype) for t in got] == \
            [(tuple(t.shape), t.dtype) for t in want], f"{info.name} {s}"
        if _tensors(args):  # creation records have no tensor input to take the device from
            assert all(t.device.type == "meta" for t in got), f"{info.name} {s}"


@pytest.mark.parametrize("info", _cases("grad"))
def test_gradgradcheck(info):
    """Second derivatives (VJP rules are differentiable themselves) on one small sample."""
    for s in _grad_samples(info):
        args = to_fw(s.args, requires_grad=True)
        flat = _flatten(args)
        if not any(isinstance(a, fw.Tensor) and a.requires_grad for a in flat) or \
                sum(a.numel() for a in flat if isinstance(a, fw.Tensor)) > 40:
            continue
        kwargs = to_fw(s.kwargs)
        fn = info.fn
        if info.inplace:
            def fn(first, *rest, _f=info.fn, **kw):
                return _f(first * 1.0, *rest, **kw)
        n_list = [len(a) if isinstance(a, list) else None for a in args]

        def call(*xs, _fn=fn, _n=n_list, _kw=kwargs):
            return _fn(*_unflatten(xs, _n), **_kw)
        assert fw.autograd.gradgradcheck(call, tuple(flat)), f"{info.name} {s}"
        return
