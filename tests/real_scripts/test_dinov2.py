"""facebookresearch/dinov2 ported to ``fw``: ``dinov2/layers/`` (``_dinov2_layers.py``),
``dinov2/models/vision_transformer.py`` with DINOHead (``_dinov2_model.py``), ``dinov2/loss/``
and the masking / collate data pieces (``_dinov2_loss.py``). The teacher/student training of
``dinov2/train/`` is in test_dinov2_train.py.

Unchanged beyond ``torch`` -> ``fw``: without xFormers (its imports fail here as on any machine
without it) MemEffAttention falls back to Attention, SwiGLUFFNFused to the pure SwiGLUFFN,
and the nested-tensor paths raise their AssertionError.
"""

import random
from functools import partial
from math import erf

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from ._checks import assert_onnx_export_matches, np_of
from ._dinov2_layers import (
    Attention,
    DropPath,
    LayerScale,
    MemEffAttention,
    NestedTensorBlock,
    SwiGLUFFNFused,
    drop_add_residual_stochastic_depth,
)
from ._dinov2_loss import DINOLoss, KoLeoLoss, MaskingGenerator, collate_data_and_cast, iBOTPatchLoss
from ._dinov2_model import Block, DINOHead, DinoVisionTransformer, vit_small

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``


def tiny_vit(**kwargs):
    """vit_small's recipe at a test size: 16x16 images in 4x4 patches (a 4x4 grid)."""
    kw = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
              block_fn=partial(Block, attn_class=MemEffAttention), init_values=1e-5)
    kw.update(kwargs)
    return DinoVisionTransformer(**kw)


# ---- NumPy references -----------------------------------------------------------------------

def np_cubic_weights(n, o, scale, a=-0.75):
    """UpSample.h's bicubic along one axis, align_corners=False: (o, n) weights."""
    src = (np.arange(o) + 0.5) * scale - 0.5
    i0 = np.minimum(np.floor(src).astype(int), n - 1)
    t = np.clip(src - i0, 0.0, 1.0)

    def k(x):
        x = np.abs(x)
        return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
    m = np.zeros((o, n))
    for j in range(-1, 3):
        np.add.at(m, (np.arange(o), np.clip(i0 + j, 0, n - 1)), k(t - j))
    return m


def np_bicubic(x, out_hw, scales):
    """(..., H, W) -> (..., oh, ow) with PyTorch's bicubic (source scale per axis)."""
    mh = np_cubic_weights(x.shape[-2], out_hw[0], scales[0])
    mw = np_cubic_weights(x.shape[-1], out_hw[1], scales[1])
    return np.einsum("oh,...hw,pw->...op", mh, x, mw)


def np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


# ---- the backbone ---------------------------------------------------------------------------

def test_forward_features_registers_and_mask_tokens():
    fw.manual_seed(0)
    vit = tiny_vit(num_register_tokens=3)
    x = fw.randn(2, 3, 16, 16)
    out = vit(x, is_training=True)
    assert out["x_norm_clstoken"].shape == (2, 32)
    assert out["x_norm_regtokens"].shape == (2, 3, 32)
    assert out["x_norm_patchtokens"].shape == (2, 16, 32)
    assert out["x_prenorm"].shape == (2, 20, 32) and out["masks"] is None
    vit.eval()
    with fw.no_grad():
        np.testing.assert_allclose(vit(x).numpy(), out["x_norm_clstoken"].detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
        # masked patches take the mask token before the position embedding is added
        masks = fw.zeros(2, 16, dtype=fw.bool)
        masks[0, 3] = True
        masks[1, :5] = True
        with fw.no_grad():
            vit.mask_token.normal_()
        tokens = vit.prepare_tokens_with_masks(x, masks).numpy()
        patches = vit.patch_embed(x).numpy()
        patches[masks.numpy()] = np_of(vit.mask_token)[0]
        pos = np_of(vit.pos_embed)
        cls = np.broadcast_to(np_of(vit.cls_token), (2, 1, 32))
        want = np.concatenate([cls + pos[:, :1], patches + pos[:, 1:]], 1)
        want = np.concatenate([want[:, :1], np.broadcast_to(np_of(vit.register_tokens), (2, 3, 32)),
                               want[:, 1:]], 1)
        np.testing.assert_allclose(tokens, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hw,offset,antialias", [((24, 20), 0.1, False), ((8, 8), 0.1, False),
                                                 ((28, 12), 0.0, False), ((8, 12), 0.0, True)])
def test_interpolate_pos_encoding_bicubic_against_numpy(hw, offset, antialias):
    fw.manual_seed(0)
    vit = tiny_vit(interpolate_offset=offset, interpolate_antialias=antialias)
    w, h = hw
    x = fw.zeros(1, 1 + (w // 4) * (h // 4), 32)
    got = vit.interpolate_pos_encoding(x, w, h).detach().numpy()
    pos = vit.pos_embed.detach().numpy().astype(np.float64)
    grid = pos[0, 1:].reshape(4, 4, 32).transpose(2, 0, 1)
    w0, h0 = w // 4, h // 4
    if antialias:  # PIL's BICUBIC filter (a = -0.5), widened by the downscaling factor
        from PIL import Image
        want = np.stack([np.array(Image.fromarray(c.astype(np.float32), mode="F").resize(
            (h0, w0), Image.BICUBIC)) for c in grid])
        tol = 1e-4
    else:
        scales = (4 / (w0 + offset), 4 / (h0 + offset)) if offset else (4 / w0, 4 / h0)
        want = np_bicubic(grid, (w0, h0), scales)
        tol = 1e-5
    want = np.concatenate([pos[0, :1], want.transpose(1, 2, 0).reshape(-1, 32)])[None]
    assert got.shape == (1, 1 + w0 * h0, 32)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_get_intermediate_layers_chunked_and_not():
    fw.manual_seed(0)
    vit = tiny_vit(depth=4, num_register_tokens=1, block_chunks=0).eval()
    chunked = tiny_vit(depth=4, num_register_tokens=1, block_chunks=2).eval()
    for (n, p), (nc, pc) in zip(vit.named_parameters(), chunked.named_parameters(), strict=True):
        with fw.no_grad():
            pc.copy_(p)
    assert "blocks.1.2.norm1.weight" in dict(chunked.named_parameters())
    x = fw.randn(2, 3, 16, 16)
    with fw.no_grad():
        h = vit.prepare_tokens_with_masks(x)
        states = []
        for blk in vit.blocks:
            h = blk(h)
            states.append(h)
        for model in (vit, chunked):
            last2 = model.get_intermediate_layers(x, n=2)
            assert len(last2) == 2
            for got, want in zip(last2, states[2:]):
                np.testing.assert_allclose(got.numpy(), vit.norm(want)[:, 2:].numpy(), rtol=1e-5,
                                           atol=1e-6)
            (feat, cls), = model.get_intermediate_layers(x, n=[1], reshape=True,
                                                         return_class_token=True, norm=False)
            assert feat.shape == (2, 32, 4, 4) and cls.shape == (2, 32)
            np.testing.assert_allclose(feat.numpy(), states[1][:, 2:].numpy().reshape(2, 4, 4, 32)
                                       .transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(cls.numpy(), states[1][:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_published_builders_on_the_meta_device():
    with fw.device("meta"):
        vit = vit_small(patch_size=14, img_size=518, init_values=1.0, block_chunks=0,
                        num_register_tokens=4)
    n = sum(p.numel() for p in vit.parameters())
    E, L = 384, 12
    block = 2 * E + 3 * E * E + 3 * E + E * E + E + E + 2 * E + 4 * E * E + 4 * E + 4 * E * E + E + E
    want = 3 * 14 * 14 * E + E + E + (37 * 37 + 1) * E + 4 * E + L * block + 2 * E + E
    assert n == want
    assert round(n / 1e6, 1) == 22.1  # ViT-S/14 with registers


# ---- layers ---------------------------------------------------------------------------------

def test_drop_add_residual_stochastic_depth_replays_randperm():
    fw.manual_seed(0)
    x = fw.randn(5, 3, 4)
    w = fw.randn(4, 4)

    def residual_func(t):
        return t @ w

    fw.manual_seed(7)
    got = drop_add_residual_stochastic_depth(x, residual_func, sample_drop_ratio=0.4)
    fw.manual_seed(7)
    brange = fw.randperm(5)[:3].numpy()  # max(int(5 * 0.6), 1) samples keep their residual
    want = x.numpy().copy()
    want[brange] += (x.numpy()[brange] @ w.numpy()) * (5 / 3)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_drop_path_layerscale_and_block_modes():
    fw.manual_seed(0)
    x = fw.randn(6, 3, 4)
    dp = DropPath(0.5)
    fw.manual_seed(3)
    got = dp(x).numpy()
    fw.manual_seed(3)
    keep = x.new_empty((6, 1, 1)).bernoulli_(0.5).numpy()
    np.testing.assert_allclose(got, x.numpy() * keep / 0.5, rtol=1e-6)
    assert 0 < keep.sum() < 6
    np.testing.assert_array_equal(dp.eval()(x).numpy(), x.numpy())
    ls = LayerScale(4, init_values=0.1, inplace=True)
    y = x.clone()
    assert ls(y) is y
    np.testing.assert_allclose(np_of(y), x.numpy() * 0.1, rtol=1e-6)
    # a Block with drop_path > 0.1 in eval mode is the plain residual block
    blk = NestedTensorBlock(4, 2, drop_path=0.3, init_values=1e-2, attn_class=MemEffAttention).eval()
    with fw.no_grad():
        want = x + blk.ls1(blk.attn(blk.norm1(x)))
        want = want + blk.ls2(blk.mlp(blk.norm2(want)))
        np.testing.assert_allclose(blk(x).numpy(), want.numpy(), rtol=1e-6)
    with pytest.raises(AssertionError, match="xFormers is required"):
        blk([x, x])
    with pytest.raises(AssertionError, match="xFormers is required"):
        blk.attn(x, attn_bias=object())


def test_attention_and_swiglu_against_numpy():
    fw.manual_seed(0)
    attn = MemEffAttention(8, num_heads=2, qkv_bias=True)
    x = fw.randn(2, 5, 8)
    p = {k: v.numpy().astype(np.float64) for k, v in attn.state_dict().items()}
    qkv = (x.numpy() @ p["qkv.weight"].T + p["qkv.bias"]).reshape(2, 5, 3, 2, 4).transpose(2, 0, 3, 1, 4)
    s = qkv[0] @ qkv[1].transpose(0, 1, 3, 2) / 2.0
    s = np.exp(s - s.max(-1, keepdims=True))
    o = (s / s.sum(-1, keepdims=True)) @ qkv[2]
    want = o.transpose(0, 2, 1, 3).reshape(2, 5, 8) @ p["proj.weight"].T + p["proj.bias"]
    with fw.no_grad():
        np.testing.assert_allclose(attn(x).numpy(), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(Attention.forward(attn, x).numpy(), want, rtol=1e-5, atol=1e-6)
    ffn = SwiGLUFFNFused(in_features=8, hidden_features=32)
    assert ffn.w12.out_features == 2 * 24 and ffn.w3.in_features == 24  # (int(32*2/3)+7)//8*8
    q = {k: v.numpy().astype(np.float64) for k, v in ffn.state_dict().items()}
    x12 = x.numpy() @ q["w12.weight"].T + q["w12.bias"]
    x1, x2 = x12[..., :24], x12[..., 24:]
    want = (x1 / (1 + np.exp(-x1)) * x2) @ q["w3.weight"].T + q["w3.bias"]
    with fw.no_grad():
        np.testing.assert_allclose(ffn(x).numpy(), want, rtol=1e-5, atol=1e-6)


def test_dino_head_weight_norm_against_numpy():
    fw.manual_seed(0)
    head = DINOHead(in_dim=8, out_dim=12, nlayers=3, hidden_dim=16, bottleneck_dim=6)
    assert head.last_layer.weight_g.shape == (12, 1)
    np.testing.assert_array_equal(head.last_layer.weight_g.detach().numpy(), 1.0)
    x = fw.randn(3, 8)
    p = {k: v.detach().numpy().astype(np.float64) for k, v in head.state_dict().items()}
    h = np_gelu(x.numpy() @ p["mlp.0.weight"].T + p["mlp.0.bias"])
    h = np_gelu(h @ p["mlp.2.weight"].T + p["mlp.2.bias"])
    h = h @ p["mlp.4.weight"].T + p["mlp.4.bias"]
    h = h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    v = p["last_layer.weight_v"]
    want = h @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    np.testing.assert_allclose(head(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_block_gradcheck_float64():
    """A training-mode Block with LayerScale and SwiGLU (no drop path) against finite
    differences, through the input and the LayerScale gammas."""
    fw.manual_seed(0)
    blk = NestedTensorBlock(8, 2, init_values=0.5, attn_class=MemEffAttention, qkv_bias=True,
                            ffn_layer=SwiGLUFFNFused).double()
    x = fw.randn(2, 3, 8, dtype=fw.float64, requires_grad=True)
    g1 = blk.ls1.gamma.detach().clone().requires_grad_()
    g2 = blk.ls2.gamma.detach().clone().requires_grad_()

    def f(x, g1, g2):
        return fw.func.functional_call(blk, {"ls1.gamma": g1, "ls2.gamma": g2}, (x,))

    assert fw.autograd.gradcheck(f, (x, g1, g2), eps=1e-6, atol=1e-6)


# ---- losses ---------------------------------------------------------------------------------

def np_sinkhorn(t, temp, n_iter=3):
    Q = np.exp(t / temp).T
    B, K = Q.shape[1], Q.shape[0]
    Q = Q / Q.sum()
    for _ in range(n_iter):
        Q = Q / Q.sum(1, keepdims=True) / K
        Q = Q / Q.sum(0, keepdims=True) / B
    return (Q * B).T


def test_dino_loss_centering_and_sinkhorn_against_numpy():
    fw.manual_seed(0)
    loss = DINOLoss(6, student_temp=0.1, center_momentum=0.9)
    t1, t2 = fw.randn(4, 6), fw.randn(4, 6)
    tt = 0.07
    sm = loss.softmax_center_teacher(t1, teacher_temp=tt)  # center still zero
    e = np.exp((t1.numpy() - t1.numpy().max(-1, keepdims=True)) / tt)
    np.testing.assert_allclose(sm.numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    loss.update_center(t1)
    assert loss.updated is False
    sm2 = loss.softmax_center_teacher(t2, teacher_temp=tt)  # applies the pending update
    center = 0.1 * t1.numpy().mean(0, keepdims=True)
    np.testing.assert_allclose(loss.center.numpy(), center, rtol=1e-5, atol=1e-7)
    z = (t2.numpy() - center) / tt
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(sm2.numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    # forward: the cross-entropy of every (student, teacher) pair
    s = [fw.randn(4, 6), fw.randn(4, 6)]
    got = loss(s, [sm, sm2]).item()
    want = sum(-(t.numpy() * np_log_softmax(si.numpy() / 0.1)).sum(-1).mean() for si in s
               for t in (sm, sm2))
    assert got == pytest.approx(want, rel=1e-5)
    q = loss.sinkhorn_knopp_teacher(t1 * 0.1, teacher_temp=tt)
    want_q = np_sinkhorn(t1.numpy().astype(np.float64) * 0.1, tt)
    np.testing.assert_allclose(q.numpy(), want_q, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(q.numpy().sum(1), 1.0, rtol=1e-5)  # each sample: an assignment


def test_ibot_patch_loss_against_numpy():
    fw.manual_seed(0)
    loss = iBOTPatchLoss(5)
    s, t = fw.randn(2, 6, 5), fw.randn(2, 6, 5).softmax(-1)
    masks = fw.tensor([[1, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]).bool()
    ce = (t.numpy() * np_log_softmax(s.numpy() / 0.1)).sum(-1)
    m = masks.numpy()
    want = -((ce * m).sum(-1) / np.maximum(m.sum(-1), 1)).mean()
    assert loss(s, t, masks).item() == pytest.approx(want, rel=1e-5)
    sm, tm = s[masks], t[masks]
    got = loss.forward_masked(sm, tm, student_masks_flat=masks).item()
    assert got == pytest.approx(-(ce[m] / 3).sum() / 2, rel=1e-5)
    loss.update_center(fw.randn(1, 3, 5))
    c = loss.softmax_center_teacher(fw.zeros(1, 3, 5), teacher_temp=0.07)
    assert c.shape == (1, 3, 5) and loss.updated
    # its sinkhorn_knopp all-reduces the patch count unconditionally: as in PyTorch, that
    # needs a process group
    with pytest.raises(fw.errors.DistributedError, match="init_process_group"):
        loss.sinkhorn_knopp_teacher(fw.randn(3, 5), 0.07, fw.tensor([3]))


def np_koleo(x, eps=1e-8):
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
    dots = x @ x.T
    np.fill_diagonal(dots, -1)
    nn_idx = dots.argmax(1)
    d = np.linalg.norm(x - x[nn_idx] + 1e-8, axis=-1)
    return -np.log(d + eps).mean(), nn_idx


def test_koleo_loss_against_numpy_and_gradcheck():
    fw.manual_seed(0)
    x = fw.randn(6, 4, dtype=fw.float64)
    koleo = KoLeoLoss()
    want, nn_idx = np_koleo(x.numpy())
    np.testing.assert_array_equal(koleo.pairwise_NNs_inner(F.normalize(x, dim=-1)).numpy(), nn_idx)
    assert koleo(x).item() == pytest.approx(want, rel=1e-10)
    # the diagonal is filled in place through a strided view of a tensor that needs grad
    assert fw.autograd.gradcheck(koleo, (x.clone().requires_grad_(),), eps=1e-6, atol=1e-6)


# ---- data: masking and collate --------------------------------------------------------------

def test_masking_generator_and_collate():
    random.seed(0)
    fw.manual_seed(0)
    gen = MaskingGenerator(input_size=(4, 4), max_num_patches=0.5 * 16)
    m = gen(6)
    assert m.shape == (4, 4) and m.dtype == bool and 0 < m.sum() <= 8
    assert gen(0).sum() == 0
    rng = np.random.default_rng(0)
    samples = [({"global_crops": [fw.tensor(rng.random((3, 16, 16), np.float32)) for _ in range(2)],
                 "local_crops": [fw.tensor(rng.random((3, 8, 8), np.float32)) for _ in range(3)]}, None)
               for _ in range(4)]
    out = collate_data_and_cast(samples, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5,
                                dtype=fw.float32, n_tokens=16, mask_generator=gen)
    assert out["collated_global_crops"].shape == (8, 3, 16, 16)
    assert out["collated_local_crops"].shape == (12, 3, 8, 8)
    np.testing.assert_array_equal(out["collated_global_crops"][1].numpy(),
                                  samples[1][0]["global_crops"][0].numpy())  # crop-major order
    masks = out["collated_masks"].numpy()
    assert masks.shape == (8, 16) and masks.dtype == bool
    assert (masks.sum(1) > 0).sum() <= 4  # int(8 * 0.5) masked samples
    np.testing.assert_array_equal(out["mask_indices_list"].numpy(), np.flatnonzero(masks))
    w = (1 / np.maximum(masks.sum(-1), 1))[:, None].repeat(16, 1)[masks]
    np.testing.assert_allclose(out["masks_weight"].numpy(), w, rtol=1e-6)
    assert out["n_masked_patches"].tolist() == [int(masks.sum())]
    assert out["upperbound"] >= masks.sum()


# ---- ONNX ------------------------------------------------------------------------------------

def test_onnx_export_of_the_backbone(tmp_path):
    fw.manual_seed(0)
    vit = tiny_vit(num_register_tokens=2, ffn_layer="swiglu").eval()
    x = fw.randn(2, 3, 16, 16)
    assert_onnx_export_matches(vit, x, tmp_path / "dinov2.onnx", rtol=1e-4, atol=1e-5,
                               sub_batch=1, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    # another image size: the bicubic position-embedding interpolation is in the graph
    x2 = fw.randn(1, 3, 24, 20)
    assert_onnx_export_matches(vit, x2, tmp_path / "dinov2_24x20.onnx", rtol=1e-4, atol=1e-5)

    class Features(fw.nn.Module):
        def __init__(self, vit):
            super().__init__()
            self.vit = vit

        def forward(self, x):
            return self.vit.get_intermediate_layers(x, n=2, reshape=True)

    assert_onnx_export_matches(Features(vit), x, tmp_path / "feats.onnx", rtol=1e-4, atol=1e-5)
    assert np_of(vit(x)).shape == (2, 32)
