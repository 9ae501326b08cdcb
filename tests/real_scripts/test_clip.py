# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""openai/CLIP (clip/model.py whole; clip/clip.py's load and tokenize) ported to ``fw``.

The port is in _clip_model.py. CLIP ships no training script: the training tests use the
paper's symmetric cross-entropy over the image-text logits (Radford et al. 2021, Fig. 3)
with AdamW and the logit-scale clamp at 100. Reference values: the towers in NumPy float64
(nn.MultiheadAttention with the additive causal mask, QuickGELU, the ViT, the modified
ResNet with its attention pool), and finite differences on float64 pieces.
"""

import math
from functools import partial

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework import nn

from . import _clip_model as C
from ._checks import (assert_onnx_export_matches, assert_states_close, assert_stats, grad_leaves,
                      np_layer_norm, np_linear, np_params)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``

# CLIP(embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
#      context_length, vocab_size, transformer_width, transformer_heads, transformer_layers);
# build_model infers heads as width // 64, so the widths are 64
VIT = (16, 16, 1, 64, 8, 8, 30, 64, 1, 1)
RN = (16, 32, (1, 1, 1, 1), 8, None, 8, 30, 64, 1, 1)
CAPTIONS = ["cat", "a dog", "car", "tree"]


def make_clip(config, seed=0):
    fw.manual_seed(seed)
    return C.CLIP(*config)


def _pairs(resolution, n_steps, seed=0):
    """Batches of the four (image, caption) pairs: each caption's image is a fixed random
    pattern, plus fresh noise per step."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((4, 3, resolution, resolution)).astype(np.float32)
    text = C.tokenize(CAPTIONS, context_length=8)
    return [(fw.from_numpy(patterns + 0.3 * rng.standard_normal(patterns.shape).astype(np.float32)), text)
            for _ in range(n_steps)]


# ---- NumPy float64 references ----------------------------------------------------------------------

def _np_mha(p, pre, x, n_head, mask=None):
    """nn.MultiheadAttention(x, x, x) on (L, N, E) with packed in_proj and an additive mask."""
    L, N, E = x.shape
    qkv = x @ p[pre + ".in_proj_weight"].T + p[pre + ".in_proj_bias"]
    q, k, v = (qkv[..., i * E:(i + 1) * E].reshape(L, N * n_head, E // n_head).transpose(1, 0, 2) for i in range(3))
    s = q @ k.transpose(0, 2, 1) / np.sqrt(E // n_head)
    if mask is not None:
        s = s + mask
    w = np.exp(s - s.max(-1, keepdims=True))
    o = (w / w.sum(-1, keepdims=True)) @ v  # (N*H, L, d)
    o = o.transpose(1, 0, 2).reshape(L, N, E)
    return np_linear(p, o, pre + ".out_proj")


def _np_transformer(p, pre, x, n_layers, n_head, mask=None):
    ln, lin = partial(np_layer_norm, p), partial(np_linear, p)
    for i in range(n_layers):
        b = f"{pre}.resblocks.{i}"
        x = x + _np_mha(p, b + ".attn", ln(x, b + ".ln_1"), n_head, mask)
        h = lin(ln(x, b + ".ln_2"), b + ".mlp.c_fc")
        x = x + lin(h / (1 + np.exp(-1.702 * h)), b + ".mlp.c_proj")
    return x


def _np_encode_text(model, text):
    p = np_params(model.state_dict())
    t = text.numpy()
    x = p["token_embedding.weight"][t] + p["positional_embedding"]
    L = x.shape[1]
    mask = np.triu(np.full((L, L), -np.inf), 1)
    x = _np_transformer(p, "transformer", x.transpose(1, 0, 2), model.transformer.layers,
                        model.transformer.resblocks[0].attn.num_heads, mask).transpose(1, 0, 2)
    x = np_layer_norm(p, x, "ln_final")
    return x[np.arange(len(t)), t.argmax(-1)] @ p["text_projection"]


def _np_encode_image_vit(model, image):
    p = np_params(model.state_dict())
    v = model.visual
    ps = v.conv1.kernel_size[0]
    img = image.numpy().astype(np.float64)
    N, _, H, W = img.shape
    patches = img.reshape(N, 3, H // ps, ps, W // ps, ps).transpose(0, 2, 4, 1, 3, 5).reshape(N, -1, 3 * ps * ps)
    x = patches @ p["visual.conv1.weight"].reshape(v.conv1.out_channels, -1).T
    cls = np.broadcast_to(p["visual.class_embedding"], (N, 1, x.shape[-1]))
    x = np.concatenate([cls, x], 1) + p["visual.positional_embedding"]
    x = np_layer_norm(p, x, "visual.ln_pre").transpose(1, 0, 2)
    x = _np_transformer(p, "visual.transformer", x, v.transformer.layers,
                        v.transformer.resblocks[0].attn.num_heads).transpose(1, 0, 2)
    return np_layer_norm(p, x[:, 0], "visual.ln_post") @ p["visual.proj"]


def _np_conv(p, x, pre, stride=1, padding=0):
    w = p[pre + ".weight"]
    k = w.shape[-1]
    x = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    Ho, Wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    cols = np.stack([x[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride]
                     for i in range(k) for j in range(k)], -1)  # N, C, Ho, Wo, k*k
    return np.einsum("nchwk,ock->nohw", cols, w.reshape(w.shape[0], w.shape[1], -1))


def _np_bn(p, x, pre, eps=1e-5):
    s = (1, -1, 1, 1)
    return ((x - p[pre + ".running_mean"].reshape(s)) / np.sqrt(p[pre + ".running_var"].reshape(s) + eps)
            * p[pre + ".weight"].reshape(s) + p[pre + ".bias"].reshape(s))


def _np_avgpool(x, k):
    N, Cc, H, W = x.shape
    return x[:, :, :H // k * k, :W // k * k].reshape(N, Cc, H // k, k, W // k, k).mean((3, 5))


def _np_attnpool(p, pre, x, n_head):
    N, E = x.shape[:2]
    x = x.reshape(N, E, -1).transpose(2, 0, 1)
    x = np.concatenate([x.mean(0, keepdims=True), x], 0) + p[pre + ".positional_embedding"][:, None]
    q = np_linear(p, x[:1], pre + ".q_proj")
    k, v = np_linear(p, x, pre + ".k_proj"), np_linear(p, x, pre + ".v_proj")
    d = E // n_head
    heads = lambda t: t.reshape(t.shape[0], N * n_head, d).transpose(1, 0, 2)  # noqa: E731
    s = heads(q) @ heads(k).transpose(0, 2, 1) / np.sqrt(d)
    w = np.exp(s - s.max(-1, keepdims=True))
    o = ((w / w.sum(-1, keepdims=True)) @ heads(v)).transpose(1, 0, 2).reshape(1, N, E)
    return np_linear(p, o, pre + ".c_proj")[0]


def _np_encode_image_rn(model, image):
    p = np_params(model.state_dict())
    v = model.visual
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    x = image.numpy().astype(np.float64)
    x = relu(_np_bn(p, _np_conv(p, x, "visual.conv1", 2, 1), "visual.bn1"))
    x = relu(_np_bn(p, _np_conv(p, x, "visual.conv2", 1, 1), "visual.bn2"))
    x = _np_avgpool(relu(_np_bn(p, _np_conv(p, x, "visual.conv3", 1, 1), "visual.bn3")), 2)
    for li in range(1, 5):
        for bi, blk in enumerate(getattr(v, f"layer{li}")):
            b = f"visual.layer{li}.{bi}"
            out = relu(_np_bn(p, _np_conv(p, x, b + ".conv1"), b + ".bn1"))
            out = relu(_np_bn(p, _np_conv(p, out, b + ".conv2", 1, 1), b + ".bn2"))
            if blk.stride > 1:
                out = _np_avgpool(out, blk.stride)
            out = _np_bn(p, _np_conv(p, out, b + ".conv3"), b + ".bn3")
            if blk.downsample is not None:
                idn = _np_avgpool(x, blk.stride) if blk.stride > 1 else x
                x = _np_bn(p, _np_conv(p, idn, b + ".downsample.0"), b + ".downsample.1")
            x = relu(out + x)
    return _np_attnpool(p, "visual.attnpool", x, v.attnpool.num_heads)


def _randomize(model, std=0.3):
    """Larger weights than the init (bn3 starts at zero) and non-trivial BN statistics."""
    with fw.no_grad():
        for n, t in model.state_dict().items():
            if t.dtype.is_floating_point and "positional" not in n:
                t.add_(fw.randn(t.shape) * std)
            if n.endswith("running_var"):
                t.abs_().add_(0.5)


# ---- tokenize, towers and the CLIP head against NumPy ------------------------------------------------

def test_tokenize():
    text = C.tokenize(CAPTIONS, context_length=8)
    assert text.dtype == fw.int32 and text.shape == (4, 8)
    sot, eot = C._tokenizer.encoder["<|startoftext|>"], C._tokenizer.encoder["<|endoftext|>"]
    assert text[:, 0].tolist() == [sot] * 4
    assert text.argmax(dim=-1).tolist() == [len(c) + 1 for c in CAPTIONS]  # eot is the max id
    assert text[3, len(CAPTIONS[3]) + 1].item() == eot and text[3, -1].item() == 0
    with pytest.raises(RuntimeError, match="too long for context length 8"):
        C.tokenize("a long caption", context_length=8)
    cut = C.tokenize("a long caption", context_length=8, truncate=True)
    assert cut[0, -1].item() == eot and cut.shape == (1, 8)


def test_encode_text_matches_numpy_and_pools_the_eot_token():
    model = make_clip(VIT)
    _randomize(model)
    model.eval()
    text = C.tokenize(CAPTIONS, context_length=8)
    with fw.no_grad():
        got = model.encode_text(text)
    np.testing.assert_allclose(got.numpy(), _np_encode_text(model, text), rtol=1e-4, atol=1e-4)
    # causal mask + argmax pooling: tokens after eot do not change the features
    padded = text.clone()
    padded[:, -1] = 5
    with fw.no_grad():
        np.testing.assert_allclose(model.encode_text(padded).numpy(), got.numpy(), rtol=1e-5, atol=1e-6)
    mask = model.transformer.resblocks[0].attn_mask
    assert mask.dtype == fw.float32 and np.isneginf(mask.numpy()[0, 1]) and mask.numpy()[1, 0] == 0


@pytest.mark.parametrize("config, ref, res", [(VIT, _np_encode_image_vit, 16), (RN, _np_encode_image_rn, 32)],
                         ids=["vit", "resnet"])
def test_encode_image_matches_numpy(config, ref, res):
    model = make_clip(config)
    _randomize(model, std=0.2)
    model.eval()
    image = fw.randn(2, 3, res, res)
    with fw.no_grad():
        got = model.encode_image(image)
    assert got.shape == (2, 16)
    np.testing.assert_allclose(got.numpy(), ref(model, image), rtol=1e-4, atol=1e-4)


def test_forward_logits_are_scaled_cosine_similarities():
    model = make_clip(VIT)
    model.eval()
    image, text = fw.randn(3, 3, 16, 16), C.tokenize(CAPTIONS[:2], context_length=8)
    with fw.no_grad():
        per_image, per_text = model(image, text)
        i, t = model.encode_image(image).numpy(), model.encode_text(text).numpy()
    i, t = i / np.linalg.norm(i, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07), rel=1e-6)
    np.testing.assert_allclose(per_image.numpy(), (1 / 0.07) * i @ t.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(per_text.numpy(), per_image.numpy().T)
    assert model.dtype == fw.float32


# ---- contrastive training (symmetric cross-entropy) ---------------------------------------------------

def _train(config, res, compiled=False, steps=4):
    model = make_clip(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    loss_img, loss_txt = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()

    def train_step(images, texts):
        optimizer.zero_grad()
        logits_per_image, logits_per_text = model(images, texts)
        ground_truth = torch.arange(len(images), dtype=torch.long, device=images.device)
        total_loss = (loss_img(logits_per_image, ground_truth) + loss_txt(logits_per_text, ground_truth)) / 2
        total_loss.backward()
        optimizer.step()
        with torch.no_grad():  # the paper clips the temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        return total_loss

    step = fw.compile(train_step, mode="always") if compiled else train_step
    losses = [step(images, texts).item() for images, texts in _pairs(res, steps)]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, step


@pytest.mark.parametrize("config, res", [(VIT, 16), (RN, 32)], ids=["vit", "resnet"])
def test_contrastive_training_lowers_loss(config, res):
    losses, state, _ = _train(config, res, steps=8)
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses
    assert state["logit_scale"] <= math.log(100) + 1e-6


K_BIAS = slice(64, 128)  # the key part of the text transformer's packed in_proj_bias
IN_BIAS = "transformer.resblocks.0.attn.in_proj_bias"


@pytest.mark.parametrize("config, res", [(VIT, 16), (RN, 32)], ids=["vit", "resnet"])
def test_compiled_training_step_matches_eager(config, res):
    """The key bias moves all scores of a query row by one constant, which softmax ignores:
    its gradient is rounding noise (test below), and AdamW's normalization turns noise into
    lr-sized steps, so it is compared on its own with a tolerance of a few such steps."""
    l_eager, s_eager, _ = _train(config, res)
    l_comp, s_comp, step = _train(config, res, compiled=True)
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None)
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-4, atol=1e-5)
    b_eager, b_comp = s_eager.pop(IN_BIAS), s_comp.pop(IN_BIAS)
    np.testing.assert_allclose(b_comp[K_BIAS], b_eager[K_BIAS], atol=1e-4)
    b_comp[K_BIAS] = b_eager[K_BIAS] = 0
    np.testing.assert_allclose(b_comp, b_eager, rtol=1e-4, atol=1e-5)
    assert_states_close(s_comp, s_eager)


def test_key_bias_gradient_is_rounding_noise():
    model = make_clip(VIT)
    images, texts = _pairs(16, 1)[0]
    per_image, per_text = model(images, texts)
    labels = torch.arange(4)
    ((F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels)) / 2).backward()
    g = model.get_parameter(IN_BIAS).grad.numpy()
    assert np.abs(g[K_BIAS]).max() < 1e-6 * np.abs(g[:K_BIAS.start]).max()


# ---- convert_weights, build_model, load ---------------------------------------------------------------

@pytest.mark.parametrize("config, res", [(VIT, 16), (RN, 32)], ids=["vit", "resnet"])
def test_build_model_round_trip(config, res):
    model = make_clip(config)
    _randomize(model, std=0.05)
    model.eval()
    image, text = fw.rand(2, 3, res, res), C.tokenize(CAPTIONS[:3], context_length=8)
    with fw.no_grad():
        want = model(image, text)[0].numpy()
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}
    # JIT checkpoints also hold these three; build_model drops them before loading
    state_dict.update(input_resolution=fw.tensor(res), context_length=fw.tensor(8), vocab_size=fw.tensor(30))
    built = C.build_model(state_dict)
    assert "vocab_size" not in state_dict and not built.training
    assert (built.context_length, built.vocab_size, built.visual.input_resolution) == (8, 30, res)
    assert built.transformer.layers == 1 and built.transformer.width == 64
    assert isinstance(built.visual, C.VisionTransformer if config is VIT else C.ModifiedResNet)
    # convert_weights: conv/linear/attention weights, text_projection and proj become fp16;
    # LayerNorm, BatchNorm, embeddings and logit_scale stay float32
    dt = {n: p.dtype for n, p in built.named_parameters()}
    assert built.dtype == fw.float16 and dt["text_projection"] == fw.float16
    assert dt["transformer.resblocks.0.attn.in_proj_weight"] == fw.float16
    assert dt["transformer.resblocks.0.attn.out_proj.weight"] == fw.float16  # a Linear
    assert dt["ln_final.weight"] == dt["logit_scale"] == dt["token_embedding.weight"] == fw.float32
    for n, p in built.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), state_dict[n].numpy().astype(p.dtype.np), err_msg=n)
    with fw.no_grad():
        half = built(image, text)[0]  # fp16 towers (BatchNorm keeps fp32 weights: mixed type)
    assert half.dtype == fw.float16
    np.testing.assert_allclose(half.float().numpy(), want, rtol=0.05, atol=0.05)
    built.float()  # what clip.load does on the CPU
    with fw.no_grad():
        np.testing.assert_allclose(built(image, text)[0].numpy(), want, rtol=1e-2, atol=1e-2)


def test_load_state_dict_checkpoint_on_cpu(tmp_path):
    model = make_clip(VIT)
    model.eval()
    path = str(tmp_path / "clip_vit.pt")
    torch.save(model.state_dict(), path)
    loaded, preprocess = C.load(path, device="cpu")
    assert loaded.dtype == fw.float32 and not loaded.training  # model.float() on the CPU
    image = fw.rand(3, 24, 20)  # (C, H, W) in [0, 1]
    x = preprocess(image)
    assert x.shape == (3, 16, 16)
    resized = F.interpolate(image[None], size=(19, 16), mode="bicubic", align_corners=False, antialias=True)[0]
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    np.testing.assert_allclose(x.numpy(), (resized.numpy()[:, 1:17] - mean[:, None, None]) / std[:, None, None], rtol=1e-5, atol=1e-5)
    text = C.tokenize(CAPTIONS, context_length=8)
    with fw.no_grad():
        probs = loaded(x[None], text)[0].softmax(dim=-1)
        want = model(x[None], text)[0].softmax(dim=-1)
    np.testing.assert_allclose(probs.numpy(), want.numpy(), rtol=1e-2, atol=1e-3)  # fp16 round trip


# ---- ONNX export ---------------------------------------------------------------------------------------

class _EncodeImage(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.encode_image(image)


class _EncodeText(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, text):
        return self.model.encode_text(text)


@pytest.mark.parametrize("config, res", [(VIT, 16), (RN, 32)], ids=["vit", "resnet"])
def test_onnx_export_encoders(config, res, tmp_path):
    model = make_clip(config)
    _randomize(model, std=0.05)
    model.eval()
    assert_onnx_export_matches(_EncodeImage(model), fw.randn(3, 3, res, res), tmp_path / "image.onnx",
                               sub_batch=2, input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    assert_onnx_export_matches(_EncodeText(model), C.tokenize(CAPTIONS, context_length=8), tmp_path / "text.onnx",
                               sub_batch=2, input_names=["text"], dynamic_axes={"text": {0: "batch"}})


# ---- gradcheck on float64 pieces (CLIP's LayerNorm computes in float32) --------------------------------

def test_gradcheck_float64_attention_pool_and_masked_block():
    fw.manual_seed(0)
    pool = C.AttentionPool2d(2, 8, 2, 4).double()
    x = fw.randn(2, 8, 2, 2, dtype=fw.float64)
    leaves = grad_leaves(x, pool.q_proj.weight, pool.k_proj.bias, pool.positional_embedding)

    def f(x, wq, bk, pos):
        return fw.func.functional_call(pool, {"q_proj.weight": wq, "k_proj.bias": bk, "positional_embedding": pos}, (x,))

    assert fw.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-6)
    mask = torch.empty(3, 3).fill_(float("-inf")).triu_(1)
    block = C.ResidualAttentionBlock(4, 2, attn_mask=mask).double()
    h = fw.randn(3, 2, 4, dtype=fw.float64)
    leaves = grad_leaves(h, block.attn.in_proj_weight, block.mlp.c_fc.weight)

    def g(h, w_in, w_fc):
        out = fw.func.functional_call(block.attn, {"in_proj_weight": w_in}, (h, h, h), {"need_weights": False, "attn_mask": block.attn_mask.to(h.dtype)})[0]
        return out, fw.func.functional_call(block.mlp, {"c_fc.weight": w_fc}, (h,))

    assert fw.autograd.gradcheck(g, leaves, eps=1e-6, atol=1e-6)
    bottleneck = C.Bottleneck(4, 2, stride=2).double().train()
    z = fw.randn(2, 4, 4, 4, dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(lambda z: bottleneck(z), (z,), eps=1e-6, atol=1e-6)
