# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""CompVis/stable-diffusion ported to ``fw``: the UNet (``_sd_unet.py``, openaimodel.py with
SpatialTransformer cross-attention), its building blocks and the diagonal Gaussian
(``_sd_modules.py``), the KL autoencoder (``_sd_autoencoder.py``), and the latent diffusion
core with the DDIM sampler (``_sd_ddim.py``), at tiny sizes: model_channels 32 (GroupNorm's
32 groups), one attention resolution, context_dim 16, 4x4 latents.

Changed beyond the ``torch`` -> ``fw`` rename: see the modules' docstrings (einops written
out, the Lightning modules as plain ``nn.Module``s built directly instead of through
``instantiate_from_config``, DDIMSampler's buffers on the model's device rather than
"cuda"). The conditioning is a stub text embedder (token ids to a 3-token context; CLIP's
text encoder is not torch) or ldm's own ClassEmbedder (one context token per image). ``zero_module`` makes a fresh UNet output exactly zero and leaves
most weights without gradient, so tests that train or check gradients first give the
zeroed convolutions small random weights (``_unzero``).
"""

import math

import numpy as np
import pytest

import framework as fw
from framework import nn

from ._checks import assert_stats, grad_leaves, np_of
from ._sd_autoencoder import AutoencoderKL
from ._sd_ddim import ClassEmbedder, DDIMSampler, TinyLatentDiffusion
from ._sd_modules import (
    BasicTransformerBlock,
    CrossAttention,
    DiagonalGaussianDistribution,
    make_beta_schedule,
    make_ddim_sampling_parameters,
    make_ddim_timesteps,
    normal_kl,
    timestep_embedding,
)
from ._sd_unet import AttentionBlock, ResBlock, UNetModel

torch = fw

# configs/stable-diffusion/v1-inference.yaml's unet_config params, made tiny
UNET = dict(image_size=4, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[2],
            num_res_blocks=1, channel_mult=[1, 2], num_heads=2, use_spatial_transformer=True,
            transformer_depth=1, context_dim=16, use_checkpoint=True, legacy=False)
# its first_stage_config ddconfig (AutoencoderKL), made tiny
DDCONFIG = dict(double_z=True, z_channels=4, resolution=8, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 2],
                num_res_blocks=1, attn_resolutions=[8], dropout=0.0)
# v1-inference.yaml's LatentDiffusion params (linear_start / linear_end / scale_factor), 100 steps
LDM = dict(timesteps=100, linear_start=0.00085, linear_end=0.0120, cond_stage_key="class_label",
           cond_stage_trainable=True, scale_factor=0.18215, learning_rate=1e-3)


def _unzero(module, std=0.05):
    """Give the zero_module'd convolutions small random weights (a trained model's state)."""
    with fw.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and not m.weight.abs().sum().item():
                m.weight.normal_(0, std)
    return module


class StubTextEmbedder(nn.Module):
    """A stand-in for FrozenCLIPEmbedder (transformers' CLIP is not torch): token ids (b, n)
    to a learned (b, n, context_dim) context, as ``encode(text)`` returns."""

    def __init__(self, vocab=10, n_ctx=3, dim=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(n_ctx, dim) * 0.1)

    def encode(self, tokens):
        return self.tok(tokens) + self.pos


def build_ldm(seed=0, cond_stage=None):
    """The latent diffusion model; the conditioning is the stub text embedder (ids (b, 3)) or
    ldm's ClassEmbedder (``cond_stage="class"``: labels (b,), one context token)."""
    fw.manual_seed(seed)
    ae = AutoencoderKL(DDCONFIG, embed_dim=4)
    cond = ClassEmbedder(16, n_classes=3, key="class_label") if cond_stage == "class" else StubTextEmbedder()
    ldm = TinyLatentDiffusion(UNET, ae, cond, **LDM)
    _unzero(ldm.model)
    return ldm


# ---- NumPy references -------------------------------------------------------------------------

def np_timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half, dtype=np.float64) / half)
    args = np.asarray(t, np.float64)[:, None] * freqs[None]
    emb = np.concatenate([np.cos(args), np.sin(args)], -1)
    return np.concatenate([emb, np.zeros_like(emb[:, :1])], -1) if dim % 2 else emb


def np_ldm_schedule(T, linear_start, linear_end):
    betas = np.linspace(linear_start ** 0.5, linear_end ** 0.5, T) ** 2
    ac = np.cumprod(1 - betas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1 - ac_prev) / (1 - ac)
    with np.errstate(divide="ignore"):  # post_var[0] is 0: lvlb[0] is replaced, as in ddpm.py
        lvlb = betas ** 2 / (2 * post_var * (1 - betas) * (1 - ac))
    lvlb[0] = lvlb[1]
    return betas, ac, ac_prev, lvlb


def np_cross_attention(p, x, context, heads, mask=None):
    q, k, v = x @ p["to_q.weight"].T, context @ p["to_k.weight"].T, context @ p["to_v.weight"].T
    b, n, hd = q.shape
    d = hd // heads
    split = lambda t: t.reshape(b, t.shape[1], heads, d).transpose(0, 2, 1, 3)  # noqa: E731
    sim = split(q) @ split(k).transpose(0, 1, 3, 2) * d ** -0.5
    if mask is not None:
        sim = np.where(mask[:, None, None, :], sim, -np.finfo(sim.dtype).max)
    attn = np.exp(sim - sim.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = (attn @ split(v)).transpose(0, 2, 1, 3).reshape(b, n, hd)
    return out @ p["to_out.0.weight"].T + p["to_out.0.bias"]


# ---- util.py, ddpm.py and ddim.py schedules ---------------------------------------------------

def test_timestep_embedding_and_beta_schedules_against_numpy():
    t = fw.tensor([0, 3, 250, 999])
    for dim in (32, 33):
        np.testing.assert_allclose(timestep_embedding(t, dim).numpy(), np_timestep_embedding([0, 3, 250, 999], dim), rtol=1e-5, atol=2e-4)
    np.testing.assert_array_equal(timestep_embedding(t, 8, repeat_only=True).numpy(), np.repeat(t.numpy()[:, None], 8, 1))
    np.testing.assert_allclose(make_beta_schedule("linear", 50, 1e-4, 2e-2), np.linspace(1e-2, 2e-2 ** 0.5, 50) ** 2, rtol=1e-12)
    np.testing.assert_allclose(make_beta_schedule("sqrt", 50, 1e-4, 2e-2), np.linspace(1e-4, 2e-2, 50) ** 0.5, rtol=1e-12)
    s = 8e-3
    ts = np.arange(51) / 50 + s
    a = np.cos(ts / (1 + s) * np.pi / 2) ** 2
    a = a / a[0]
    np.testing.assert_allclose(make_beta_schedule("cosine", 50), np.clip(1 - a[1:] / a[:-1], 0, 0.999), rtol=1e-10)
    cos = make_beta_schedule("cosine", 50)
    assert isinstance(cos, np.ndarray)  # np.clip of a tensor, then .numpy() (a tensor's __array_wrap__)


def test_register_schedule_buffers_against_numpy():
    ldm = build_ldm()
    betas, ac, ac_prev, lvlb = np_ldm_schedule(100, 0.00085, 0.0120)
    np.testing.assert_allclose(ldm.betas.numpy(), betas, rtol=1e-6)
    np.testing.assert_allclose(ldm.alphas_cumprod_prev.numpy(), ac_prev, rtol=1e-6)
    np.testing.assert_allclose(ldm.sqrt_recipm1_alphas_cumprod.numpy(), np.sqrt(1 / ac - 1), rtol=1e-6)
    np.testing.assert_allclose(ldm.lvlb_weights.numpy(), lvlb, rtol=1e-4)
    assert "lvlb_weights" not in ldm.state_dict() and "betas" in ldm.state_dict()  # persistent=False


@pytest.mark.parametrize("method", ["uniform", "quad"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_schedule_against_numpy(method, eta):
    """make_schedule mixes NumPy and tensors as the script does (``np.sqrt(alphas_cumprod)``,
    ``ndarray / tensor``): the results are tensors, with the DDIM paper's sigmas."""
    ldm = build_ldm()
    sampler = DDIMSampler(ldm)
    sampler.make_schedule(ddim_num_steps=10, ddim_discretize=method, ddim_eta=eta, verbose=False)
    _, ac, _, _ = np_ldm_schedule(100, 0.00085, 0.0120)
    steps = np.arange(0, 100, 10) if method == "uniform" else (np.linspace(0, np.sqrt(80), 10) ** 2).astype(int)
    np.testing.assert_array_equal(sampler.ddim_timesteps, steps + 1)
    a, a_prev = ac[steps + 1], np.concatenate([[ac[0]], ac[steps[:-1] + 1]])
    sig = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
    for name, want in (("ddim_alphas", a), ("ddim_alphas_prev", a_prev), ("ddim_sigmas", sig),
                       ("ddim_sqrt_one_minus_alphas", np.sqrt(1 - a))):
        got = getattr(sampler, name)
        got = got.numpy() if isinstance(got, fw.Tensor) else got
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
    assert isinstance(sampler.ddim_sigmas, fw.Tensor) and isinstance(sampler.ddim_sqrt_one_minus_alphas, fw.Tensor)
    np.testing.assert_allclose(sampler.sqrt_one_minus_alphas_cumprod.numpy(), np.sqrt(1 - ac), rtol=1e-4)  # float32 1 - ac
    sig_orig = eta * np.sqrt((1 - np.append(1.0, ac[:-1])) / (1 - ac) * (1 - ac / np.append(1.0, ac[:-1])))
    np.testing.assert_allclose(sampler.ddim_sigmas_for_original_num_steps.numpy(), sig_orig, rtol=1e-4, atol=1e-7)
    # the util functions alone, on NumPy inputs
    s2, a2, p2 = make_ddim_sampling_parameters(ac, make_ddim_timesteps(method, 10, 100, verbose=False), eta, verbose=False)
    np.testing.assert_allclose(s2, sig, rtol=1e-10)


# ---- the UNet ---------------------------------------------------------------------------------

def test_unet_forward_shapes_and_zero_init():
    fw.manual_seed(0)
    unet = UNetModel(**UNET)
    x, t, ctx = fw.randn(2, 4, 4, 4), fw.tensor([1, 99]), fw.randn(2, 3, 16)
    out = unet(x, t, context=ctx)
    assert out.shape == (2, 4, 4, 4) and not out.abs().sum().item()  # zero_module'd out conv
    assert [type(b[-1]).__name__ for b in unet.input_blocks] == ["Conv2d", "ResBlock", "Downsample", "SpatialTransformer"]
    assert unet.input_blocks[3][1].transformer_blocks[0].attn2.to_k.in_features == 16
    _unzero(unet)
    out = unet(x, t, context=ctx)
    assert out.abs().sum().item() > 0 and np.isfinite(out.detach().numpy()).all()
    # the AttentionBlock variant (no cross-attention) and the class-conditional one
    fw.manual_seed(1)
    plain = _unzero(UNetModel(**{**UNET, "use_spatial_transformer": False, "context_dim": None, "num_head_channels": 16, "num_classes": 3}))
    assert plain(x, t, y=fw.tensor([0, 2])).shape == (2, 4, 4, 4)
    assert type(plain.middle_block[1]).__name__ == "AttentionBlock" and plain.middle_block[1].num_heads == 4


@pytest.mark.parametrize("new_order", [False, True])
def test_attention_block_against_numpy(new_order):
    """AttentionBlock with QKVAttentionLegacy (heads split before q/k/v) or QKVAttention
    (q/k/v split first), against the same attention written in NumPy."""
    fw.manual_seed(0)
    blk = _unzero(AttentionBlock(32, num_head_channels=8, use_new_attention_order=new_order))
    x = fw.randn(2, 32, 3, 2)
    got = blk(x).detach().numpy()
    p = {k: v.detach().numpy().astype(np.float64) for k, v in blk.state_dict().items()}
    xs = x.numpy().astype(np.float64).reshape(2, 32, 6)
    g = xs.reshape(2, 32, 1, 6)  # GroupNorm(32, 32): one channel per group
    hn = (g - g.mean((2, 3), keepdims=True)) / np.sqrt(g.var((2, 3), keepdims=True) + 1e-5)
    hn = hn.reshape(2, 32, 6) * p["norm.weight"][:, None] + p["norm.bias"][:, None]
    qkv = np.einsum("oc,bct->bot", p["qkv.weight"][:, :, 0], hn) + p["qkv.bias"][:, None]
    if new_order:
        q, k, v = (t.reshape(2 * 4, 8, 6) for t in np.split(qkv, 3, axis=1))
    else:
        q, k, v = np.split(qkv.reshape(2 * 4, 24, 6), 3, axis=1)
    w = np.einsum("bct,bcs->bts", q, k) / np.sqrt(8)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    a = np.einsum("bts,bcs->bct", w, v).reshape(2, 32, 6)
    h = np.einsum("oc,bct->bot", p["proj_out.weight"][:, :, 0], a) + p["proj_out.bias"][:, None]
    np.testing.assert_allclose(got, (xs + h).reshape(2, 32, 3, 2), rtol=1e-4, atol=1e-5)


def test_resblock_variants():
    """ResBlock with FiLM-like scale-shift conditioning, up / down resampling, and a 3x3
    skip convolution; every weight gets a gradient."""
    fw.manual_seed(0)
    for kw, hw in (({"use_scale_shift_norm": True}, 4), ({"up": True}, 8), ({"down": True}, 2),
                   ({"out_channels": 64, "use_conv": True}, 4)):
        blk = _unzero(ResBlock(32, 16, 0.0, **kw))
        out = blk(fw.randn(2, 32, 4, 4), fw.randn(2, 16))
        assert out.shape == (2, kw.get("out_channels", 32), hw, hw), kw
        out.square().mean().backward()
        assert all(p.grad is not None for p in blk.parameters()), kw
        assert blk.out_layers[-1].weight.grad.abs().sum().item() > 0 and blk.emb_layers[1].weight.grad is not None


def test_checkpointing_gives_the_same_gradients():
    """util.checkpoint's CheckpointFunction (a custom autograd.Function whose backward reruns
    the block under enable_grad and calls autograd.grad) against the plain block."""
    fw.manual_seed(0)
    block = BasicTransformerBlock(16, 2, 8, context_dim=6, checkpoint=True)
    x, ctx = fw.randn(2, 5, 16, requires_grad=True), fw.randn(2, 3, 6, requires_grad=True)
    grads = []
    for flag in (True, False):
        block.checkpoint = flag
        block.zero_grad()
        x.grad = ctx.grad = None
        out = block(x, context=ctx)
        assert out.requires_grad
        (out * fw.linspace(-1, 1, 16)).sum().backward()
        grads.append([x.grad.numpy().copy(), ctx.grad.numpy().copy()] + [p.grad.numpy().copy() for p in block.parameters()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cross_attention_against_numpy_and_gradcheck():
    fw.manual_seed(0)
    attn = CrossAttention(query_dim=8, context_dim=6, heads=2, dim_head=4).double()
    x, ctx = fw.randn(2, 5, 8, dtype=fw.float64), fw.randn(2, 3, 6, dtype=fw.float64)
    mask = fw.tensor([[True, True, False], [True, False, True]])
    p = {k: v.detach().numpy() for k, v in attn.state_dict().items()}
    np.testing.assert_allclose(attn(x, ctx).detach().numpy(), np_cross_attention(p, x.numpy(), ctx.numpy(), 2), rtol=1e-10)
    np.testing.assert_allclose(attn(x, ctx, mask=mask).detach().numpy(), np_cross_attention(p, x.numpy(), ctx.numpy(), 2, mask.numpy()), rtol=1e-10)
    xl, cl = grad_leaves(x, ctx)
    assert fw.autograd.gradcheck(lambda a, c: attn(a, c, mask=mask), (xl, cl))
    assert fw.autograd.gradcheck(lambda a, c: attn(a, c), (xl, cl))
    selfattn = CrossAttention(query_dim=8, heads=2, dim_head=4).double()  # context defaults to x
    ps = {k: v.detach().numpy() for k, v in selfattn.state_dict().items()}
    np.testing.assert_allclose(selfattn(x).detach().numpy(), np_cross_attention(ps, x.numpy(), x.numpy(), 2), rtol=1e-10)
    assert fw.autograd.gradcheck(selfattn, (xl,))


# ---- the autoencoder and its posterior --------------------------------------------------------

def test_autoencoder_round_trip_and_posterior_against_numpy():
    fw.manual_seed(0)
    ae = AutoencoderKL(DDCONFIG, embed_dim=4).eval()
    x = fw.rand(2, 3, 8, 8) * 2 - 1
    with fw.no_grad():
        posterior = ae.encode(x)
        moments = ae.quant_conv(ae.encoder(x))
        assert moments.shape == (2, 8, 4, 4) and ae.decoder.z_shape == (1, 4, 4, 4)
        mean, logvar = moments.numpy()[:, :4], np.clip(moments.numpy()[:, 4:], -30.0, 20.0)
        np.testing.assert_array_equal(posterior.mode().numpy(), mean)
        np.testing.assert_allclose(posterior.std.numpy(), np.exp(0.5 * logvar), rtol=1e-6)
        kl = 0.5 * np.sum(mean ** 2 + np.exp(logvar) - 1.0 - logvar, axis=(1, 2, 3))
        np.testing.assert_allclose(posterior.kl().numpy(), kl, rtol=1e-5)
        other = DiagonalGaussianDistribution(fw.tensor(np.concatenate([mean[::-1] * 0.5, logvar[::-1] + 0.3], 1)))
        om, olv = mean[::-1] * 0.5, logvar[::-1] + 0.3
        kl2 = 0.5 * np.sum((mean - om) ** 2 / np.exp(olv) + np.exp(logvar) / np.exp(olv) - 1.0 - logvar + olv, axis=(1, 2, 3))
        np.testing.assert_allclose(posterior.kl(other).numpy(), kl2, rtol=1e-5)
        s = fw.randn(2, 4, 4, 4)
        nll = 0.5 * np.sum(np.log(2 * np.pi) + logvar + (s.numpy() - mean) ** 2 / np.exp(logvar), axis=(1, 2, 3))
        np.testing.assert_allclose(posterior.nll(s).numpy(), nll, rtol=1e-5)
        np.testing.assert_allclose(normal_kl(posterior.mean, posterior.logvar, 0.0, 0.0).numpy(),
                                   0.5 * (-1.0 - logvar + np.exp(logvar) + mean ** 2), rtol=1e-5, atol=1e-7)
        fw.manual_seed(5)
        z = posterior.sample()
        fw.manual_seed(5)
        np.testing.assert_allclose(z.numpy(), mean + np.exp(0.5 * logvar) * fw.randn(2, 4, 4, 4).numpy(), rtol=1e-6)
        dec, post = ae(x)
        assert dec.shape == (2, 3, 8, 8) and np.isfinite(dec.numpy()).all()
        np.testing.assert_allclose(ae(x, sample_posterior=False)[0].numpy(), ae.decode(posterior.mode()).numpy(), rtol=1e-6)
    det = DiagonalGaussianDistribution(moments, deterministic=True)
    assert det.kl().tolist() == [0.0] and not det.std.abs().sum().item()
    assert (det.sample() == det.mean).all()


def test_autoencoder_linear_attention_variant():
    fw.manual_seed(1)
    ae = AutoencoderKL({**DDCONFIG, "attn_type": "linear"}, embed_dim=4)
    assert type(ae.encoder.mid.attn_1).__name__ == "LinAttnBlock"
    x = fw.randn(1, 3, 8, 8)
    dec, post = ae(x)
    assert dec.shape == (1, 3, 8, 8) and post.kl().shape == (1,)
    dec.square().mean().backward()
    assert ae.encoder.mid.attn_1.to_qkv.weight.grad.abs().sum().item() > 0


# ---- training the latent diffusion model ------------------------------------------------------

def _batch():
    """Images (LatentDiffusion.get_input encodes them with the first stage) and token ids."""
    fw.manual_seed(7)
    x = fw.rand(2, 3, 8, 8) * 2 - 1
    return x, fw.tensor([[1, 4, 2], [7, 0, 0]])  # token ids for StubTextEmbedder


def train_ldm(ldm, x, c, steps, compiled=False):
    """LatentDiffusion.shared_step's ``loss = self(x, c)`` with configure_optimizers' AdamW,
    as Lightning's loop runs it (zero_grad, backward, step)."""
    z = ldm.get_first_stage_encoding(ldm.encode_first_stage(x)).detach()  # (get_input)
    opt = ldm.configure_optimizers()

    def training_step(z, c):
        loss, loss_dict = ldm(z, c)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    losses = [training_step(z, c).item()]  # (AdamW's state exists before any capture)
    step = fw.compile(training_step, mode="always") if compiled else training_step
    losses += [step(z, c).item() for _ in range(steps - 1)]
    return losses, z, step


def test_denoising_loss_training_lowers_the_loss():
    ldm = build_ldm(0)
    x, c = _batch()
    z = ldm.get_first_stage_encoding(ldm.encode_first_stage(x)).detach()
    fw.manual_seed(3)
    t, noise = fw.randint(0, 100, (2,)), fw.randn_like(z)

    def fixed_loss():
        with fw.no_grad():
            return ldm.p_losses(z, ldm.get_learned_conditioning(c), t, noise=noise)[0].item()

    before = fixed_loss()
    losses, _, _ = train_ldm(ldm, x, c, steps=6)
    assert np.all(np.isfinite(losses)) and fixed_loss() < before * 0.9, (before, fixed_loss(), losses)
    assert ldm.cond_stage_model.tok.weight.grad is not None  # trainable conditioning
    assert all(p.grad is None for p in ldm.first_stage_model.parameters())  # frozen first stage


def test_compiled_train_step_matches_eager():
    """Random timesteps and noise, checkpointed ResBlocks and transformer blocks (their
    autograd.Function backward calls autograd.grad), AdamW: one capture, eager's numbers.

    The biases feeding a GroupNorm group of one channel (the 32-channel level: 32 groups)
    have a gradient of exactly zero in exact arithmetic; AdamW turns the rounding noise
    there into lr-sized steps, so those parameters are only held to that bound."""
    def run(compiled):
        ldm = build_ldm(0)
        x, c = _batch()
        fw.manual_seed(11)
        losses, _, step = train_ldm(ldm, x, c, steps=3, compiled=compiled)
        state = {k: v.numpy().copy() for k, v in ldm.state_dict().items()}
        return losses, state, step

    l_eager, s_eager, _ = run(False)
    l_comp, s_comp, step = run(True)
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None, graph_breaks=[], cache_hits=1)
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-5, atol=1e-6)
    # which gradients are zero in exact arithmetic: one eager step from the same state
    ldm = build_ldm(0)
    x, c = _batch()
    z = ldm.get_first_stage_encoding(ldm.encode_first_stage(x)).detach()
    ldm(z, c)[0].backward()
    zero = {"model." + k for k, p in ldm.model.named_parameters() if np.abs(p.grad.numpy()).max() < 1e-6}
    assert len(zero) == 11 and all(".in_layers.2.bias" in k or ".emb_layers.1." in k or k.endswith(("out_layers.3.bias", "skip_connection.bias")) for k in zero), sorted(zero)
    for k in s_eager:
        atol = 3 * LDM["learning_rate"] if k in zero else 1e-5
        np.testing.assert_allclose(s_comp[k], s_eager[k], rtol=1e-4, atol=atol, err_msg=k)


# ---- DDIM sampling ----------------------------------------------------------------------------

def test_ddim_sampler_with_classifier_free_guidance():
    ldm = build_ldm(0, cond_stage="class").eval()
    sampler = DDIMSampler(ldm)
    c = ldm.get_learned_conditioning({"class_label": fw.tensor([0, 2])})
    uc = ldm.get_learned_conditioning({"class_label": fw.tensor([1, 1])})
    fw.manual_seed(0)
    samples, inter = sampler.sample(S=4, batch_size=2, shape=[4, 4, 4], conditioning=c, verbose=False, eta=0.5,
                                    unconditional_guidance_scale=3.0, unconditional_conditioning=uc, log_every_t=1)
    assert samples.shape == (2, 4, 4, 4) and np.isfinite(samples.numpy()).all()
    assert len(inter["x_inter"]) == 5 and len(inter["pred_x0"]) == 5
    x_samples = ldm.decode_first_stage(samples)
    assert x_samples.shape == (2, 3, 8, 8) and np.isfinite(x_samples.numpy()).all()
    # txt2img.py's post-processing
    x_samples = torch.clamp((x_samples + 1.0) / 2.0, min=0.0, max=1.0)
    assert 0.0 <= x_samples.min().item() and x_samples.max().item() <= 1.0


@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_ddim_sampling_replays_in_numpy(eta):
    """ddim_sampling / p_sample_ddim with a stand-in noise model, against the DDIM update
    written in NumPy (classifier-free guidance, eta's noise drawn from the same seed)."""
    ldm = build_ldm(0)
    w = fw.linspace(-0.5, 0.5, 16)
    ldm.apply_model = lambda x, t, c: 0.3 * x + (c * w).sum((1, 2))[:, None, None, None] + 0.001 * t[:, None, None, None]
    sampler = DDIMSampler(ldm)
    c, uc = fw.randn(2, 1, 16), fw.zeros(2, 1, 16)
    x_T = fw.randn(2, 4, 4, 4)
    fw.manual_seed(4)
    samples, inter = sampler.sample(S=5, batch_size=2, shape=[4, 4, 4], conditioning=c, verbose=False, eta=eta, x_T=x_T,
                                    unconditional_guidance_scale=2.5, unconditional_conditioning=uc)
    _, ac, _, _ = np_ldm_schedule(100, 0.00085, 0.0120)
    steps = np.arange(0, 100, 20) + 1
    a, a_prev = ac[steps], np.concatenate([[ac[0]], ac[steps[:-1]]])
    sig = eta * np.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
    cw = (c.numpy() * w.numpy()).sum((1, 2))[:, None, None, None]
    x = x_T.numpy().astype(np.float64)
    fw.manual_seed(4)
    for index in range(4, -1, -1):
        t = steps[index]
        e_u, e_c = 0.3 * x + 0.001 * t, 0.3 * x + cw + 0.001 * t
        e = e_u + 2.5 * (e_c - e_u)
        pred_x0 = (x - np.sqrt(1 - a[index]) * e) / np.sqrt(a[index])
        noise = sig[index] * fw.randn(2, 4, 4, 4).numpy()
        x = np.sqrt(a_prev[index]) * pred_x0 + np.sqrt(1 - a_prev[index] - sig[index] ** 2) * e + noise
    np.testing.assert_allclose(samples.numpy(), x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(inter["pred_x0"][-1].numpy(), pred_x0, rtol=1e-4, atol=1e-4)


def test_stochastic_encode_and_decode():
    ldm = build_ldm(0, cond_stage="class").eval()
    sampler = DDIMSampler(ldm)
    sampler.make_schedule(ddim_num_steps=5, ddim_eta=0.0, verbose=False)
    z0, noise = fw.randn(2, 4, 4, 4), fw.randn(2, 4, 4, 4)
    t = fw.tensor([1, 3])
    zt = sampler.stochastic_encode(z0, t, noise=noise)
    a = sampler.ddim_alphas.numpy()[[1, 3]][:, None, None, None]
    np.testing.assert_allclose(zt.numpy(), np.sqrt(a) * z0.numpy() + np.sqrt(1 - a) * noise.numpy(), rtol=1e-5, atol=1e-6)
    c = ldm.get_learned_conditioning({"class_label": fw.tensor([0, 1])})
    out = sampler.decode(zt, c, t_start=3, unconditional_guidance_scale=2.0, unconditional_conditioning=fw.zeros_like(c))
    assert out.shape == (2, 4, 4, 4) and np.isfinite(out.numpy()).all()


# ---- export -----------------------------------------------------------------------------------

def test_onnx_export_unet_eval(tmp_path):
    """The UNet in eval mode (its checkpoint blocks still call CheckpointFunction.apply) with
    a dynamic batch of latents, timesteps and context, in onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(2)
    unet = _unzero(UNetModel(**UNET)).eval()
    x, t, ctx = fw.randn(2, 4, 4, 4), fw.tensor([3, 70]), fw.randn(2, 3, 16)
    path = str(tmp_path / "unet.onnx")
    fw.onnx.export(unet, (x, t, ctx), path, input_names=["x", "timesteps", "context"],
                   dynamic_axes={"x": {0: "b"}, "timesteps": {0: "b"}, "context": {0: "b"}})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b in (2, 3):
        x, t, ctx = fw.randn(b, 4, 4, 4), fw.randint(0, 100, (b,)), fw.randn(b, 3, 16)
        with fw.no_grad():
            want = unet(x, t, context=ctx).numpy()
        (got,) = sess.run(None, {"x": np_of(x), "timesteps": np_of(t), "context": np_of(ctx)})
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
