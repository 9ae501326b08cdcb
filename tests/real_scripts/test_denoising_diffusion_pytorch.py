# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""lucidrains/denoising-diffusion-pytorch ported to ``fw``: the Unet and Attend
(``_ddpm_unet.py``), GaussianDiffusion with its schedules (``_ddpm_gaussian.py``), and the
Trainer's step (``train``: Adam with betas (0.9, 0.99), gradient accumulation,
clip_grad_norm_, EMA-free), run on tiny synthetic images.

Changed beyond the rename: see the two modules' docstrings (einops written out, the
``torch.__version__`` check, tqdm, scipy's linear_sum_assignment). The Trainer itself
(accelerate, ema_pytorch, torchvision folders, FID) is not ported: ``train`` is its inner
loop with the accelerator calls replaced by their single-process torch equivalents.
"""

import math

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, grad_leaves
from ._ddpm_gaussian import (
    GaussianDiffusion,
    cosine_beta_schedule,
    extract,
    linear_beta_schedule,
    sigmoid_beta_schedule,
)
from ._ddpm_unet import (
    Attend,
    Attention,
    Downsample,
    LinearAttention,
    RandomOrLearnedSinusoidalPosEmb,
    SinusoidalPosEmb,
    Unet,
    cycle,
    num_to_groups,
)

torch = fw

TINY = dict(dim=8, dim_mults=(1, 2), channels=1, attn_dim_head=4, attn_heads=2)


def _images(n=16, hw=8, seed=0):
    """Images in [0, 1] (the Dataset's ToTensor range): a bright square at a random spot."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, hw, hw), np.float32)
    for i in range(n):
        r, c = rng.integers(0, hw - 3, 2)
        x[i, 0, r:r + 3, c:c + 3] = 1.0
    return fw.tensor(x)


def train(diffusion_model, data, train_num_steps, train_batch_size=4, gradient_accumulate_every=1,
          train_lr=1e-4, adam_betas=(0.9, 0.99), max_grad_norm=1., compiled=False):
    """Trainer.__init__'s optimizer and Trainer.train's loop body (accelerator.autocast,
    accelerator.backward and accelerator.clip_grad_norm_ as their torch equivalents)."""
    opt = torch.optim.Adam(diffusion_model.parameters(), lr=train_lr, betas=adam_betas)
    dl = cycle(fw.utils.data.DataLoader(fw.utils.data.TensorDataset(data), batch_size=train_batch_size, shuffle=True, drop_last=True))

    def step(batches):
        total_loss = 0.

        for data in batches:
            loss = diffusion_model(data)
            loss = loss / gradient_accumulate_every
            total_loss = total_loss + loss.detach()

            loss.backward()

        torch.nn.utils.clip_grad_norm_(diffusion_model.parameters(), max_grad_norm)

        opt.step()
        opt.zero_grad()
        return total_loss

    step_fn = fw.compile(step, mode="always") if compiled else step
    losses = []
    for _ in range(train_num_steps):
        batches = [next(dl)[0] for _ in range(gradient_accumulate_every)]
        losses.append(step_fn(batches).item())
    return losses, opt, step_fn


# ---- schedules and the closed-form pieces -----------------------------------------------------

def _np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_beta_schedules_against_numpy():
    T = 50
    np.testing.assert_allclose(linear_beta_schedule(T).numpy(), np.linspace(20 * 1e-4, 20 * 0.02, T), rtol=1e-12)
    t = np.linspace(0, T, T + 1) / T
    ac = np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(cosine_beta_schedule(T).numpy(), np.clip(1 - ac[1:] / ac[:-1], 0, 0.999), rtol=1e-10)
    # sigmoid: ``torch.tensor(3.0).sigmoid()`` is a float32 0-d tensor; with the float64 t it
    # promotes to float64, so its float32 rounding shows in the schedule (as in torch)
    vs, ve = (np.float64(np.float32(_np_sigmoid(v))) for v in (-3.0, 3.0))
    ac = (-_np_sigmoid(t * 6 - 3) + ve) / (ve - vs)
    ac = ac / ac[0]
    got = sigmoid_beta_schedule(T)
    assert got.dtype == fw.float64
    np.testing.assert_allclose(got.numpy(), np.clip(1 - ac[1:] / ac[:-1], 0, 0.999), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("objective,schedule,min_snr", [
    ("pred_v", "sigmoid", False), ("pred_noise", "cosine", True), ("pred_x0", "linear", True)])
def test_buffers_and_loss_weights_against_numpy(objective, schedule, min_snr):
    d = GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=30, objective=objective,
                          beta_schedule=schedule, min_snr_loss_weight=min_snr)
    betas = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule, "sigmoid": sigmoid_beta_schedule}[schedule](30).numpy()
    ac = np.cumprod(1 - betas)
    acp = np.append(1.0, ac[:-1])
    assert all(b.dtype == fw.float32 for b in d.buffers())
    np.testing.assert_allclose(d.alphas_cumprod_prev.numpy(), acp, rtol=1e-6)
    pv = betas * (1 - acp) / (1 - ac)
    assert pv[0] == 0 and d.posterior_log_variance_clipped[0].item() == pytest.approx(np.log(np.float32(1e-20)), rel=1e-6)
    np.testing.assert_allclose(d.posterior_log_variance_clipped.numpy()[1:], np.log(pv[1:]), rtol=1e-5)
    np.testing.assert_allclose(d.posterior_mean_coef2.numpy(), (1 - acp) * np.sqrt(1 - betas) / (1 - ac), rtol=1e-5)
    snr = ac / (1 - ac)
    clipped = np.minimum(snr, 5) if min_snr else snr
    want = {"pred_noise": clipped / snr, "pred_x0": clipped, "pred_v": clipped / (snr + 1)}[objective]
    np.testing.assert_allclose(d.loss_weight.numpy(), want, rtol=1e-5)
    assert d.num_timesteps == 30 and not d.is_ddim_sampling


def test_q_sample_and_parameterisations_against_numpy():
    d = GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=100)
    fw.manual_seed(0)
    x0, noise = fw.randn(3, 1, 8, 8), fw.randn(3, 1, 8, 8)
    t = fw.tensor([0, 42, 99])
    a = d.alphas_cumprod.numpy().astype(np.float64)[t.numpy()][:, None, None, None]
    xt = np.sqrt(a) * x0.numpy() + np.sqrt(1 - a) * noise.numpy()
    np.testing.assert_allclose(d.q_sample(x0, t, noise).numpy(), xt, rtol=1e-5, atol=1e-6)
    v = d.predict_v(x0, t, noise)
    np.testing.assert_allclose(v.numpy(), np.sqrt(a) * noise.numpy() - np.sqrt(1 - a) * x0.numpy(), rtol=1e-5, atol=1e-6)
    xt_t = fw.tensor(xt, dtype=fw.float32)
    np.testing.assert_allclose(d.predict_start_from_v(xt_t, t, v).numpy(), x0.numpy(), atol=1e-5)
    np.testing.assert_allclose(d.predict_start_from_noise(xt_t, t, noise).numpy(), x0.numpy(), atol=2e-4)
    np.testing.assert_allclose(d.predict_noise_from_start(xt_t, t, x0).numpy(), noise.numpy(), atol=2e-3)
    assert extract(d.betas, t, (3, 1, 8, 8)).shape == (3, 1, 1, 1)


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x0", "pred_v"])
def test_p_losses_against_numpy(objective):
    fw.manual_seed(0)
    d = GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=50, objective=objective,
                          min_snr_loss_weight=True, offset_noise_strength=0.1)
    img = _images(3)
    seen = []
    d.model.register_forward_hook(lambda m, inp, out: seen.append((inp[0].detach().numpy(), out.detach().numpy())))
    fw.manual_seed(7)
    loss = d(img, loss_reduction="none")
    fw.manual_seed(7)
    t = fw.randint(0, 50, (3,)).numpy()
    noise = fw.randn(3, 1, 8, 8).numpy() + 0.1 * fw.randn(3, 1).numpy()[:, :, None, None]
    x0 = img.numpy() * 2 - 1
    a = d.alphas_cumprod.numpy().astype(np.float64)[t][:, None, None, None]
    x_in, out = seen[0]
    np.testing.assert_allclose(x_in, np.sqrt(a) * x0 + np.sqrt(1 - a) * noise, rtol=1e-5, atol=1e-5)
    target = {"pred_noise": noise, "pred_x0": x0, "pred_v": np.sqrt(a) * noise - np.sqrt(1 - a) * x0}[objective]
    want = ((out - target) ** 2).mean((1, 2, 3)) * d.loss_weight.numpy()[t]
    np.testing.assert_allclose(loss.detach().numpy(), want, rtol=1e-5, atol=1e-6)


# ---- the model's layers -----------------------------------------------------------------------

def test_downsample_is_the_pixel_unshuffle_pattern():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    # 'b c (h p1) (w p2) -> b (c p1 p2) h w'
    want = x.reshape(2, 3, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 12, 2, 3)
    np.testing.assert_array_equal(Downsample(3)[0](fw.tensor(x)).numpy(), want)


def _np_rms(x, g):
    return x / np.maximum(np.sqrt((x ** 2).sum(1, keepdims=True)), 1e-12) * g * np.sqrt(x.shape[1])


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def test_attention_layers_against_numpy():
    """LinearAttention and Attention (both Attend paths) with memory key/values, in float64."""
    fw.manual_seed(0)
    x = fw.randn(2, 6, 3, 4, dtype=fw.float64)
    xn = x.numpy()
    lin = LinearAttention(6, heads=2, dim_head=5, num_mem_kv=3).double()
    p = {k: v.detach().numpy() for k, v in lin.state_dict().items()}
    h = _np_rms(xn, p["norm.g"])
    qkv = np.einsum("oc,bchw->bohw", p["to_qkv.weight"][:, :, 0, 0], h)
    q, k, v = (a.reshape(2, 2, 5, 12) for a in np.split(qkv, 3, axis=1))
    mk, mv = (np.broadcast_to(m, (2, 2, 5, 3)) for m in p["mem_kv"])
    k, v = np.concatenate([mk, k], -1), np.concatenate([mv, v], -1)
    q, k = _np_softmax(q, -2) * 5 ** -0.5, _np_softmax(k, -1)
    out = np.einsum("bhde,bhdn->bhen", np.einsum("bhdn,bhen->bhde", k, v), q).reshape(2, 10, 3, 4)
    out = np.einsum("oc,bchw->bohw", p["to_out.0.weight"][:, :, 0, 0], out) + p["to_out.0.bias"][None, :, None, None]
    with fw.no_grad():
        np.testing.assert_allclose(lin(x).numpy(), _np_rms(out, p["to_out.1.g"]), rtol=1e-10, atol=1e-12)

    for flash in (False, True):
        fw.manual_seed(1)
        att = Attention(6, heads=2, dim_head=5, num_mem_kv=3, flash=flash).double()
        p = {k: v.detach().numpy() for k, v in att.state_dict().items()}
        h = _np_rms(xn, p["norm.g"])
        qkv = np.einsum("oc,bchw->bohw", p["to_qkv.weight"][:, :, 0, 0], h)
        q, k, v = (a.reshape(2, 2, 5, 12).transpose(0, 1, 3, 2) for a in np.split(qkv, 3, axis=1))
        mk, mv = (np.broadcast_to(m, (2, 2, 3, 5)) for m in p["mem_kv"])
        k, v = np.concatenate([mk, k], -2), np.concatenate([mv, v], -2)
        o = _np_softmax(q @ k.transpose(0, 1, 3, 2) * 5 ** -0.5, -1) @ v
        o = o.transpose(0, 1, 3, 2).reshape(2, 10, 3, 4)
        want = np.einsum("oc,bchw->bohw", p["to_out.weight"][:, :, 0, 0], o) + p["to_out.bias"][None, :, None, None]
        with fw.no_grad():
            np.testing.assert_allclose(att(x).numpy(), want, rtol=1e-10, atol=1e-12, err_msg=f"flash={flash}")


def test_attend_with_dropout_in_train_mode():
    fw.manual_seed(0)
    q, k, v = (fw.randn(1, 2, 5, 4) for _ in range(3))
    a = Attend(dropout=0.5, flash=False)
    with fw.no_grad():
        a.eval()
        ref = a(q, k, v).numpy()
        a.train()
        assert np.abs(a(q, k, v).numpy() - ref).max() > 1e-3
        f = Attend(dropout=0.5, flash=True).eval()
        np.testing.assert_allclose(f(q, k, v).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_time_embeddings():
    x = fw.tensor([0.0, 3.0, 999.0])
    got = SinusoidalPosEmb(16)(x).numpy()
    f = np.exp(np.arange(8) * -(math.log(10000) / 7))
    np.testing.assert_allclose(got, np.concatenate([np.sin(x.numpy()[:, None] * f), np.cos(x.numpy()[:, None] * f)], 1), rtol=1e-4, atol=1e-4)
    fw.manual_seed(0)
    rnd, learned = RandomOrLearnedSinusoidalPosEmb(8, is_random=True), RandomOrLearnedSinusoidalPosEmb(8)
    assert not rnd.weights.requires_grad and learned.weights.requires_grad
    e = learned(x)
    w = learned.weights.detach().numpy()
    fr = x.numpy()[:, None] * w[None] * 2 * math.pi
    np.testing.assert_allclose(e.detach().numpy(), np.concatenate([x.numpy()[:, None], np.sin(fr), np.cos(fr)], 1), rtol=1e-4, atol=1e-4)
    unet = Unet(**TINY, learned_sinusoidal_cond=True)
    assert unet(fw.randn(2, 1, 8, 8), fw.rand(2)).shape == (2, 1, 8, 8)
    with pytest.raises(AssertionError):  # GaussianDiffusion refuses the random-or-learned embedding
        GaussianDiffusion(unet, image_size=8, timesteps=10)
    assert num_to_groups(36, 16) == [16, 16, 4]


def test_unet_gradcheck_float64():
    """Scale-shift ResnetBlocks, RMSNorm (F.normalize), LinearAttention, full attention with
    memory key/values, PixelUnshuffle / nearest Upsample, the learned Fourier time features."""
    fw.manual_seed(0)
    model = Unet(dim=4, dim_mults=(1, 2), channels=1, attn_dim_head=2, attn_heads=2,
                 learned_sinusoidal_cond=True, flash_attn=True).double()
    x, t = grad_leaves(fw.randn(1, 1, 4, 4, dtype=fw.float64), fw.tensor([0.3], dtype=fw.float64))
    assert fw.autograd.gradcheck(lambda x, t: model(x, t), (x, t), eps=1e-6, atol=1e-5)


# ---- training, compile, sampling, export ------------------------------------------------------

def _fixed_draw_loss(d, img):
    fw.manual_seed(123)
    with fw.no_grad():
        return d(img).item()


def test_training_lowers_the_loss():
    fw.manual_seed(0)
    d = GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=100)
    img = _images(16)
    before = _fixed_draw_loss(d, img)
    losses, opt, _ = train(d, img, 15, train_lr=3e-3, gradient_accumulate_every=2)
    after = _fixed_draw_loss(d, img)
    assert all(np.isfinite(losses)) and after < before - 0.1, (before, after)
    assert opt.param_groups[0]["betas"] == (0.9, 0.99)


def test_self_conditioning_trains():
    fw.manual_seed(0)
    d = GaussianDiffusion(Unet(**TINY, self_condition=True), image_size=8, timesteps=50, objective="pred_x0")
    losses, _, _ = train(d, _images(8), 4)
    assert all(np.isfinite(losses)) and d.model.init_conv.in_channels == 2


def test_compiled_train_step_matches_eager():
    """randint times, randn_like noise with offset noise added in place, the Unet,
    clip_grad_norm_ and Adam: compiled once."""
    def run(compiled):
        fw.manual_seed(0)
        d = GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=100, offset_noise_strength=0.1, min_snr_loss_weight=True)
        losses, _, fn = train(d, _images(16), 4, train_lr=1e-3, compiled=compiled)
        return losses, {k: v.numpy() for k, v in d.state_dict().items()}, fn

    assert_compiled_matches_eager(run, captures=1, num_recompiles=0, eager_reason=None)


class _Stub(nn.Module):
    """A deterministic stand-in model: out = 0.5 x + 0.001 t."""
    channels, out_dim, self_condition = 1, 1, False

    def forward(self, x, t, x_self_cond=None):
        return 0.5 * x + 0.001 * t.float()[:, None, None, None]


def test_ddim_sample_replays_in_numpy():
    d = GaussianDiffusion(_Stub(), image_size=3, timesteps=20, sampling_timesteps=4,
                          objective="pred_noise", ddim_sampling_eta=0.5, beta_schedule="cosine")
    assert d.is_ddim_sampling
    fw.manual_seed(3)
    got = d.sample(batch_size=2, return_all_timesteps=True)
    assert got.shape == (2, 5, 1, 3, 3) and got.is_inference()
    fw.manual_seed(3)
    ac = d.alphas_cumprod.numpy()
    img = fw.randn(2, 1, 3, 3).numpy().astype(np.float64)
    imgs = [img]
    times = [19, 14, 9, 4, -1]  # linspace(-1, 19, 5).int(), reversed
    for time, nxt in zip(times[:-1], times[1:]):
        eps = 0.5 * img + 0.001 * time
        x0 = np.clip(np.sqrt(1 / ac[time]) * img - np.sqrt(1 / ac[time] - 1) * eps, -1, 1)
        eps = (np.sqrt(1 / ac[time]) * img - x0) / np.sqrt(1 / ac[time] - 1)
        if nxt < 0:
            img = x0
        else:
            a, an = ac[time], ac[nxt]
            sigma = 0.5 * np.sqrt((1 - a / an) * (1 - an) / (1 - a))
            img = x0 * np.sqrt(an) + np.sqrt(1 - an - sigma ** 2) * eps + sigma * fw.randn(2, 1, 3, 3).numpy()
        imgs.append(img)
    np.testing.assert_allclose(got.numpy(), (np.stack(imgs, 1) + 1) * 0.5, rtol=1e-4, atol=1e-5)


def test_p_sample_loop_replays_in_numpy():
    d = GaussianDiffusion(_Stub(), image_size=3, timesteps=4, objective="pred_v", beta_schedule="cosine")
    fw.manual_seed(5)
    got = d.sample(batch_size=2)
    fw.manual_seed(5)
    b = {k: v.numpy().astype(np.float64) for k, v in d.state_dict().items()}
    img = fw.randn(2, 1, 3, 3).numpy().astype(np.float64)
    for t in (3, 2, 1, 0):
        v = 0.5 * img + 0.001 * t
        x0 = np.clip(np.sqrt(b["alphas_cumprod"][t]) * img - np.sqrt(1 - b["alphas_cumprod"][t]) * v, -1, 1)
        mean = b["posterior_mean_coef1"][t] * x0 + b["posterior_mean_coef2"][t] * img
        noise = fw.randn(2, 1, 3, 3).numpy() if t > 0 else 0.0
        img = mean + np.exp(0.5 * b["posterior_log_variance_clipped"][t]) * noise
    np.testing.assert_allclose(got.numpy(), (img + 1) * 0.5, rtol=1e-4, atol=1e-5)


def test_sampling_and_interpolation_with_the_unet():
    fw.manual_seed(0)
    d = GaussianDiffusion(Unet(**TINY, flash_attn=True), image_size=8, timesteps=6, sampling_timesteps=3)
    s = d.sample(batch_size=2)
    assert s.shape == (2, 1, 8, 8) and 0 <= s.min().item() and s.max().item() <= 1
    d2 = GaussianDiffusion(Unet(**TINY, self_condition=True), image_size=8, timesteps=4)
    s2 = d2.sample(batch_size=2, return_all_timesteps=True)
    assert s2.shape == (2, 5, 1, 8, 8) and np.isfinite(s2.numpy()).all()
    img = _images(4)
    mid = d.interpolate(img[:2], img[2:], t=3)
    assert mid.shape == (2, 1, 8, 8) and np.isfinite(mid.numpy()).all()
    with pytest.raises(NotImplementedError, match="linear_sum_assignment"):
        GaussianDiffusion(Unet(**TINY), image_size=8, timesteps=4, immiscible=True)(img)


@pytest.mark.parametrize("flash", [False, True])
def test_onnx_export_eval(tmp_path, flash):
    fw.manual_seed(0)
    model = Unet(**TINY, flash_attn=flash).eval()
    x, t = fw.randn(2, 1, 8, 8), fw.tensor([3.0, 17.0])
    assert_onnx_export_matches(model, (x, t), tmp_path / "unet.onnx", sub_batch=1, input_names=["x", "t"],
                               dynamic_axes={"x": {0: "b"}, "t": {0: "b"}})


def test_normalize_round_trip():
    from ._ddpm_unet import normalize_to_neg_one_to_one, unnormalize_to_zero_to_one
    img = _images(2)
    np.testing.assert_allclose(unnormalize_to_zero_to_one(normalize_to_neg_one_to_one(img)).numpy(), img.numpy())
    assert normalize_to_neg_one_to_one(img).min().item() == -1.0
    assert F.mse_loss(img, img, reduction="none").shape == img.shape
