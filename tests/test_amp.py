"""Automatic mixed precision on the CPU: ``fw.autocast`` (op policies, nesting, decorator,
gradients, the parameter-cast cache, fw.compile and ONNX under autocast) and
``fw.amp.GradScaler`` (scale arithmetic, inf/nan skipping, growth, misuse errors,
state_dict, a converging training loop)."""

import threading
import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.nn import functional as F
from framework.ops import registry

BF16, F16, F32, F64 = fw.bfloat16, fw.float16, fw.float32, fw.float64


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 4))


# -- the autocast context -----------------------------------------------------------------
def test_defaults_namespaces_and_queries():
    assert fw.amp.autocast is fw.autocast
    assert fw.get_autocast_dtype("cpu") is BF16 and fw.get_autocast_dtype("cuda") is F16
    assert fw.amp.is_autocast_available("cpu") and not fw.amp.is_autocast_available("tpu")
    assert not fw.is_autocast_enabled("cpu") and not fw.is_autocast_enabled()
    assert issubclass(fw.cuda.amp.autocast, fw.autocast)
    assert issubclass(fw.cuda.amp.GradScaler, fw.amp.GradScaler)
    assert registry._autocast_hook is None  # outside a region apply pays one `is None`
    with fw.autocast("cpu") as ac:
        assert registry._autocast_hook is not None
        assert fw.is_autocast_enabled("cpu") and not fw.is_autocast_enabled("cuda")
        assert ac.fast_dtype is BF16 and fw.is_autocast_cache_enabled()
    with fw.autocast("cpu", dtype=F16):
        assert fw.get_autocast_dtype("cpu") is F16
    assert fw.get_autocast_dtype("cpu") is BF16 and registry._autocast_hook is None


@pytest.mark.parametrize("dtype", [BF16, F16])
def test_lower_precision_ops(dtype):
    x, w, b = fw.randn(4, 8), fw.randn(3, 8), fw.randn(3)
    img = fw.randn(2, 3, 6, 6)
    with fw.autocast("cpu", dtype=dtype):
        outs = {
            "linear": F.linear(x, w, b), "matmul": x @ w.t(), "mm": fw.mm(x, w.t()),
            "bmm": fw.bmm(x[None], w.t()[None]), "einsum": fw.einsum("ij,kj->ik", x, w),
            "conv2d": nn.Conv2d(3, 4, 3)(img), "conv_t": nn.ConvTranspose2d(3, 2, 3)(img),
            "lstm": nn.LSTM(8, 5)(x[None])[0], "gru_cell": nn.GRUCell(8, 5)(x),
            "sdpa": F.scaled_dot_product_attention(x[None], x[None], x[None]),
            "mha": nn.MultiheadAttention(8, 2)(x[None], x[None], x[None])[0],
        }
        # autocast changes the dtype the op computes in, not the values' meaning
        ref = (x.to(dtype) @ w.t().to(dtype) + b.to(dtype)).float()
        np.testing.assert_allclose(outs["linear"].float().numpy(), ref.numpy(), rtol=1e-2,
                                   atol=1e-2)
    for name, out in outs.items():
        assert out.dtype is dtype, name


def test_fp32_ops_and_ops_that_follow_their_inputs():
    x = fw.randn(4, 8)
    t = fw.tensor([0, 1, 2, 3])
    with fw.autocast("cpu"):
        h = nn.Linear(8, 8)(x)
        assert h.dtype is BF16
        # PyTorch's CPU fp32 list: losses (cross_entropy, nll_loss, mse_loss, ...)
        assert F.cross_entropy(h, t).dtype is F32
        assert F.cross_entropy(h, t, weight=fw.ones(8), label_smoothing=0.1).dtype is F32
        assert F.nll_loss(F.log_softmax(h, 1), t).dtype is F32
        assert F.mse_loss(h, h.detach()).dtype is F32
        assert F.binary_cross_entropy_with_logits(h, fw.rand(4, 8)).dtype is F32
        # norms compute in float32 and keep the input's dtype (PyTorch's mixed kernels)
        assert nn.LayerNorm(8)(h).dtype is BF16 and nn.LayerNorm(8)(x).dtype is F32
        assert nn.BatchNorm1d(8)(h).dtype is BF16 and nn.GroupNorm(2, 8)(h).dtype is BF16
        # not on the CPU lists: they run in their inputs' dtype, as in PyTorch
        assert F.softmax(h, 1).dtype is BF16 and F.softmax(x, 1).dtype is F32
        assert F.gelu(h).dtype is BF16 and (h + 1).dtype is BF16 and x.exp().dtype is F32
        assert (h + x).dtype is F32  # ordinary type promotion still applies


def test_promote_float64_and_integer_operands():
    a, b = fw.randn(2, 3), fw.randn(2, 3).to(BF16)
    with fw.autocast("cpu"):
        assert fw.cat([a, b]).dtype is F32 and fw.stack([b, b]).dtype is BF16
        d = fw.randn(3, 3, dtype=F64)
        assert (d @ d).dtype is F64  # float64 is never autocast
        i = fw.arange(6).reshape(2, 3)
        assert (i @ i.t()).dtype is fw.int64  # nor are integer tensors
        emb = nn.Embedding(5, 4)(fw.tensor([1, 2]))
        assert emb.dtype is F32  # embedding is on no list


def test_nested_disabled_region_and_state_restored_on_error():
    x = fw.randn(2, 4)
    with fw.autocast("cpu"):
        with fw.autocast("cpu", enabled=False):
            assert not fw.is_autocast_enabled("cpu")
            assert (x @ x.t()).dtype is F32
            with fw.autocast("cpu", dtype=F16):
                assert (x @ x.t()).dtype is F16
        assert (x @ x.t()).dtype is BF16
        with pytest.raises(ZeroDivisionError):
            with fw.autocast("cpu", enabled=False):
                1 / 0
        assert fw.is_autocast_enabled("cpu")
    assert (x @ x.t()).dtype is F32 and registry._autocast_hook is None


def test_decorator_form_and_thread_locality():
    @fw.autocast("cpu")
    def f(a, depth=0):
        return a @ a.t() if depth == 0 else f(a, depth - 1)

    x = fw.randn(2, 4)
    assert f(x).dtype is BF16 and f(x, 3).dtype is BF16
    assert not fw.is_autocast_enabled("cpu") and (x @ x.t()).dtype is F32

    seen = []
    with fw.autocast("cpu"):
        th = threading.Thread(target=lambda: seen.append((x @ x.t()).dtype))
        th.start()
        th.join()
    assert seen == [F32]  # autocast state is per thread, as in PyTorch


def test_gradients_are_float32_and_close_to_the_float32_reference():
    fw.manual_seed(0)
    ref_model = _mlp()
    model = _mlp()
    model.load_state_dict(ref_model.state_dict())
    x, t = fw.randn(16, 8), fw.randint(0, 4, (16,))
    F.cross_entropy(ref_model(x), t).backward()
    with fw.autocast("cpu"):
        loss = F.cross_entropy(model(x), t)
    assert loss.dtype is F32
    loss.backward()
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        assert p.dtype is F32 and p.grad.dtype is F32, name
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0.1, atol=2e-2,
                                   err_msg=name)


def _casts(fn):
    with fw.profiler.profile() as prof:
        fn()
    return sum(r.count for r in prof.key_averages() if r.name == "cast")


def test_parameter_casts_are_cached_within_a_region():
    lin = nn.Linear(8, 8)
    x = fw.randn(2, 8).to(BF16)  # already bf16: only the parameters need casts
    with fw.autocast("cpu"):
        assert _casts(lambda: lin(x)) == 2  # weight and bias
        assert _casts(lambda: lin(lin(x))) == 0  # reused: same tensors, no new casts
        a, b = F.linear(x, lin.weight), F.linear(x, lin.weight)
        assert a.grad_fn.args[1]._base is b.grad_fn.args[1]._base  # one cast of the weight
        with fw.no_grad():
            lin.weight.mul_(1.0)  # an in-place update invalidates its entry
        assert _casts(lambda: lin(x)) == 1
        with fw.no_grad():  # grad mode is part of the key: no graph-less cast reused
            assert _casts(lambda: lin(x)) == 2
    with fw.autocast("cpu", cache_enabled=False):
        assert not fw.is_autocast_cache_enabled()
        assert _casts(lambda: lin(lin(x))) == 4
    with fw.autocast("cpu"):  # the cache was dropped when the outer region exited
        assert _casts(lambda: lin(x)) == 2


def test_two_backward_passes_in_one_region_recast_freed_weights():
    lin = nn.Linear(4, 4)
    x = fw.randn(3, 4)
    with fw.autocast("cpu"):
        lin(x).float().sum().backward()
        lin(x).float().sum().backward()  # PyTorch's cache would reuse a freed graph here
    assert lin.weight.grad.dtype is F32


def test_backward_runs_with_autocast_off():
    seen = []
    x = fw.randn(3, 4, requires_grad=True)
    with fw.autocast("cpu"):
        y = (x @ x.t()).float()
        y.register_hook(lambda g: seen.append(fw.is_autocast_enabled("cpu")))
        y.sum().backward()
        assert fw.is_autocast_enabled("cpu")
    assert seen == [False] and x.grad.dtype is F32


def test_custom_fwd_casts_inputs_and_bwd_restores_the_forward_state():
    states = []

    class Square(fw.autograd.Function):
        @staticmethod
        @fw.amp.custom_fwd(device_type="cpu", cast_inputs=F32)
        def forward(ctx, a):
            states.append((a.dtype, fw.is_autocast_enabled("cpu")))
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        @fw.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            states.append(fw.is_autocast_enabled("cpu"))
            (a,) = ctx.saved_tensors
            return 2 * a * g

    x = fw.randn(3, dtype=BF16, requires_grad=True)
    with fw.autocast("cpu"):
        y = Square.apply(x)
    y.sum().backward()
    assert states == [(F32, False), False] and y.dtype is F32 and x.grad.dtype is BF16


def test_compiled_training_step_under_autocast_matches_eager(monkeypatch):
    monkeypatch.setenv("FW_VERIFY_PASSES", "1")
    monkeypatch.setenv("FW_COMPILE_STRICT", "1")

    def make():
        fw.manual_seed(0)
        m = _mlp()
        return m, optim.AdamW(m.parameters(), lr=1e-2)

    def step_of(m, opt):
        def step(x, y):
            with fw.autocast("cpu"):
                out = m(x)
                loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss, out
        return step

    (m1, o1), (m2, o2) = make(), make()
    eager, compiled = step_of(m1, o1), fw.compile(step_of(m2, o2), fullgraph=True,
                                                  mode="always")
    x, y = fw.randn(6, 8), fw.tensor([0, 1, 2, 3, 0, 1])
    for _ in range(3):
        (l1, out1), (l2, out2) = eager(x, y), compiled(x, y)
        assert out1.dtype is out2.dtype is BF16 and l2.dtype is F32
        np.testing.assert_allclose(l2.item(), l1.item(), rtol=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert p2.dtype is F32
        np.testing.assert_allclose(p2.detach().numpy(), p1.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    text = str(compiled.graph(x, y))
    assert "cast(" in text and "bf16" in text


def test_compiled_module_recompiles_when_autocast_changes():
    fw.manual_seed(0)
    m = _mlp()
    cm = fw.compile(m, mode="always")
    x = fw.randn(3, 8)
    with fw.autocast("cpu"):
        assert cm(x).dtype is BF16
    assert cm(x).dtype is F32
    with fw.autocast("cpu"):
        out = cm(x)
        ref = m(x)
    np.testing.assert_allclose(out.float().detach().numpy(), ref.float().detach().numpy(),
                               rtol=1e-6)
    assert cm.stats()["recompiles"] == ["autocast changed (cpu bfloat16 -> off)"]


def test_onnx_export_under_autocast_has_casts_and_matches_onnxruntime():
    pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    model = _mlp()
    with fw.autocast("cpu", dtype=F16):
        proto = fw.onnx.export(model, fw.randn(3, 8), verify=True,
                               dynamic_axes={"x": {0: "batch"}})
    ops = [n.op_type for n in proto.graph.node]
    assert "Cast" in ops and "MatMul" in ops
    assert proto.graph.output[0].type.tensor_type.elem_type == 10  # FLOAT16


# -- errors ---------------------------------------------------------------------------------
def test_bad_device_type_and_dtype():
    with pytest.raises(ValueError, match="device_type"):
        fw.autocast(0)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        fw.autocast("tpu")
    with pytest.raises(fw.DTypeError, match="floating-point dtype"):
        fw.autocast("cpu", dtype=fw.int32)
    with pytest.warns(UserWarning, match="not supported. Disabling autocast"):
        ac = fw.autocast("cpu", dtype=F64)
    x = fw.randn(2, 2)
    with ac:
        assert (x @ x).dtype is F32 and not fw.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="device_type"):
        fw.is_autocast_enabled("tpu")


# -- GradScaler -----------------------------------------------------------------------------
def _param_with_grad(values):
    p = nn.Parameter(fw.zeros(len(values)))
    p.grad = fw.tensor(values, dtype=F32)
    return p


def test_scale_arithmetic_and_nested_outputs():
    s = fw.amp.GradScaler("cpu", init_scale=8.0)
    assert s.is_enabled() and s.get_scale() == 8.0
    loss = fw.tensor(1.5)
    assert s.scale(loss).item() == 12.0
    a, (b, c) = s.scale([fw.ones(2), (fw.ones(1), fw.full((1,), 2.0))])
    assert a.tolist() == [8.0, 8.0] and b.item() == 8.0 and c.item() == 16.0
    assert [t.item() for t in s.scale(iter([fw.tensor(1.0)]))] == [8.0]
    with pytest.raises(ValueError, match="Tensor or an iterable"):
        s.scale(3.0)
    p = _param_with_grad([8.0, -16.0])
    opt = optim.SGD([p], lr=1.0)
    s.unscale_(opt)
    assert p.grad.tolist() == [1.0, -2.0]
    assert s.step(opt) is None and p.tolist() == [-1.0, 2.0]
    s.update()
    assert s.get_scale() == 8.0 and s._get_growth_tracker() == 1


def test_inf_or_nan_skips_the_step_and_backs_off():
    s = fw.amp.GradScaler("cpu", init_scale=4.0, backoff_factor=0.25, growth_interval=2)
    s.scale(fw.tensor(1.0))
    for bad in (float("inf"), float("nan")):
        p = _param_with_grad([1.0, bad])
        opt = optim.SGD([p], lr=1.0)
        s.step(opt)
        assert p.tolist() == [0.0, 0.0]  # skipped
        s.update()
    assert s.get_scale() == 4.0 * 0.25 * 0.25 and s._get_growth_tracker() == 0


def test_growth_after_growth_interval_clean_steps():
    s = fw.amp.GradScaler("cpu", init_scale=2.0, growth_factor=3.0, growth_interval=3)
    s.scale(fw.tensor(1.0))
    scales = []
    for _ in range(7):
        opt = optim.SGD([_param_with_grad([1.0])], lr=0.1)
        s.step(opt)
        s.update()
        scales.append(s.get_scale())
    assert scales == [2.0, 2.0, 6.0, 6.0, 6.0, 18.0, 18.0]
    s.update(new_scale=5.0)
    assert s.get_scale() == 5.0
    s.update(fw.tensor([7.0]))
    assert s.get_scale() == 7.0
    s.set_growth_factor(4.0)
    s.set_backoff_factor(0.125)
    s.set_growth_interval(10)
    assert (s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == \
        (4.0, 0.125, 10)


def test_grad_scaler_misuse_raises():
    s = fw.amp.GradScaler("cpu")
    opt = optim.SGD([_param_with_grad([1.0])], lr=0.1)
    with pytest.raises(RuntimeError, match="did not use scaler.scale"):
        s.unscale_(opt)
    s.scale(fw.tensor(1.0))
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this "
                                           r"optimizer since the last update\(\)\."):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step"):
        s.unscale_(opt)
    with pytest.raises(RuntimeError, match="Closure"):
        s.step(opt, closure=lambda: None)
    s.update()
    with pytest.raises(RuntimeError, match="No inf checks"):
        s.update()
    half = nn.Parameter(fw.zeros(2, dtype=F16))
    half.grad = fw.ones(2, dtype=F16)
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        s.unscale_(optim.SGD([half], lr=0.1))
    with pytest.raises(ValueError, match="growth factor"):
        fw.amp.GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(RuntimeError, match="device"):
        fw.amp.GradScaler("tpu")


def test_state_dict_round_trip_and_disabled_pass_through():
    s = fw.amp.GradScaler("cpu", init_scale=16.0, growth_interval=5)
    s.scale(fw.tensor(1.0))
    s.step(optim.SGD([_param_with_grad([1.0])], lr=0.1))
    s.update()
    sd = s.state_dict()
    assert sd == {"scale": 16.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                  "growth_interval": 5, "_growth_tracker": 1}
    t = fw.amp.GradScaler("cpu")
    t.load_state_dict(sd)
    assert t.state_dict() == sd
    t.scale(fw.tensor(1.0))
    assert t.get_scale() == 16.0 and t._get_growth_tracker() == 1

    off = fw.amp.GradScaler("cpu", enabled=False)
    loss = fw.tensor(2.0)
    p = _param_with_grad([1.0])
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    off.unscale_(optim.SGD([p], lr=1.0))
    off.step(optim.SGD([p], lr=1.0))
    off.update()
    assert p.tolist() == [-1.0] and not off.is_enabled()
    with pytest.raises(RuntimeError, match="empty"):
        t.load_state_dict({})


def test_cuda_grad_scaler_without_cuda_warns_and_disables():
    if fw.cuda.is_available():
        pytest.skip("a (simulated) CUDA device is available")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        s = fw.cuda.amp.GradScaler()
    assert not s.is_enabled()


def test_training_loop_with_autocast_and_scaler_converges():
    fw.manual_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 4)) * 3
    labels = rng.integers(0, 3, 96)
    xs = fw.tensor((centers[labels] + rng.normal(size=(96, 4)) * 0.5).astype(np.float32))
    ys = fw.tensor(labels)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = fw.amp.GradScaler("cpu", init_scale=2.0 ** 10, growth_interval=10)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(40):
            opt.zero_grad()
            with fw.autocast("cpu"):
                loss = F.cross_entropy(model(xs), ys)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert scaler.get_scale() == 2.0 ** 14  # 40 clean steps: grew 4 times
    assert all(p.dtype is F32 for p in model.parameters())


def test_add_product_ops_autocast_as_a_whole():
    """addmm and its kin are lower-precision ops as a whole: the added input is cast too."""
    a, b, c = fw.randn(3, 4), fw.randn(4, 5), fw.randn(3, 5)
    with fw.autocast("cpu"):
        assert fw.addmm(c, a, b).dtype is fw.bfloat16
        assert fw.addr(c, fw.randn(3), fw.randn(5)).dtype is fw.bfloat16
        assert fw.baddbmm(fw.randn(2, 3, 5), fw.randn(2, 3, 4),
                          fw.randn(2, 4, 5)).dtype is fw.bfloat16
    assert fw.addmm(c, a, b).dtype is fw.float32
