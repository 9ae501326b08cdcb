"""facebookresearch/ConvNeXt run on ``fw``: the models (``_convnext_model.py``), and the torch
parts of main.py / engine.py / optim_factory.py / utils.py (``_convnext_train.py``) with timm's
DropPath, trunc_normal_, LabelSmoothingCrossEntropy and ModelEma (``_timm_pieces.py``).

Images are tiny synthetic 32x32 textures (four classes: horizontal / vertical stripes,
checkerboard, noise); the models have one block per stage and 8-16 channels.
"""

import argparse
import math
import types

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework.utils.data import DataLoader, TensorDataset

from . import _convnext_model as C
from . import _convnext_train as T
from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, np_of
from ._timm_pieces import DropPath, LabelSmoothingCrossEntropy, ModelEma, trunc_normal_

TINY = dict(num_classes=4, depths=[1, 1, 1, 1], dims=[8, 16, 16, 16])


def _textures(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.5, (n, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 4, n)
    for i, k in enumerate(y):
        if k == 0:
            x[i, :, ::2] += 1.0
        elif k == 1:
            x[i, :, :, ::2] += 1.0
        elif k == 2:
            x[i, :, ::2, ::2] += 1.0
            x[i, :, 1::2, 1::2] += 1.0
    return fw.tensor(x), fw.tensor(y)


def _args(**kw):
    base = dict(opt="adamw", lr=4e-3, weight_decay=0.05, opt_eps=1e-8, opt_betas=None,
                momentum=0.9)
    return types.SimpleNamespace(**{**base, **kw})


# ---- layers against NumPy and finite differences ------------------------------------------------

def test_channels_first_layer_norm_against_numpy_and_channels_last():
    fw.manual_seed(0)
    ln = C.LayerNorm(5, eps=1e-6, data_format="channels_first")
    with fw.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = fw.randn(2, 5, 3, 4) * 3 + 1
    got = ln(x).detach().numpy()
    xn = x.numpy().astype(np.float64)
    mu = xn.mean(1, keepdims=True)
    var = ((xn - mu) ** 2).mean(1, keepdims=True)  # biased, as the script's formula
    w, b = np_of(ln.weight)[:, None, None], np_of(ln.bias)[:, None, None]
    np.testing.assert_allclose(got, (xn - mu) / np.sqrt(var + 1e-6) * w + b, rtol=1e-5,
                               atol=1e-5)
    last = C.LayerNorm(5, eps=1e-6)  # channels_last over the permuted input: same numbers
    last.load_state_dict(ln.state_dict())
    np.testing.assert_allclose(last(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).detach().numpy(),
                               got, rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError):
        C.LayerNorm(5, data_format="channels_middle")


def test_gradcheck_channels_first_layer_norm_float64():
    fw.manual_seed(0)
    ln = C.LayerNorm(3, eps=1e-6, data_format="channels_first").double()
    x = fw.randn(2, 3, 2, 3, dtype=fw.float64, requires_grad=True)
    w = fw.randn(3, dtype=fw.float64, requires_grad=True)
    b = fw.randn(3, dtype=fw.float64, requires_grad=True)

    def f(x, w, b):
        return fw.func.functional_call(ln, {"weight": w, "bias": b}, (x,))

    assert fw.autograd.gradcheck(f, (x, w, b), eps=1e-6, atol=1e-6)


def test_gradcheck_block_depthwise_7x7_and_layer_scale_float64():
    fw.manual_seed(0)
    blk = C.Block(dim=4, layer_scale_init_value=0.5).double()
    names = ["dwconv.weight", "dwconv.bias", "gamma", "norm.weight", "pwconv1.weight"]
    params = dict(blk.named_parameters())
    leaves = tuple(params[n].detach().clone().requires_grad_() for n in names)
    x = fw.randn(2, 4, 5, 5, dtype=fw.float64, requires_grad=True)

    def f(x, *ws):
        return fw.func.functional_call(blk, dict(zip(names, ws)), (x,))

    assert fw.autograd.gradcheck(f, (x,) + leaves, eps=1e-6, atol=1e-6)


# ---- initialisation, stochastic depth ----------------------------------------------------------

def test_init_weights_head_init_scale_and_drop_path_rates():
    fw.manual_seed(0)
    m = C.ConvNeXt(drop_path_rate=0.3, head_init_scale=0.25, layer_scale_init_value=1e-6,
                   **{**TINY, "dims": [16, 32, 32, 32]})
    convs = [mod for mod in m.modules() if isinstance(mod, (fw.nn.Conv2d, fw.nn.Linear))
             and mod is not m.head]
    w = np.concatenate([np_of(c.weight).ravel() for c in convs])
    assert 0.018 < w.std() < 0.022 and abs(w.mean()) < 2e-3
    assert all(float(c.bias.abs().sum()) == 0.0 for c in convs)
    assert 0.0035 < np_of(m.head.weight).std() < 0.0065  # 0.02 * 0.25
    assert float(m.stages[1][0].gamma.sum()) == pytest.approx(32e-6)
    rates = [m.stages[i][0].drop_path for i in range(4)]
    assert isinstance(rates[0], fw.nn.Identity)  # linspace(0, .3, 4)[0] == 0
    np.testing.assert_allclose([r.drop_prob for r in rates[1:]], [0.1, 0.2, 0.3], rtol=1e-6)
    assert C.Block(8, layer_scale_init_value=0).gamma is None


def test_trunc_normal_matches_the_truncated_normal():
    fw.manual_seed(0)
    t = fw.empty(40000)
    trunc_normal_(t, mean=0.5, std=1.0, a=-0.5, b=2.0)
    v = t.numpy().astype(np.float64)
    assert v.min() >= -0.5 and v.max() <= 2.0
    a, b = -1.0, 1.5  # standardised bounds
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    z = cdf(b) - cdf(a)
    mean = 0.5 + (pdf(a) - pdf(b)) / z
    var = 1 + (a * pdf(a) - b * pdf(b)) / z - ((pdf(a) - pdf(b)) / z) ** 2
    assert v.mean() == pytest.approx(mean, abs=0.01)
    assert v.std() == pytest.approx(math.sqrt(var), abs=0.01)


def test_drop_path_train_vs_eval():
    x = fw.ones(4000, 3, 2)
    dp = DropPath(0.25)
    dp.eval()
    assert dp(x) is x
    dp.train()
    fw.manual_seed(0)
    y = dp(x).numpy()
    per_sample = y.reshape(4000, -1)
    assert set(np.unique(per_sample)) <= {0.0, np.float32(1 / 0.75)}
    assert (per_sample == per_sample[:, :1]).all()  # one draw per sample
    assert abs((per_sample[:, 0] > 0).mean() - 0.75) < 0.03
    assert abs(y.mean() - 1.0) < 0.04  # scale_by_keep keeps the expectation
    assert set(np.unique(DropPath(0.5, scale_by_keep=False).train()(x).numpy())) == {0.0, 1.0}
    assert "drop_prob=0.250" in repr(dp)
    fw.manual_seed(0)
    blk = C.Block(8, drop_path=0.5, layer_scale_init_value=1.0)
    xb = fw.randn(16, 8, 4, 4)
    blk.eval()
    with fw.no_grad():
        a, b = blk(xb).numpy(), blk(xb).numpy()
        np.testing.assert_array_equal(a, b)
        blk.train()
        c = blk(xb).numpy()
    same = np.isclose(c, xb.numpy()).reshape(16, -1).all(1)  # the dropped samples
    assert 0 < same.sum() < 16


# ---- optimizer groups, schedules, loss ---------------------------------------------------------

def test_layer_decay_parameter_groups():
    fw.manual_seed(0)
    m = C.ConvNeXt(**{**TINY, "depths": [1, 1, 4, 1]})
    values = list(0.8 ** (12 + 1 - i) for i in range(12 + 2))
    assigner = T.LayerDecayValueAssigner(values)
    assert [assigner.get_layer_id(n) for n in ("downsample_layers.0.0.weight",
            "downsample_layers.2.1.bias", "stages.0.0.gamma", "stages.2.3.pwconv1.weight",
            "stages.3.0.dwconv.weight", "downsample_layers.3.1.weight", "head.weight")] == [
        0, 3, 1, 4, 12, 12, 13]
    opt = T.create_optimizer(_args(), m, get_num_layer=assigner.get_layer_id,
                             get_layer_scale=assigner.get_scale)
    assert isinstance(opt, fw.optim.AdamW)
    by_id = {id(p): n for n, p in m.named_parameters()}
    seen = set()
    for g in opt.param_groups:
        names = [by_id[id(p)] for p in g["params"]]
        seen.update(names)
        layer = {assigner.get_layer_id(n) for n in names}
        assert len(layer) == 1 and g["lr_scale"] == values[layer.pop()]
        for n, p in zip(names, g["params"]):
            decays = not (p.ndim == 1 or n.endswith(".bias"))
            assert (g["weight_decay"] == 0.05) == decays, n
    assert seen == set(by_id.values())
    with pytest.raises(NotImplementedError, match="timm / apex"):
        T.create_optimizer(_args(opt="lamb"), m)


def test_cosine_scheduler_closed_form():
    s = T.cosine_scheduler(1.0, 0.1, epochs=3, niter_per_ep=4, warmup_epochs=1,
                           start_warmup_value=0.2)
    np.testing.assert_allclose(s[:4], np.linspace(0.2, 1.0, 4))
    i = np.arange(8)
    np.testing.assert_allclose(s[4:], 0.1 + 0.45 * (1 + np.cos(np.pi * i / 8)))
    assert len(T.cosine_scheduler(0.05, 0.05, 2, 5)) == 10


def test_label_smoothing_cross_entropy_matches_numpy_and_pytorchs_option():
    fw.manual_seed(0)
    x, t = fw.randn(6, 5), fw.randint(0, 5, (6,))
    got = LabelSmoothingCrossEntropy(smoothing=0.1)(x, t).item()
    z = x.numpy().astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    want = (0.9 * -logp[np.arange(6), t.numpy()] + 0.1 * -logp.mean(1)).mean()
    assert got == pytest.approx(want, rel=1e-6)
    assert F.cross_entropy(x, t, label_smoothing=0.1).item() == pytest.approx(want, rel=1e-6)


# ---- EMA and the loss scaler -------------------------------------------------------------------

def test_model_ema_update_against_numpy():
    fw.manual_seed(0)
    model = C.ConvNeXtIsotropic(num_classes=3, depth=1, dim=8, layer_scale_init_value=1e-6)
    ema = ModelEma(model, decay=0.9)
    assert not ema.ema.training and not any(p.requires_grad for p in ema.ema.parameters())
    start = {k: np_of(v).copy() for k, v in ema.ema.state_dict().items()}
    with fw.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    ema.update(model)
    for k, v in model.state_dict().items():
        want = 0.81 * start[k] + 0.19 * np_of(v)
        np.testing.assert_allclose(np_of(ema.ema.state_dict()[k]), want, rtol=1e-5,
                                   atol=1e-6, err_msg=k)


def _grads_after_plain_step(model, x, y, opt):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    grads = [np_of(p.grad).copy() for p in model.parameters()]
    opt.step()
    return grads


def test_native_scaler_on_cpu_is_a_disabled_grad_scaler():
    """``torch.cuda.amp.GradScaler()`` without CUDA warns and disables itself (PyTorch does
    the same); the scaler then returns the gradient norm of a plain step."""
    x, y = _textures(4, 0)
    fw.manual_seed(0)
    ref = C.ConvNeXtIsotropic(num_classes=4, depth=1, dim=8)
    ref_opt = fw.optim.AdamW(ref.parameters(), lr=1e-2)
    grads = _grads_after_plain_step(ref, x, y, ref_opt)
    fw.manual_seed(0)
    model = C.ConvNeXtIsotropic(num_classes=4, depth=1, dim=8)
    opt = fw.optim.AdamW(model.parameters(), lr=1e-2)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = T.NativeScalerWithGradNormCount()
    norm = scaler(F.cross_entropy(model(x), y), opt, parameters=model.parameters())
    assert norm.item() == pytest.approx(np.sqrt(sum((g ** 2).sum() for g in grads)), rel=1e-5)
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(np_of(p), np_of(q), rtol=1e-6, atol=1e-7)
    assert scaler.state_dict() == {}


def test_native_scaler_with_an_enabled_cpu_scaler_unscales_clips_and_skips():
    x, y = _textures(4, 0)
    fw.manual_seed(0)
    ref = C.ConvNeXtIsotropic(num_classes=4, depth=1, dim=8)
    grads = _grads_after_plain_step(ref, x, y, fw.optim.SGD(ref.parameters(), lr=0.1))
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    fw.manual_seed(0)
    model = C.ConvNeXtIsotropic(num_classes=4, depth=1, dim=8)
    opt = fw.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning):
        scaler = T.NativeScalerWithGradNormCount()
    scaler._scaler = fw.amp.GradScaler("cpu", init_scale=2.0 ** 12)  # what CUDA would use
    norm = scaler(F.cross_entropy(model(x), y), opt, clip_grad=0.5 * total,
                  parameters=model.parameters())
    assert norm.item() == pytest.approx(total, rel=1e-4)  # the norm before clipping
    for p, g in zip(model.parameters(), grads):  # unscaled, then clipped to half
        np.testing.assert_allclose(np_of(p.grad), 0.5 * g, rtol=1e-4, atol=1e-7)
    for p, q, g in zip(model.parameters(), ref.parameters(), grads):  # stepped with those
        np.testing.assert_allclose(np_of(p), np_of(q) + 0.1 * 0.5 * g, rtol=1e-5, atol=1e-7)
    assert scaler.state_dict()["scale"] == 2.0 ** 12
    before = [np_of(p).copy() for p in model.parameters()]
    opt.zero_grad()
    scaler(F.cross_entropy(model(x), y) * float("inf"), opt, parameters=model.parameters())
    for p, b in zip(model.parameters(), before):  # inf gradients: the step is skipped
        np.testing.assert_array_equal(np_of(p), b)
    assert scaler.state_dict()["scale"] == 2.0 ** 11
    with pytest.warns(UserWarning):
        fresh = T.NativeScalerWithGradNormCount()
    fresh._scaler = fw.amp.GradScaler("cpu")
    fresh.load_state_dict(scaler.state_dict())
    assert fresh._scaler.get_scale() == 2.0 ** 11


# ---- engine.py: a short run, evaluate, checkpoints --------------------------------------------

def _setup(tmp_path, update_freq=2, seed=0):
    fw.manual_seed(seed)
    model = C.ConvNeXt(drop_path_rate=0.1, **TINY)
    model_ema = ModelEma(model, decay=0.9, device='', resume='')
    assigner = T.LayerDecayValueAssigner(list(0.9 ** (12 + 1 - i) for i in range(12 + 2)))
    optimizer = T.create_optimizer(_args(), model, skip_list=None,
                                   get_num_layer=assigner.get_layer_id,
                                   get_layer_scale=assigner.get_scale)
    x, y = _textures(64, seed=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    steps_per_epoch = len(loader) // update_freq
    args = argparse.Namespace(output_dir=str(tmp_path), save_ckpt_num=1, save_ckpt_freq=1,
                              auto_resume=True, resume='', model_ema=True, eval=False,
                              start_epoch=0)
    return dict(model=model, ema=model_ema, opt=optimizer, loader=loader, args=args,
                steps=steps_per_epoch, update_freq=update_freq,
                lr=T.cosine_scheduler(4e-3, 1e-4, 3, steps_per_epoch, warmup_epochs=1),
                wd=T.cosine_scheduler(0.05, 0.2, 3, steps_per_epoch))


def _epoch(s, epoch, criterion):
    return T.train_one_epoch(s["model"], criterion, s["loader"], s["opt"], "cpu", epoch,
                             T.NativeScalerWithGradNormCount(), 0, s["ema"],
                             start_steps=epoch * s["steps"], lr_schedule_values=s["lr"],
                             wd_schedule_values=s["wd"], num_training_steps_per_epoch=s["steps"],
                             update_freq=s["update_freq"])


@pytest.mark.filterwarnings("ignore:GradScaler is enabled")
def test_train_one_epoch_evaluate_and_resume(tmp_path):
    s = _setup(tmp_path)
    val = DataLoader(TensorDataset(*_textures(32, seed=7)), batch_size=16)
    start = T.evaluate(val, s["model"], "cpu")
    criterion = LabelSmoothingCrossEntropy(smoothing=0.1)
    stats = [_epoch(s, e, criterion) for e in range(3)]
    end = T.evaluate(val, s["model"], "cpu")
    assert end["loss"] < 0.8 * start["loss"] and end["acc1"] > start["acc1"], (start, end)
    assert end["acc5"] == 100.0  # 4 classes: top-5 always holds the target
    assert stats[-1]["loss"] < stats[0]["loss"]
    last = 3 * s["steps"] - 1
    for g in s["opt"].param_groups:  # the schedules' last values, per group
        assert g["lr"] == pytest.approx(s["lr"][last] * g["lr_scale"])
        assert g["weight_decay"] in (0.0, pytest.approx(s["wd"][last]))
    # the epoch's mean of max lr (largest lr_scale: 1); each step spans update_freq batches
    assert stats[-1]["lr"] == pytest.approx(s["lr"][2 * s["steps"]:].mean())
    ema_eval = T.evaluate(val, s["ema"].ema, "cpu")
    assert ema_eval["loss"] < start["loss"]
    # save_model, then auto_load_model into a fresh run
    T.save_model(s["args"], 2, s["model"], s["model"], s["opt"], T.NativeScalerWithGradNormCount(),
                 model_ema=s["ema"])
    fresh = _setup(tmp_path, seed=1)
    # the checkpoint holds main.py's ``args``: torch.load's default weights_only=True (PyTorch
    # 2.6+, and fw) refuses it unless allowed, which is what a user of the script would add
    saved = fw.serialization.get_safe_globals()
    fw.serialization.add_safe_globals([argparse.Namespace])
    try:
        T.auto_load_model(fresh["args"], fresh["model"], fresh["model"], fresh["opt"],
                          T.NativeScalerWithGradNormCount(), model_ema=fresh["ema"])
    finally:
        fw.serialization.clear_safe_globals()
        fw.serialization.add_safe_globals(saved)
    assert fresh["args"].start_epoch == 3 and fresh["args"].resume.endswith("checkpoint-2.pth")
    for a, b in ((s["model"], fresh["model"]), (s["ema"].ema, fresh["ema"].ema)):
        for k, v in a.state_dict().items():
            np.testing.assert_array_equal(np_of(b.state_dict()[k]), np_of(v), err_msg=k)
    assert fresh["opt"].state_dict()["state"].keys() == s["opt"].state_dict()["state"].keys()


def test_finetune_load_state_dict_with_a_new_head(tmp_path, capsys):
    """main.py's finetune path: drop the head keys whose shape changed, then utils'
    load_state_dict (which walks ``_load_from_state_dict`` itself) reports them missing."""
    fw.manual_seed(0)
    src = C.ConvNeXt(**TINY)
    fw.save({"model": src.state_dict()}, str(tmp_path / "pre.pth"))
    checkpoint = fw.load(str(tmp_path / "pre.pth"), map_location="cpu")
    checkpoint_model = checkpoint["model"]
    model = C.ConvNeXt(**{**TINY, "num_classes": 7})
    state_dict = model.state_dict()
    for k in ['head.weight', 'head.bias']:
        if k in checkpoint_model and checkpoint_model[k].shape != state_dict[k].shape:
            print(f"Removing key {k} from pretrained checkpoint")
            del checkpoint_model[k]
    checkpoint_model["stages.0.0.relative_position_index"] = fw.zeros(1)  # unexpected
    T.load_state_dict(model, checkpoint_model, prefix='')
    missing, unexpected, ignored, errors = T.load_state_dict.last
    assert missing == ["head.weight", "head.bias"] and ignored == [] and errors == []
    assert unexpected == ["stages.0.0.relative_position_index"]
    assert "Removing key head.weight" in capsys.readouterr().out
    np.testing.assert_array_equal(np_of(model.stages[2][0].dwconv.weight),
                                  np_of(src.stages[2][0].dwconv.weight))


# ---- compile and export ------------------------------------------------------------------------

def _train(compiled, steps=3):
    """The engine's full-precision step (update_freq 1), with the schedules set outside it as
    engine.py does, stochastic depth on, and the EMA update inside the compiled step."""
    fw.manual_seed(0)
    model = C.ConvNeXt(drop_path_rate=0.2, **TINY)
    model_ema = ModelEma(model, decay=0.9)
    assigner = T.LayerDecayValueAssigner(list(0.8 ** (12 + 1 - i) for i in range(12 + 2)))
    optimizer = T.create_optimizer(_args(lr=1e-2), model, get_num_layer=assigner.get_layer_id,
                                   get_layer_scale=assigner.get_scale)
    criterion = LabelSmoothingCrossEntropy(smoothing=0.1)
    lr_values = T.cosine_scheduler(1e-2, 1e-3, 1, steps)
    wd_values = T.cosine_scheduler(0.05, 0.5, 1, steps)

    def step(samples, targets):
        output = model(samples)
        loss = criterion(output, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        model_ema.update(model)
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    model.train()
    batches = [_textures(4, seed=s) for s in range(steps)]
    fw.manual_seed(9)  # the drop-path draws
    losses = []
    for it, (x, y) in enumerate(batches):
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr_values[it] * param_group["lr_scale"]
            if param_group["weight_decay"] > 0:
                param_group["weight_decay"] = wd_values[it]
        losses.append(fn(x, y).item())
    state = {k: np_of(v).copy() for k, v in model.state_dict().items()}
    state.update({"ema." + k: np_of(v).copy() for k, v in model_ema.ema.state_dict().items()})
    return losses, state, fn


def test_compiled_training_step_matches_eager():
    """Per-group lr and weight decay change every step (set outside the step); the drop-path
    masks are drawn inside it; the EMA copy is updated inside it."""
    assert_compiled_matches_eager(_train, captures=1, num_recompiles=0, eager_reason=None,
                                  graph_breaks=[])


@pytest.mark.parametrize("iso", [False, True])
def test_onnx_export_eval_matches_onnxruntime(iso, tmp_path):
    fw.manual_seed(0)
    model = (C.ConvNeXtIsotropic(num_classes=4, depth=2, dim=16, drop_path_rate=0.1,
                                 layer_scale_init_value=1e-6) if iso
             else C.ConvNeXt(drop_path_rate=0.1, **TINY)).eval()
    with fw.no_grad():  # layer scale 1e-6 would hide the blocks from the comparison
        for mod in model.modules():
            if isinstance(mod, C.Block):
                mod.gamma.fill_(0.5)
    x, _ = _textures(3, seed=2)
    assert_onnx_export_matches(model, (x,), tmp_path / "convnext.onnx", input_names=["x"],
                               dynamic_axes={"x": {0: "batch"}}, sub_batch=2)


def test_registered_models():
    assert {"convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
            "convnext_xlarge", "convnext_isotropic_small", "convnext_isotropic_base",
            "convnext_isotropic_large"} <= set(C._model_entrypoints)
