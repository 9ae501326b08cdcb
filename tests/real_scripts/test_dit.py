# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""facebookresearch/DiT ported to ``fw``: ``models.py`` (in ``_dit_model.py`` with timm's
PatchEmbed / Attention / Mlp), ``diffusion/`` (in ``_dit_diffusion.py`` and
``_dit_respace.py``), ``train.py``'s
helpers and loop body, and ``sample.py``'s classifier-free-guidance sampling.

Changed beyond the ``torch`` -> ``fw`` rename: DDP / DistributedSampler / the logger / the
experiment folders are dropped (one process, rank 0); the Stable Diffusion VAE
(``diffusers.AutoencoderKL``) is not torch API, so the loader yields small synthetic
latents and ``vae.encode(x).latent_dist.sample()`` is left out (its ``.mul_(0.18215)``
stays, on a clone of the batch); ``main`` takes the dataset and a step count from the
caller, and a tiny config ``DiT-T/2`` is added to ``DiT_models``; sample.py's null label
``1000`` is the tiny model's ``num_classes``.
"""

import argparse
import copy
import math
import os
from collections import OrderedDict
from copy import deepcopy

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.utils.data import DataLoader, TensorDataset

from . import _dit_diffusion as gd
from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, grad_leaves, np_linear, np_params
from ._dit_respace import create_diffusion, space_timesteps
from ._dit_model import DiT, DiT_models, DiTBlock, FinalLayer, TimestepEmbedder, get_2d_sincos_pos_embed

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``

DiT_models['DiT-T/2'] = lambda **kwargs: DiT(depth=2, hidden_size=32, patch_size=2, num_heads=4, **kwargs)
TINY = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=4, num_classes=10)


# ---- train.py ---------------------------------------------------------------------------------

@torch.no_grad()
def update_ema(ema_model, model, decay=0.9999):
    """
    Step the EMA model towards the current model.
    """
    ema_params = OrderedDict(ema_model.named_parameters())
    model_params = OrderedDict(model.named_parameters())

    for name, param in model_params.items():
        # TODO: Consider applying only to params that require_grad to avoid small numerical changes of pos_embed
        ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)


def requires_grad(model, flag=True):
    """
    Set requires_grad flag for all parameters in a model.
    """
    for p in model.parameters():
        p.requires_grad = flag


def main(args, dataset, max_steps=None, compiled=False, lr=1e-4, checkpoint_dir=None):
    """
    Trains a new DiT model (one process: the DDP rank-0 path).
    """
    # the first flag below was False when we tested this script but True makes A100 training a lot faster:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = "cuda" if torch.cuda.is_available() else "cpu"  # (DDP: rank % device_count)
    seed = args.global_seed
    torch.manual_seed(seed)

    # Create model:
    assert args.image_size % 8 == 0, "Image size must be divisible by 8 (for the VAE encoder)."
    latent_size = args.image_size // 8
    model = DiT_models[args.model](
        input_size=latent_size,
        num_classes=args.num_classes
    )
    # Note that parameter initialization is done within the DiT constructor
    ema = deepcopy(model).to(device)  # Create an EMA of the model for use after training
    requires_grad(ema, False)
    model = model.to(device)  # (DDP(model.to(device), device_ids=[rank]))
    diffusion = create_diffusion(timestep_respacing="")  # default: 1000 steps, linear noise schedule

    # Setup optimizer (we used default Adam betas=(0.9, 0.999) and a constant learning rate of 1e-4 in our paper):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0)

    loader = DataLoader(
        dataset,
        batch_size=int(args.global_batch_size),
        shuffle=True,
        num_workers=args.num_workers,
        pin_memory=True,
        drop_last=True
    )

    # Prepare models for training:
    update_ema(ema, model, decay=0)  # Ensure EMA is initialized with synced weights
    model.train()  # important! This enables embedding dropout for classifier-free guidance
    ema.eval()  # EMA model should always be in eval mode

    def train_step(x, y):  # (the loop body from randint to update_ema, so a test can compile it)
        t = torch.randint(0, diffusion.num_timesteps, (x.shape[0],), device=device)
        model_kwargs = dict(y=y)
        loss_dict = diffusion.training_losses(model, x, t, model_kwargs)
        loss = loss_dict["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        update_ema(ema, model)
        return loss

    step_fn = fw.compile(train_step, mode="always") if compiled else train_step

    # Variables for monitoring/logging purposes:
    train_steps = 0
    log_steps = 0
    running_loss = 0
    losses, logged = [], []

    for epoch in range(args.epochs):
        for x, y in loader:
            x = x.to(device)
            y = y.to(device)
            with torch.no_grad():
                # Map input images to latent space + normalize latents:
                x = x.clone().mul_(0.18215)  # (vae.encode(x).latent_dist.sample().mul_(0.18215))
            loss = step_fn(x, y)

            # Log loss values:
            running_loss += loss.item()
            log_steps += 1
            train_steps += 1
            losses.append(loss.item())
            if train_steps % args.log_every == 0:
                avg_loss = torch.tensor(running_loss / log_steps, device=device)
                avg_loss = avg_loss.item()
                logged.append(avg_loss)
                running_loss = 0
                log_steps = 0

            # Save DiT checkpoint:
            if train_steps % args.ckpt_every == 0 and train_steps > 0:
                checkpoint = {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "args": args
                }
                checkpoint_path = f"{checkpoint_dir}/{train_steps:07d}.pt"
                torch.save(checkpoint, checkpoint_path)
            if max_steps is not None and train_steps >= max_steps:
                break

    model.eval()  # important! This disables randomized embedding dropout
    return dict(model=model, ema=ema, opt=opt, diffusion=diffusion, losses=losses, logged=logged,
                step_fn=step_fn)


# ---- sample.py --------------------------------------------------------------------------------

def sample(model, num_sampling_steps, class_labels, latent_size, cfg_scale=4.0, seed=0):
    """sample.py's main() without the VAE decode / save_image: the latent samples."""
    torch.manual_seed(seed)
    torch.set_grad_enabled(False)
    try:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model.eval()  # important!
        diffusion = create_diffusion(str(num_sampling_steps))

        # Create sampling noise:
        n = len(class_labels)
        z = torch.randn(n, 4, latent_size, latent_size, device=device)
        y = torch.tensor(class_labels, device=device)

        # Setup classifier-free guidance:
        z = torch.cat([z, z], 0)
        y_null = torch.tensor([model.y_embedder.num_classes] * n, device=device)  # ([1000] * n)
        y = torch.cat([y, y_null], 0)
        model_kwargs = dict(y=y, cfg_scale=cfg_scale)

        # Sample images:
        samples = diffusion.p_sample_loop(
            model.forward_with_cfg, z.shape, z, clip_denoised=False, model_kwargs=model_kwargs, progress=False, device=device
        )
        samples, _ = samples.chunk(2, dim=0)  # Remove null class samples
        return samples, diffusion
    finally:
        torch.set_grad_enabled(True)


# ---- tests ------------------------------------------------------------------------------------

def _latents(n=16, seed=0):
    """Latent "images": a per-class blob on 4 channels of 8x8 (image_size 64 / 8), scaled back
    by 1 / 0.18215 since the loop multiplies by the VAE factor."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.zeros((n, 4, 8, 8), np.float32)
    for i, c in enumerate(y):
        x[i, c % 4, (c // 4) * 2:(c // 4) * 2 + 4, 2:6] = 1.0
    x = x + 0.05 * rng.standard_normal(x.shape).astype(np.float32)
    return TensorDataset(fw.tensor(x / 0.18215), fw.tensor(y))


def _args(**kw):
    d = dict(model="DiT-T/2", image_size=64, num_classes=10, epochs=1, global_batch_size=4,
             global_seed=0, num_workers=0, log_every=2, ckpt_every=50_000)
    d.update(kw)
    return argparse.Namespace(**d)


def test_initialize_weights():
    fw.manual_seed(0)
    m = DiT(**TINY)
    np.testing.assert_allclose(m.pos_embed.detach().numpy()[0], get_2d_sincos_pos_embed(32, 4), rtol=1e-6, atol=1e-7)
    assert not m.pos_embed.requires_grad and isinstance(m.pos_embed, nn.Parameter)
    # xavier_uniform_ through ``w.view([w.shape[0], -1])`` writes the conv weight with the
    # Linear fans (16 in, 32 out): bound sqrt(6 / 48), wider than the conv fans' sqrt(6 / 144)
    w = m.x_embedder.proj.weight.detach().numpy()
    assert np.abs(w).max() <= math.sqrt(6 / 48) and np.abs(w).max() > math.sqrt(6 / 144)
    assert abs(w.std() - math.sqrt(6 / 48) / math.sqrt(3)) < 0.03
    for b in m.blocks:
        assert not b.adaLN_modulation[-1].weight.detach().numpy().any()
    assert not m.final_layer.linear.weight.detach().numpy().any()
    assert abs(m.t_embedder.mlp[0].weight.std().item() - 0.02) < 0.003
    qkv = m.blocks[0].attn.qkv.weight.detach().numpy()  # xavier for (96, 32)
    assert np.abs(qkv).max() <= math.sqrt(6 / 128) and not m.blocks[0].attn.qkv.bias.detach().numpy().any()
    # zero-initialised output: the untrained model predicts zeros
    with fw.no_grad():
        assert not m(fw.randn(2, 4, 8, 8), fw.tensor([1, 999]), fw.tensor([0, 3])).numpy().any()


def test_timestep_embedding_against_numpy():
    t = fw.tensor([0, 1, 250, 999])
    for dim in (256, 7):
        got = TimestepEmbedder.timestep_embedding(t, dim).numpy()
        half = dim // 2
        freqs = np.exp(-math.log(10000) * np.arange(half) / half)
        args = np.array([0, 1, 250, 999.0])[:, None] * freqs[None]
        want = np.concatenate([np.cos(args), np.sin(args)] + ([np.zeros((4, 1))] if dim % 2 else []), -1)
        assert got.shape == (4, dim) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=2e-4)


def test_label_dropout_for_classifier_free_guidance():
    fw.manual_seed(0)
    m = DiT(**TINY, class_dropout_prob=0.5)
    emb = m.y_embedder
    assert emb.embedding_table.weight.shape == (11, 32)  # one extra "null" class
    labels = fw.tensor([1, 2, 3, 4, 5, 6, 7, 8] * 8)
    fw.manual_seed(3)
    dropped = emb.token_drop(labels)
    fw.manual_seed(3)
    want = np.where(fw.rand(64).numpy() < 0.5, 10, labels.numpy())
    np.testing.assert_array_equal(dropped.numpy(), want)
    assert dropped.dtype == fw.int64 and 10 < (dropped == 10).sum().item() < 54
    forced = emb.token_drop(fw.tensor([1, 2, 3]), force_drop_ids=fw.tensor([1, 0, 1]))
    np.testing.assert_array_equal(forced.numpy(), [10, 2, 10])
    e = emb(fw.tensor([1, 2]), train=False)  # eval: never dropped
    np.testing.assert_array_equal(e.detach().numpy(), emb.embedding_table.weight.detach().numpy()[[1, 2]])
    assert LabelEmbedderNoCfg().embedding_table.weight.shape == (10, 8)


def LabelEmbedderNoCfg():
    from ._dit_model import LabelEmbedder
    return LabelEmbedder(10, 8, 0.0)


def test_unpatchify_inverts_a_patch_layout():
    m = DiT(**TINY, learn_sigma=False)
    img = fw.arange(2 * 4 * 8 * 8, dtype=fw.float32).reshape(2, 4, 8, 8)
    # patch (i, j) of image n holds its p x p x c pixels in (p, q, c) order
    patches = img.numpy().reshape(2, 4, 4, 2, 4, 2).transpose(0, 2, 4, 3, 5, 1).reshape(2, 16, 16)
    np.testing.assert_array_equal(m.unpatchify(fw.tensor(patches)).numpy(), img.numpy())


def test_schedules_and_timestep_spacing():
    betas = gd.get_named_beta_schedule("linear", 1000)
    np.testing.assert_allclose(betas[[0, -1]], [1e-4, 0.02])
    cos = gd.get_named_beta_schedule("squaredcos_cap_v2", 50)
    ab = lambda t: np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2
    np.testing.assert_allclose(np.cumprod(1 - cos)[:-1], ab(np.arange(1, 50) / 50) / ab(0), rtol=1e-9)
    assert cos[-1] == 0.999  # max_beta
    assert space_timesteps(1000, "4") == {0, 333, 666, 999}
    assert space_timesteps(1000, "ddim4") == {0, 250, 500, 750}
    assert len(space_timesteps(300, [10, 15, 20])) == 45
    sd = create_diffusion("4")
    assert sd.timestep_map == [0, 333, 666, 999] and sd.num_timesteps == 4
    # the respaced betas keep the base process's alphas_cumprod at the kept steps
    base = np.cumprod(1 - betas)
    np.testing.assert_allclose(sd.alphas_cumprod, base[[0, 333, 666, 999]], rtol=1e-12)
    with pytest.raises(ValueError):
        space_timesteps(10, "ddim7")


def _np_approx_cdf(x):
    return 0.5 * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def _np_discretized_ll(x, means, log_scales):
    c = x - means
    inv = np.exp(-log_scales)
    cdf_plus, cdf_min = _np_approx_cdf(inv * (c + 1 / 255)), _np_approx_cdf(inv * (c - 1 / 255))
    mid = np.log(np.maximum(cdf_plus - cdf_min, 1e-12))
    return np.where(x < -0.999, np.log(np.maximum(cdf_plus, 1e-12)),
                    np.where(x > 0.999, np.log(np.maximum(1 - cdf_min, 1e-12)), mid))


def test_gaussian_likelihoods_and_kl_against_numpy():
    from math import erf
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 1, 20), [-1.0, 1.0, -1.0, 1.0]])
    means = x + rng.normal(0, 0.05, 24)
    log_scales = rng.uniform(-4, -2, 24)
    for dt, tol in ((fw.float64, 1e-10), (fw.float32, 1e-3)):
        got = gd.discretized_gaussian_log_likelihood(fw.tensor(x, dtype=dt), means=fw.tensor(means, dtype=dt),
                                                     log_scales=fw.tensor(log_scales, dtype=dt))
        assert got.dtype == dt
        np.testing.assert_allclose(got.numpy(), _np_discretized_ll(x, means, log_scales), rtol=tol, atol=tol)
    # the tanh approximation stays within 2e-4 of the exact normal CDF
    z = np.linspace(-4, 4, 81)
    approx = gd.approx_standard_normal_cdf(fw.tensor(z)).numpy()
    assert np.abs(approx - [0.5 * (1 + erf(v / math.sqrt(2))) for v in z]).max() < 2e-4
    m1, l1, m2, l2 = (rng.normal(size=6) for _ in range(4))
    kl = gd.normal_kl(fw.tensor(m1), fw.tensor(l1), fw.tensor(m2), fw.tensor(l2)).numpy()
    np.testing.assert_allclose(kl, 0.5 * (-1 + l2 - l1 + np.exp(l1 - l2) + (m1 - m2) ** 2 * np.exp(-l2)), rtol=1e-5)
    # scalars for the prior: N(0, 1)
    kl0 = gd.normal_kl(fw.tensor(m1, dtype=fw.float32), fw.tensor(l1, dtype=fw.float32), 0.0, 0.0)
    assert kl0.dtype == fw.float32
    np.testing.assert_allclose(kl0.numpy(), 0.5 * (-1 - l1 + np.exp(l1) + m1 ** 2), rtol=1e-5)
    lp = gd.continuous_gaussian_log_likelihood(fw.tensor(x), means=fw.tensor(means), log_scales=fw.tensor(log_scales))
    zz = (x - means) * np.exp(-log_scales.astype(np.float64))
    np.testing.assert_allclose(lp.numpy(), -0.5 * zz ** 2 - 0.5 * np.log(2 * np.pi), rtol=1e-4)


def _np_training_losses(d, x0, t, noise, out):
    """gaussian_diffusion.training_losses (MSE + learned-range VB) in float64 NumPy."""
    C = x0.shape[1]
    e = lambda a: a[t][:, None, None, None]
    x_t = e(d.sqrt_alphas_cumprod) * x0 + e(d.sqrt_one_minus_alphas_cumprod) * noise
    eps, v = out[:, :C], out[:, C:]
    mse = ((noise - eps) ** 2).mean((1, 2, 3))
    frac = (v + 1) / 2
    log_var = frac * e(np.log(d.betas)) + (1 - frac) * e(d.posterior_log_variance_clipped)
    pred_x0 = e(d.sqrt_recip_alphas_cumprod) * x_t - e(d.sqrt_recipm1_alphas_cumprod) * eps
    mean = e(d.posterior_mean_coef1) * pred_x0 + e(d.posterior_mean_coef2) * x_t
    true_mean = e(d.posterior_mean_coef1) * x0 + e(d.posterior_mean_coef2) * x_t
    true_lv = e(d.posterior_log_variance_clipped)
    kl = 0.5 * (-1 + log_var - true_lv + np.exp(true_lv - log_var) + (true_mean - mean) ** 2 * np.exp(-log_var))
    kl = kl.mean((1, 2, 3)) / np.log(2)
    nll = -_np_discretized_ll(x0, mean, 0.5 * log_var).mean((1, 2, 3)) / np.log(2)
    return x_t, mse, np.where(t == 0, nll, kl)


def test_training_losses_against_numpy():
    """The learned-sigma VB term (KL, and the decoder NLL at t == 0) and the MSE."""
    d = create_diffusion(timestep_respacing="")
    rng = np.random.default_rng(1)
    x0 = np.clip(rng.normal(0, 0.5, (4, 4, 4, 4)), -1, 1).astype(np.float32)
    x0[0, 0, 0, :2] = [-1.0, 1.0]  # the edge bins of the decoder likelihood
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    out = rng.normal(0, 0.5, (4, 8, 4, 4)).astype(np.float32)
    t = np.array([0, 1, 500, 999])
    seen = {}

    def model(x, ts, **kw):
        seen["x_t"], seen["t"] = x.numpy(), ts.numpy()
        return fw.tensor(out)

    terms = d.training_losses(model, fw.tensor(x0), fw.tensor(t), noise=fw.tensor(noise))
    x_t, mse, vb = _np_training_losses(d, x0.astype(np.float64), t, noise.astype(np.float64), out.astype(np.float64))
    np.testing.assert_allclose(seen["x_t"], x_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(seen["t"], t)  # through _WrappedModel's timestep map
    np.testing.assert_allclose(terms["mse"].numpy(), mse, rtol=1e-5)
    np.testing.assert_allclose(terms["vb"].numpy(), vb, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(terms["loss"].numpy(), mse + vb, rtol=1e-3, atol=1e-4)


def test_vb_term_trains_only_the_variance():
    """``frozen_out = cat([model_output.detach(), model_var_values])``: the VB gradient reaches
    the variance channels, never the mean channels."""
    d = create_diffusion(timestep_respacing="")
    fw.manual_seed(0)
    out = (0.3 * fw.randn(3, 8, 4, 4)).requires_grad_()
    terms = d.training_losses(lambda x, t, **kw: out, fw.randn(3, 4, 4, 4).clamp(-1, 1), fw.tensor([0, 10, 600]))
    terms["vb"].sum().backward()
    g = out.grad.numpy()
    assert not g[:, :4].any() and np.abs(g[:, 4:]).min(axis=(1, 2, 3)).max() > 0


def test_update_ema_and_requires_grad():
    fw.manual_seed(0)
    model = DiT(**TINY)
    ema = deepcopy(model)
    requires_grad(ema, False)
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if n != "pos_embed")
    for p in model.parameters():
        p.data.add_(0.5)
    before = {n: p.detach().numpy().copy() for n, p in ema.named_parameters()}
    update_ema(ema, model, decay=0.9)
    for n, p in model.named_parameters():
        want = 0.9 * before[n] + 0.1 * p.detach().numpy()
        np.testing.assert_allclose(dict(ema.named_parameters())[n].detach().numpy(), want, rtol=1e-6, atol=1e-7, err_msg=n)
    update_ema(ema, model, decay=0)
    for (n, a), (_, b) in zip(ema.named_parameters(), model.named_parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=n)
    assert ema.blocks[0].attn.qkv.weight.grad is None


def _fixed_draw_loss(model, diffusion, x, y):
    fw.manual_seed(123)
    t = fw.randint(0, diffusion.num_timesteps, (x.shape[0],))
    with fw.no_grad():
        return diffusion.training_losses(model, x, t, dict(y=y))["loss"].mean().item()


def test_training_lowers_the_loss_and_checkpoints(tmp_path):
    data = _latents(32)
    x = fw.stack([data[i][0] for i in range(32)]) * 0.18215
    y = fw.stack([data[i][1] for i in range(32)])
    fw.manual_seed(0)
    init = DiT_models["DiT-T/2"](input_size=8, num_classes=10).eval()
    d = create_diffusion(timestep_respacing="")
    before = _fixed_draw_loss(init, d, x, y)
    out = main(_args(epochs=5, ckpt_every=40), data, lr=3e-3, checkpoint_dir=str(tmp_path))
    after = _fixed_draw_loss(out["model"], d, x, y)
    assert len(out["losses"]) == 40 and all(np.isfinite(out["losses"]))
    assert after < before - 0.1, (before, after)
    np.testing.assert_allclose(out["logged"], np.mean(np.reshape(out["losses"], (20, 2)), 1), rtol=1e-6)
    ck = torch.load(str(tmp_path / "0000040.pt"), weights_only=False)
    assert set(ck) == {"model", "ema", "opt", "args"} and ck["args"].model == "DiT-T/2"
    fresh = DiT_models["DiT-T/2"](input_size=8, num_classes=10)
    fresh.load_state_dict(ck["ema"])
    for k, v in out["ema"].state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    # the EMA (decay 0.9999) barely moved from the initial weights; the model did
    w0 = init.blocks[0].attn.qkv.weight.detach().numpy()
    assert np.abs(out["ema"].blocks[0].attn.qkv.weight.detach().numpy() - w0).max() < 1e-3
    assert np.abs(out["model"].blocks[0].attn.qkv.weight.detach().numpy() - w0).max() > 1e-2
    # pos_embed (parameter 0, frozen) never gets a gradient, so AdamW keeps no state for it
    assert 0 not in ck["opt"]["state"] and ck["opt"]["state"][1]["step"] == 40
    assert fw.backends.cuda.matmul.allow_tf32


def test_compiled_train_step_matches_eager():
    """Random timesteps, label dropout, the VB term, AdamW and the EMA update in one compiled
    step, against the same steps run eagerly."""
    def run(compiled):
        out = main(_args(epochs=1), _latents(16), compiled=compiled, lr=1e-3)
        state = {**{"m." + k: v.numpy() for k, v in out["model"].state_dict().items()},
                 **{"e." + k: v.numpy() for k, v in out["ema"].state_dict().items()}}
        return out["losses"], state, out["step_fn"]

    assert_compiled_matches_eager(run, captures=1, num_recompiles=0, eager_reason=None)


def test_sampling_with_classifier_free_guidance():
    fw.manual_seed(0)
    model = DiT(**TINY)
    for n, p in model.named_parameters():  # (untrained DiT outputs zeros: give it some signal)
        if "adaLN" in n or "final_layer.linear" in n:
            p.data.normal_(0, 0.05)
    samples, diffusion = sample(model, 4, [1, 7, 3], latent_size=8)
    assert samples.shape == (3, 4, 8, 8) and np.isfinite(samples.numpy()).all()
    assert diffusion.timestep_map == [0, 333, 666, 999] and fw.is_grad_enabled()
    # forward_with_cfg: both halves get uncond + s * (cond - uncond) on the first 3 channels
    x, t, y = fw.randn(2, 4, 8, 8), fw.tensor([5, 5]), fw.tensor([2, 10])
    with fw.no_grad():
        out = model.forward_with_cfg(x, t, y, 4.0).numpy()
        raw = model(fw.cat([x[:1], x[:1]]), t, y).numpy()
    cfg = raw[1, :3] + 4.0 * (raw[0, :3] - raw[1, :3])
    np.testing.assert_allclose(out[0, :3], cfg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1, :3], cfg, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[:, 3:], raw[:, 3:])


def test_p_sample_loop_replays_in_numpy():
    """Two respaced steps with a model that returns fixed eps / variance values."""
    d = create_diffusion("2", diffusion_steps=100)
    rng = np.random.default_rng(0)
    outs = {int(k): rng.normal(0, 0.5, (2, 2, 3, 3)) for k in d.timestep_map}

    def model(x, t, **kw):
        return fw.tensor(outs[int(t[0])], dtype=fw.float32)

    z = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    fw.manual_seed(4)
    got = d.p_sample_loop(model, (2, 1, 3, 3), fw.tensor(z), clip_denoised=True, device="cpu")
    fw.manual_seed(4)
    x = z.astype(np.float64)
    for i in (1, 0):
        out = outs[d.timestep_map[i]]
        eps, v = out[:, :1], out[:, 1:]
        frac = (v + 1) / 2
        lv = frac * np.log(d.betas[i]) + (1 - frac) * d.posterior_log_variance_clipped[i]
        x0 = np.clip(d.sqrt_recip_alphas_cumprod[i] * x - d.sqrt_recipm1_alphas_cumprod[i] * eps, -1, 1)
        mean = d.posterior_mean_coef1[i] * x0 + d.posterior_mean_coef2[i] * x
        noise = fw.randn(2, 1, 3, 3).numpy()
        x = mean + (i != 0) * np.exp(0.5 * lv) * noise
    np.testing.assert_allclose(got.numpy(), x, rtol=1e-4, atol=1e-5)
    ddim = d.ddim_sample_loop(model, (2, 1, 3, 3), fw.tensor(z), device="cpu")
    assert ddim.shape == (2, 1, 3, 3) and np.isfinite(ddim.numpy()).all()


def test_dit_block_against_numpy():
    """adaLN-Zero: LayerNorm without affine, shift / scale / gate from SiLU + Linear of c,
    fused SDPA attention, tanh-GELU MLP."""
    fw.manual_seed(0)
    block = DiTBlock(8, 2).double()
    for p in block.parameters():
        p.data.normal_(0, 0.3)
    x, c = fw.randn(2, 5, 8, dtype=fw.float64), fw.randn(2, 8, dtype=fw.float64)
    p = np_params(block.state_dict())
    xn, cn = x.numpy(), c.numpy()
    mod = np_linear(p, cn / (1 + np.exp(-cn)), "adaLN_modulation.1")
    sh1, sc1, g1, sh2, sc2, g2 = (m[:, None] for m in np.split(mod, 6, axis=1))
    ln = lambda v: (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6)
    h = ln(xn) * (1 + sc1) + sh1
    q, k, v = np_linear(p, h, "attn.qkv").reshape(2, 5, 3, 2, 4).transpose(2, 0, 3, 1, 4)
    a = q @ k.transpose(0, 1, 3, 2) / 2.0
    a = np.exp(a - a.max(-1, keepdims=True))
    a = (a / a.sum(-1, keepdims=True)) @ v
    xn = xn + g1 * np_linear(p, a.transpose(0, 2, 1, 3).reshape(2, 5, 8), "attn.proj")
    h = np_linear(p, ln(xn) * (1 + sc2) + sh2, "mlp.fc1")
    h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    want = xn + g2 * np_linear(p, h, "mlp.fc2")
    with fw.no_grad():
        np.testing.assert_allclose(block(x, c).numpy(), want, rtol=1e-10, atol=1e-12)


def test_dit_block_and_final_layer_gradcheck_float64():
    """adaLN-Zero modulation, SDPA attention, tanh-GELU MLP, the final layer and unpatchify."""
    fw.manual_seed(0)
    block, final = DiTBlock(8, 2).double(), FinalLayer(8, 2, 2).double()
    m = DiT(input_size=4, patch_size=2, in_channels=1, hidden_size=8, depth=1, num_heads=2, num_classes=3)
    x = fw.randn(2, 4, 8, dtype=fw.float64)
    c = fw.randn(2, 8, dtype=fw.float64)
    wa, wf = block.adaLN_modulation[1].weight, final.adaLN_modulation[1].weight

    def f(x, c, da, df):  # offsets on one input column of each adaLN weight
        h = fw.func.functional_call(block, {"adaLN_modulation.1.weight": wa + F.pad(da, (0, 7))}, (x, c))
        h = fw.func.functional_call(final, {"adaLN_modulation.1.weight": wf + F.pad(df, (0, 7))}, (h, c))
        return m.unpatchify(h)

    args = grad_leaves(x, c, 0.1 * fw.randn(48, 1, dtype=fw.float64), 0.1 * fw.randn(16, 1, dtype=fw.float64))
    assert fw.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5)


def test_vb_loss_gradcheck_float64():
    """normal_kl and the discretized Gaussian log-likelihood (its edge bins included)."""
    rng = np.random.default_rng(0)
    x = fw.tensor(np.concatenate([rng.uniform(-0.9, 0.9, 6), [-1.0, 1.0]]).reshape(1, 2, 2, 2))
    means = fw.tensor(rng.normal(0, 0.2, (1, 2, 2, 2))).requires_grad_()
    logv = fw.tensor(rng.uniform(-4, -2, (1, 2, 2, 2))).requires_grad_()

    def f(means, logv):
        nll = -gd.discretized_gaussian_log_likelihood(x, means=means, log_scales=0.5 * logv)
        return nll + gd.normal_kl(x * 0.9, logv * 1.1, means, logv)

    assert fw.autograd.gradcheck(f, (means, logv), eps=1e-7, atol=1e-5)


def test_onnx_export_eval(tmp_path):
    fw.manual_seed(0)
    model = DiT(**TINY)
    for n, p in model.named_parameters():
        if "adaLN" in n or "final_layer.linear" in n:
            p.data.normal_(0, 0.1)
    model.eval()
    x, t, y = fw.randn(2, 4, 8, 8), fw.tensor([3, 700]), fw.tensor([1, 10])
    assert_onnx_export_matches(model, (x, t, y), tmp_path / "dit.onnx", sub_batch=1,
                               input_names=["x", "t", "y"],
                               dynamic_axes={"x": {0: "b"}, "t": {0: "b"}, "y": {0: "b"}})

    class WithCfg(nn.Module):  # forward_with_cfg as the exported forward
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x, t, y):
            return self.m.forward_with_cfg(x, t, y, 4.0)

    x4, t4, y4 = fw.randn(4, 4, 8, 8), fw.tensor([5] * 4), fw.tensor([1, 2, 10, 10])
    assert_onnx_export_matches(WithCfg(model).eval(), (x4, t4, y4), tmp_path / "cfg.onnx", atol=1e-4)


def test_checkpoint_args_survive_save_load(tmp_path):
    args = _args()
    path = os.path.join(tmp_path, "c.pt")
    torch.save({"args": args, "model": copy.deepcopy(DiT(**TINY)).state_dict()}, path)
    ck = torch.load(path, weights_only=False)
    assert ck["args"] == args and ck["model"]["pos_embed"].shape == (1, 16, 32)
