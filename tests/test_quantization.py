"""Quantization ops and observers: fake quantization against NumPy (ties to even, the
float32 reciprocal of the scale, clamping, NaN, per channel along each axis), the
straight-through gradient's mask, argument errors, the quantized-dtype markers, and the
observers' / fake quantize modules' qparams against PyTorch's formulas written in NumPy.
The eager-mode workflow (prepare_qat, convert, ONNX) is in test_quantization_workflow.py."""

import warnings

import numpy as np
import pytest

import framework as fw
import framework.ao.quantization as Q
from framework.ao.quantization import quantized_decomposed as qd
from framework.ao.quantization.fused_qparams import choose_qparams
from framework.errors import FwTypeError
from tests.opinfo_quant import ref_fake_quantize, ref_quantize

FQT = fw.fake_quantize_per_tensor_affine
FQC = fw.fake_quantize_per_channel_affine


# ---------------------------------------------------------------------------------------
# fake quantization values
def test_ties_round_half_to_even_and_clamp():
    x = fw.tensor([0.125, 0.375, 0.625, -0.125, -0.375, 5.0, -5.0])
    out = FQT(x, 0.25, 0, -8, 7)  # x / scale = .5, 1.5, 2.5, -.5, -1.5, 20, -20
    np.testing.assert_array_equal(out.numpy(), [0.0, 0.5, 0.5, -0.0, -0.5, 1.75, -2.0])


def test_zero_point_shifts_the_grid_and_the_clamp():
    x = fw.tensor([-1.0, 0.0, 0.6, 3.0])
    out = FQT(x, 0.5, 3, 0, 7)  # q = round(x / .5) + 3 clamped to [0, 7]
    np.testing.assert_array_equal(out.numpy(), [-1.0, 0.0, 0.5, 2.0])


def _reciprocal_witness():
    """(x, scale) where rint(x * float32(1 / scale)) != rint(x / scale) in float32."""
    g = np.random.default_rng(0)
    for scale in np.float32([0.1, 0.3, 0.7, 0.013, 0.0477]):
        inv = np.float32(1) / scale
        k = np.arange(-200, 200).astype(np.float32) + np.float32(0.5)
        for eps in range(-4, 5):
            x = (k * scale) * np.float32(1 + eps * 1e-7)
            a, b = np.rint(x * inv), np.rint(x / scale)
            if np.any(a != b):
                i = int(np.argmax(a != b))
                return np.float32(x[i]), scale
    raise AssertionError(f"no witness found {g}")


def test_multiplies_by_the_float32_reciprocal_as_pytorch():
    x, scale = _reciprocal_witness()
    out = FQT(fw.tensor([x]), float(scale), 0, -10000, 10000)
    want = np.rint(x * (np.float32(1) / scale)) * scale
    assert out.numpy()[0] == np.float32(want)
    assert out.numpy()[0] != np.float32(np.rint(x / scale) * scale)


def test_nan_goes_to_quant_min_and_inf_to_the_bounds():
    x = fw.tensor([np.nan, np.inf, -np.inf])
    np.testing.assert_array_equal(FQT(x, 0.5, 1, -4, 5).numpy(), [-2.5, 2.0, -2.5])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_channel_along_each_axis_matches_numpy(axis):
    g = np.random.default_rng(axis)
    x = g.normal(size=(3, 4, 5)).astype(np.float32)
    n = x.shape[axis]
    scale = g.uniform(0.01, 0.2, n).astype(np.float32)
    zp = g.integers(-10, 10, n).astype(np.int32)
    out = FQC(fw.tensor(x), fw.tensor(scale), fw.tensor(zp), axis, -128, 127)
    np.testing.assert_array_equal(  # float32 products of exact operands: rounded once
        out.numpy(), ref_fake_quantize(x, scale, zp, -128, 127, axis).astype(np.float32))
    # each slice along the axis is the per-tensor op with that slice's qparams
    for c in range(n):
        sl = [slice(None)] * 3
        sl[axis] = c
        one = FQT(fw.tensor(x[tuple(sl)]), float(scale[c]), int(zp[c]), -128, 127)
        np.testing.assert_array_equal(out.numpy()[tuple(sl)], one.numpy())


def test_float_zero_points_round_after_adding():
    x = fw.tensor([[0.1, 0.3], [0.2, -0.2]])
    out = FQC(x, fw.tensor([0.25, 0.5]), fw.tensor([0.5, -1.25]), 0, 0, 255)
    want = ref_fake_quantize(x.numpy(), np.float32([0.25, 0.5]), np.float32([0.5, -1.25]),
                             0, 255, 0)
    np.testing.assert_allclose(out.numpy(), want, atol=1e-7)


def test_half_inputs_compute_in_float32_and_float64_in_float64():
    g = np.random.default_rng(1)
    x = g.normal(size=20)
    for dt in (fw.float16, fw.bfloat16, fw.float64):
        t = fw.tensor(x, dtype=dt)
        out = FQT(t, 0.05, 2, -128, 127)
        assert out.dtype is dt
        want = ref_fake_quantize(t.float().numpy() if dt is not fw.float64 else x,
                                 np.float32(0.05), 2, -128, 127)
        np.testing.assert_allclose(out.float().numpy(), want, rtol=1e-2 if dt is not
                                   fw.float64 else 0, atol=1e-7)


def test_quantize_and_dequantize_round_trip_is_fake_quantization():
    g = np.random.default_rng(2)
    x = fw.tensor(g.normal(size=(4, 6)).astype(np.float32))
    q = qd.quantize_per_tensor(x, 0.02, 5, -128, 127, fw.int8)
    assert q.dtype is fw.int8
    np.testing.assert_array_equal(q.numpy(), ref_quantize(x.numpy(), 0.02, 5, -128, 127)[0])
    back = qd.dequantize_per_tensor(q, 0.02, 5, -128, 127, fw.int8)
    np.testing.assert_array_equal(back.numpy(), FQT(x, 0.02, 5, -128, 127).numpy())
    s, z = fw.tensor([0.01, 0.02, 0.05, 0.1]), fw.tensor([0, 100, 128, 255], dtype=fw.int32)
    qc = qd.quantize_per_channel(x, s, z, 0, 0, 255, fw.uint8)
    assert qc.dtype is fw.uint8
    np.testing.assert_array_equal(qd.dequantize_per_channel(qc, s, z, 0, 0, 255, fw.uint8)
                                  .numpy(), FQC(x, s, z, 0, 0, 255).numpy())


# ---------------------------------------------------------------------------------------
# the straight-through gradient
def test_gradient_is_the_mask_of_the_unclamped_value():
    # x / 0.5 = -9, -8.6 (rounds to -9), -8.4 (-8), 7.4 (7), 7.6 (8), 20 -> range [-8, 7]
    x = fw.tensor([-4.5, -4.3, -4.2, 3.7, 3.8, 10.0], requires_grad=True)
    g = fw.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    FQT(x, 0.5, 0, -8, 7).backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 3.0, 4.0, 0.0, 0.0])


def test_gradient_mask_against_numpy_per_tensor_and_per_channel():
    rng = np.random.default_rng(3)
    x = rng.normal(scale=2.0, size=(4, 5)).astype(np.float32)
    g = rng.normal(size=(4, 5)).astype(np.float32)
    xt = fw.tensor(x, requires_grad=True)
    FQT(xt, 0.03, 10, 0, 127).backward(fw.tensor(g))
    _, r = ref_quantize(x, 0.03, 10, 0, 127)
    np.testing.assert_array_equal(xt.grad.numpy(), g * ((r >= 0) & (r <= 127)))
    s, z = np.float32([0.01, 0.05, 0.1, 0.2, 0.3]), np.int32([0, 1, -1, 2, 3])
    xt = fw.tensor(x, requires_grad=True)
    FQC(xt, fw.tensor(s), fw.tensor(z), 1, -16, 15).backward(fw.tensor(g))
    _, r = ref_quantize(x, s, z, -16, 15, 1)
    np.testing.assert_array_equal(xt.grad.numpy(), g * ((r >= -16) & (r <= 15)))


def test_no_gradient_flows_to_scale_or_zero_point():
    x = fw.randn(5, requires_grad=True)
    scale = fw.tensor([0.1], requires_grad=True)
    out = FQT(x, scale, fw.tensor([0]), -128, 127)
    out.sum().backward()
    assert scale.grad is None and x.grad is not None


def test_compiled_forward_and_backward_equal_eager():
    def step(x, s, z):
        y = FQT(x, s, z, 0, 255) * 2.0 + FQC(x, s.expand(3), z.expand(3), 1, -128, 127)
        y.square().sum().backward()
        return y
    rng = np.random.default_rng(4)
    outs = []
    for fn in (step, fw.compile(step, mode="always")):
        x = fw.tensor(rng.normal(size=(2, 3)).astype(np.float32) if not outs else
                      outs[0][2], requires_grad=True)
        y = fn(x, fw.tensor([0.02]), fw.tensor([100], dtype=fw.int32))
        outs.append((y.detach().numpy(), x.grad.numpy(), x.detach().numpy()))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_compiled_python_scale_stays_a_runtime_value():
    f = fw.compile(lambda x, s: FQT(x, s, 0, -128, 127), mode="always")
    x = fw.tensor([0.3, 0.7])
    np.testing.assert_array_equal(f(x, 0.5).numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(f(x, 0.25).numpy(), [0.25, 0.75])


# ---------------------------------------------------------------------------------------
# argument errors
@pytest.mark.parametrize("call,err,match", [
    (lambda x: FQT(x, 0.1, 0, 5, 4), fw.ArgumentError, "quant_min .5. must be less"),
    (lambda x: FQT(x, 0.1, 200, -128, 127), fw.ArgumentError, "zero_point must be between"),
    (lambda x: FQT(x, 0.0, 0, -128, 127), fw.ArgumentError, "scale must be positive"),
    (lambda x: FQT(x, -1.0, 0, -128, 127), fw.ArgumentError, "scale must be positive"),
    (lambda x: FQT(x, 0.1, 0.5, -128, 127), FwTypeError, "zero_point must be an int"),
    (lambda x: FQT(x.long(), 0.1, 0, -128, 127), fw.DTypeError, "floating-point.*int64"),
    (lambda x: FQT(x, fw.tensor([0.1, 0.2]), fw.tensor([0]), -128, 127), fw.ShapeError,
     "scale must hold one element"),
    (lambda x: FQT(x, fw.tensor([0.1]), fw.tensor([0.0]), -128, 127), fw.DTypeError,
     "zero_point must be an integer"),
    (lambda x: FQT(x, fw.tensor([0.0]), fw.tensor([0]), -128, 127), fw.ArgumentError,
     "scale must be positive"),
    (lambda x: FQT(x, fw.tensor([0.1]), fw.tensor([300]), -128, 127), fw.ArgumentError,
     "zero_point must be between"),
    (lambda x: FQC(x, fw.tensor([0.1] * 3), fw.tensor([0] * 3), 1, -128, 127),
     fw.ShapeError, "3 elements but input has size 4 along axis 1"),
    (lambda x: FQC(x, fw.tensor([0.1] * 3), fw.tensor([0] * 2), 0, -128, 127),
     fw.ShapeError, "same size"),
    (lambda x: FQC(x, fw.tensor([0.1] * 3), fw.tensor([0] * 3), 2, -128, 127),
     fw.ArgumentError, "axis must be between 0 and input.dim.. - 1 = 1"),
    (lambda x: FQC(x, fw.tensor([0.1] * 3), fw.tensor([0, 0, 200]), 0, -128, 127),
     fw.ArgumentError, "zero_point must be between"),
    (lambda x: qd.quantize_per_tensor(x, 0.1, 0, -128, 300, fw.int8), fw.ArgumentError,
     "exceeds the range"),
    (lambda x: qd.quantize_per_tensor(x.double(), 0.1, 0, -128, 127, fw.int8),
     fw.DTypeError, "float32, float16 or bfloat16"),
    (lambda x: qd.dequantize_per_tensor(x, 0.1, 0, -128, 127, fw.int8), fw.DTypeError,
     "expected input of dtype int8"),
])
def test_bad_arguments_raise_framework_errors_naming_the_op(call, err, match):
    with pytest.raises(err, match=match) as info:
        call(fw.randn(3, 4))
    assert "quantize" in str(info.value)


def test_quantized_dtype_markers_are_not_tensor_dtypes():
    assert repr(fw.qint8) == "framework.qint8" and fw.quint8.max == 255
    assert fw.qint32.storage is fw.int32 and fw.per_channel_symmetric.name == \
        "per_channel_symmetric"
    with pytest.raises(fw.DTypeError, match="qint8 is a quantized dtype marker.*int8"):
        fw.zeros(2, dtype=fw.qint8)
    with pytest.raises(fw.DTypeError, match="quint8 is a quantized dtype marker"):
        fw.randn(2).to(dtype=fw.quint8)
    import copy
    import pickle
    assert pickle.loads(pickle.dumps(fw.qint8)) is fw.qint8
    assert copy.deepcopy(fw.per_tensor_affine) is fw.per_tensor_affine
    assert fw.quantization.prepare_qat is Q.prepare_qat


# ---------------------------------------------------------------------------------------
# observers: PyTorch's qparams formulas in NumPy (float32)
def np_qparams(lo, hi, qmin, qmax, symmetric, quint8=False, custom=False,
               eps=np.finfo(np.float32).eps):
    lo, hi = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    if symmetric:
        scale = max(np.float32(max(-lo, hi) / np.float32((qmax - qmin) / 2)), np.float32(eps))
        zp = ((qmin + qmax) // 2 if custom else 128) if quint8 else 0
        return scale, zp
    scale = max(np.float32((hi - lo) / np.float32(qmax - qmin)), np.float32(eps))
    zp = int(np.clip(qmin - np.rint(lo / scale), qmin, qmax))
    return scale, zp


@pytest.mark.parametrize("kw,qrange,symmetric,quint8,custom", [
    ({}, (0, 255), False, True, False),
    ({"reduce_range": True}, (0, 127), False, True, False),
    ({"dtype": fw.qint8}, (-128, 127), False, False, False),
    ({"dtype": fw.qint8, "reduce_range": True}, (-64, 63), False, False, False),
    ({"dtype": fw.qint8, "qscheme": fw.per_tensor_symmetric}, (-128, 127), True, False, False),
    ({"qscheme": fw.per_tensor_symmetric}, (0, 255), True, True, False),
    ({"qscheme": fw.per_tensor_symmetric, "quant_min": 0, "quant_max": 15}, (0, 15), True,
     True, True),
    ({"quant_min": 0, "quant_max": 255, "reduce_range": True}, (0, 127), False, True, True),
    ({"dtype": fw.qint8, "quant_min": -8, "quant_max": 7}, (-8, 7), False, False, True),
])
def test_minmax_observer_qparams_match_pytorch_formulas(kw, qrange, symmetric, quint8, custom):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reduce_range's deprecation notice
        obs = Q.MinMaxObserver(**kw)
    assert (obs.quant_min, obs.quant_max) == qrange
    data = [np.float32([-0.7, 0.2, 1.9]), np.float32([2.3, -0.1]), np.float32([0.5, 3.0])]
    for d in data:
        obs(fw.tensor(d))
    lo, hi = min(d.min() for d in data), max(d.max() for d in data)
    assert float(obs.min_val) == lo and float(obs.max_val) == hi
    scale, zp = obs.calculate_qparams()
    want_s, want_z = np_qparams(lo, hi, *qrange, symmetric, quint8, custom)
    assert scale.shape == (1,) and zp.shape == (1,)
    assert scale.numpy()[0] == want_s and int(zp.numpy()[0]) == want_z


def test_moving_average_observer_and_range_including_zero():
    obs = Q.MovingAverageMinMaxObserver(averaging_constant=0.25)
    obs(fw.tensor([1.0, 2.0]))          # first batch taken as is
    obs(fw.tensor([3.0, 6.0]))
    lo = np.float32(1.0) + np.float32(0.25) * (np.float32(3.0) - np.float32(1.0))
    hi = np.float32(2.0) + np.float32(0.25) * (np.float32(6.0) - np.float32(2.0))
    assert float(obs.min_val) == lo and float(obs.max_val) == hi
    scale, zp = obs.calculate_qparams()  # all positive: the range is [0, hi]
    assert scale.numpy()[0] == np.float32(hi / np.float32(255)) and int(zp) == 0


def test_constant_input_gives_the_eps_scale_and_unobserved_gives_defaults():
    obs = Q.MinMaxObserver(dtype=fw.qint8, qscheme=fw.per_tensor_symmetric)
    with pytest.warns(UserWarning, match="must run observer"):
        s, z = obs.calculate_qparams()
    assert s.numpy().tolist() == [1.0] and z.numpy().tolist() == [0]
    obs(fw.zeros(4))
    s, z = obs.calculate_qparams()
    assert s.numpy()[0] == np.finfo(np.float32).eps and int(z) == 0


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("symmetric", [False, True])
def test_per_channel_observers_match_numpy(axis, symmetric):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    x2 = rng.normal(size=(3, 4, 2)).astype(np.float32)
    qs = fw.per_channel_symmetric if symmetric else fw.per_channel_affine
    obs = Q.PerChannelMinMaxObserver(ch_axis=axis, dtype=fw.qint8, qscheme=qs)
    avg = Q.MovingAveragePerChannelMinMaxObserver(averaging_constant=0.5, ch_axis=axis,
                                                  dtype=fw.qint8, qscheme=qs)
    assert obs.min_val.shape == (0,)
    for t in (x, x2):
        obs(fw.tensor(t))
        avg(fw.tensor(t))
    red = tuple(d for d in range(3) if d != axis)
    lo = np.minimum(x.min(red), x2.min(red))
    hi = np.maximum(x.max(red), x2.max(red))
    np.testing.assert_array_equal(obs.min_val.numpy(), lo)
    alo = x.min(red) + np.float32(0.5) * (x2.min(red) - x.min(red))
    np.testing.assert_array_equal(avg.min_val.numpy(), alo)
    scale, zp = obs.calculate_qparams()
    for c in range(len(lo)):
        ws, wz = np_qparams(lo[c], hi[c], -128, 127, symmetric)
        assert scale.numpy()[c] == ws and zp.numpy()[c] == wz
    fresh = Q.PerChannelMinMaxObserver(ch_axis=axis, dtype=fw.qint8, qscheme=qs)
    fresh.load_state_dict(obs.state_dict())
    np.testing.assert_array_equal(fresh.max_val.numpy(), hi)


def test_observer_argument_errors():
    with pytest.raises(NotImplementedError, match="per_tensor"):
        Q.MinMaxObserver(qscheme=fw.per_channel_affine)
    with pytest.raises(NotImplementedError, match="reduce range for symmetric"):
        Q.MinMaxObserver(qscheme=fw.per_tensor_symmetric, reduce_range=True)
    with pytest.raises(Q.QuantizationError, match="must include 0"):
        Q.MinMaxObserver(quant_min=1, quant_max=10)
    with pytest.raises(AssertionError, match="not exceed"):
        Q.MinMaxObserver(dtype=fw.qint8, quant_min=-200, quant_max=100)
    with pytest.raises(fw.DTypeError, match="quantization dtype"):
        Q.MinMaxObserver(dtype=fw.float32)
    with pytest.raises(NotImplementedError, match="per_tensor"):
        Q.MinMaxObserver(qscheme=fw.per_channel_affine_float_qparams)
    with pytest.raises(Q.QuantizationError, match="observer instance"):
        Q.QConfig(activation=Q.MinMaxObserver(), weight=Q.default_weight_observer)


# ---------------------------------------------------------------------------------------
# fake quantize modules
def test_fake_quantize_module_observes_then_fake_quantizes():
    fq = Q.default_fake_quant()
    assert (fq.quant_min, fq.quant_max, fq.dtype) == (0, 127, fw.quint8)
    assert set(fq.state_dict()) == {"fake_quant_enabled", "observer_enabled", "scale",
                                    "zero_point", "activation_post_process.eps",
                                    "activation_post_process.min_val",
                                    "activation_post_process.max_val"}
    x = fw.tensor([-1.0, 0.3, 2.0])
    y = fq(x)
    s, z = fq.calculate_qparams()
    np.testing.assert_array_equal(fq.scale.numpy(), s.numpy())
    np.testing.assert_array_equal(y.numpy(), FQT(x, fq.scale, fq.zero_point, 0, 127).numpy())
    fq.disable_observer()
    fq(fw.tensor([50.0]))               # statistics and qparams frozen
    np.testing.assert_array_equal(fq.scale.numpy(), s.numpy())
    obs = fq.activation_post_process
    assert (float(obs.min_val), float(obs.max_val)) == (-1.0, 2.0)
    fq.disable_fake_quant()
    np.testing.assert_array_equal(fq(fw.tensor([0.123])).numpy(), np.float32([0.123]))
    fq.apply(Q.enable_fake_quant)
    assert fq(fw.tensor([0.123])).numpy()[0] != np.float32(0.123)


def test_per_channel_weight_fake_quant_resizes_and_reloads():
    fq = Q.default_per_channel_weight_fake_quant()
    w = fw.tensor(np.random.default_rng(6).normal(size=(4, 3)).astype(np.float32))
    out = fq(w)
    assert fq.scale.shape == (4,) and fq.is_per_channel
    np.testing.assert_array_equal(out.numpy(), FQC(w, fq.scale, fq.zero_point, 0, -128, 127)
                                  .numpy())
    fresh = Q.default_per_channel_weight_fake_quant()
    fresh.load_state_dict(fq.state_dict())
    np.testing.assert_array_equal(fresh(w).numpy(), out.numpy())


def _choose_qparams_scalar(lo, hi, qmin, qmax, sym):
    """quant_utils::ChooseQuantizationParams, line by line, for one (min, max)."""
    f32, small = np.float32, np.float32(6.1e-5)
    lo, hi = f32(lo), f32(hi)
    if lo < 0 and hi > 0 and sym:
        smin, smax = -((qmax - qmin) // 2 + 1), (qmax - qmin) // 2
        m = float(max(abs(lo / f32(smin)), abs(hi / f32(smax))))
        lo, hi = f32(m * smin), f32(m * smax)
    lo, hi = min(lo, f32(0)), max(hi, f32(0))
    scale = (float(hi) - float(lo)) / (qmax - qmin)
    if f32(scale) == 0 or np.isinf(f32(1) / f32(scale)):
        scale = 0.1
    if scale < float(small):
        org = f32(scale)
        scale = float(small)
        if lo == 0:
            hi = small * f32(qmax - qmin)
        elif hi == 0:
            lo = -small * f32(qmax - qmin)
        else:
            lo, hi = lo * (small / org), hi * (small / org)
    zmin, zmax = qmin - float(lo) / scale, qmax - float(hi) / scale
    emin, emax = abs(qmin) - abs(float(lo) / scale), abs(qmax) - abs(float(hi) / scale)
    z = zmin if emin < emax else zmax
    if lo < 0 and hi > 0 and sym:
        z = (qmin + qmax) / 2
    z = qmin if z < qmin else qmax if z > qmax else np.rint(z)
    return f32(scale), int(z)


@pytest.mark.parametrize("sym,qrange", [(False, (0, 127)), (False, (0, 255)),
                                         (True, (-128, 127))])
def test_fused_fake_quant_qparams_follow_choose_quantization_params(sym, qrange):
    lo = np.float32([-1.0, 0.0, -3e-4, -0.3, -2.0, 0.0, -1e-9])
    hi = np.float32([2.0, 0.0, 1e-4, 0.0, -1.0, 5e-4, 3e-9])
    s, z = choose_qparams(fw.tensor(lo), fw.tensor(hi), *qrange, sym)
    for i in range(len(lo)):
        ws, wz = _choose_qparams_scalar(lo[i], hi[i], *qrange, sym)
        assert (s.numpy()[i], int(z.numpy()[i])) == (ws, wz), i


def test_fused_fake_quant_module_updates_moving_averages():
    fq = Q.default_fused_act_fake_quant()
    fq(fw.tensor([-1.0, 3.0]))
    fq(fw.tensor([0.0, 1.0]))
    obs = fq.activation_post_process
    assert float(obs.min_val) == np.float32(-1.0) + np.float32(0.01) * np.float32(1.0)
    ws, wz = _choose_qparams_scalar(float(obs.min_val), float(obs.max_val), 0, 255, False)
    assert fq.scale.numpy()[0] == ws and int(fq.zero_point.numpy()[0]) == wz


def test_default_qat_qconfigs_per_backend():
    x86 = Q.get_default_qat_qconfig("x86")
    act, wt = x86.activation(), x86.weight()
    assert isinstance(act, Q.FusedMovingAvgObsFakeQuantize)
    assert (act.quant_min, act.quant_max) == (0, 127) and wt.qscheme is \
        fw.per_channel_symmetric
    qnn = Q.get_default_qat_qconfig("qnnpack", version=0)
    act, wt = qnn.activation(), qnn.weight()
    assert type(act) is Q.FakeQuantize and (act.quant_min, act.quant_max) == (0, 255)
    assert wt.qscheme is fw.per_tensor_symmetric and wt.dtype is fw.qint8
    with pytest.raises(AssertionError, match="backend: tpu not supported"):
        Q.get_default_qat_qconfig("tpu")
