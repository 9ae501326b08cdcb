"""lucidrains/vit-pytorch (ViT, SimpleViT, CaiT, DeepViT, MAE) run on ``fw``.

The ported models are in ``_vit_models.py`` (ViT, SimpleViT, MAE) and ``_vit_cait_deepvit.py``
(CaiT, DeepViT); einops' patterns, written out as fw calls, in ``_einops_fw.py``. Each
model trains on tiny synthetic 8x8 images (a bright patch whose quadrant is the label), the
training step runs under ``fw.compile`` against eager, the unusual attention layers are checked
against NumPy formulas and finite differences, and the classifiers export to ONNX.
"""

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from . import _einops_fw as E
from . import _vit_cait_deepvit as CD
from . import _vit_models as V
from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, np_of

SMALL = dict(image_size=8, patch_size=4, num_classes=3, dim=16, heads=2, mlp_dim=32, dim_head=8)

MODELS = {
    "vit": lambda: V.ViT(depth=1, **SMALL),
    "vit_mean": lambda: V.ViT(depth=1, pool="mean", **SMALL),
    "simple_vit": lambda: V.SimpleViT(depth=1, **SMALL),
    "cait": lambda: CD.CaiT(depth=1, cls_depth=1, **SMALL),
    "deepvit": lambda: CD.DeepViT(depth=1, **SMALL),
}


def _mae(pool="mean"):
    enc = V.ViT(depth=1, pool=pool, **{**SMALL, "num_classes": 0})
    return V.MAE(encoder=enc, decoder_dim=8, decoder_heads=2, decoder_dim_head=4)


def _images(n, seed):
    """Noise plus, in one random 4x4 quadrant, horizontal stripes (label 0), vertical stripes
    (label 1) or nothing (label 2). Stripes, not a flat offset: the patch embedding's first
    LayerNorm removes a patch's mean."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 3, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, k in enumerate(y):
        r, c = 4 * rng.integers(0, 2), 4 * rng.integers(0, 2)
        if k == 0:
            x[i, :, r:r + 4:2, c:c + 4] += 1.5
        elif k == 1:
            x[i, :, r:r + 4, c:c + 4:2] += 1.5
    return fw.tensor(x), fw.tensor(y)


# ---- the einops patterns and the fixed embeddings against NumPy --------------------------------

def test_einops_patterns_against_numpy():
    x = np.arange(2 * 3 * 8 * 4, dtype=np.float32).reshape(2, 3, 8, 4)
    got = E.rearrange(fw.tensor(x), 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=4, p2=2).numpy()
    want = np.empty((2, 2 * 2, 4 * 2 * 3), np.float32)  # index by index, as the pattern reads
    for b in range(2):
        for h in range(2):
            for w in range(2):
                for p1 in range(4):
                    for p2 in range(2):
                        for c in range(3):
                            want[b, h * 2 + w, (p1 * 2 + p2) * 3 + c] = x[b, c, h * 4 + p1, w * 2 + p2]
    np.testing.assert_array_equal(got, want)
    t = fw.randn(2, 5, 12)
    heads = E.rearrange(t, 'b n (h d) -> b h n d', h=3)
    np.testing.assert_array_equal(heads.numpy()[:, 1], t.numpy()[:, :, 4:8])
    np.testing.assert_array_equal(E.rearrange(heads, 'b h n d -> b n (h d)').numpy(), t.numpy())
    r = E.repeat(fw.randn(1, 4), '... d -> b ... d', b=3)
    assert r.shape == (3, 1, 4)
    assert E.repeat(fw.randn(0, 4), '... d -> b ... d', b=3).shape == (3, 0, 4)
    with pytest.raises(NotImplementedError, match="not written out"):
        E.rearrange(t, 'b n d -> b d n')


def test_posemb_sincos_2d_against_numpy():
    pe = V.posemb_sincos_2d(h=3, w=4, dim=8)
    assert pe.dtype == fw.float32 and pe.shape == (12, 8)
    omega = 1.0 / (10000 ** (np.arange(2) / 1))
    y, x = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    y, x = y.ravel()[:, None] * omega, x.ravel()[:, None] * omega
    want = np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], 1)
    np.testing.assert_allclose(pe.numpy(), want, rtol=1e-6, atol=1e-6)
    assert V.posemb_sincos_2d(2, 2, 8, dtype=fw.float64).dtype == fw.float64


def _np_softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _np_heads(t, h):
    b, n, hd = t.shape
    return t.reshape(b, n, h, hd // h).transpose(0, 2, 1, 3)


def test_cait_class_attention_with_talking_heads_against_numpy():
    """Queries from the (normed) class token, keys/values from [cls, patches]; the heads are
    mixed by ``mix_heads_pre_attn`` before and ``mix_heads_post_attn`` after the softmax."""
    fw.manual_seed(0)
    att = CD.CaitAttention(dim=8, heads=2, dim_head=4).eval()
    x, ctx = fw.randn(2, 1, 8), fw.randn(2, 5, 8)
    with fw.no_grad():
        got = att(x, context=ctx).numpy()
    p = {k: np_of(v).astype(np.float64) for k, v in att.state_dict().items()}
    xn = _np_ln(x.numpy(), p["norm.weight"], p["norm.bias"])
    kv_in = np.concatenate([xn, ctx.numpy()], 1)
    q = _np_heads(xn @ p["to_q.weight"].T, 2)
    kv = kv_in @ p["to_kv.weight"].T
    k, v = _np_heads(kv[..., :8], 2), _np_heads(kv[..., 8:], 2)
    dots = np.einsum("bhid,bhjd->bhij", q, k) * 4 ** -0.5
    dots = np.einsum("bhij,hg->bgij", dots, p["mix_heads_pre_attn"])
    attn = np.einsum("bhij,hg->bgij", _np_softmax(dots), p["mix_heads_post_attn"])
    out = np.einsum("bhij,bhjd->bhid", attn, v).transpose(0, 2, 1, 3).reshape(2, 1, 8)
    want = out @ p["to_out.0.weight"].T + p["to_out.0.bias"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_deepvit_reattention_against_numpy():
    fw.manual_seed(1)
    att = CD.DeepAttention(dim=8, heads=3, dim_head=4).eval()
    x = fw.randn(2, 5, 8)
    with fw.no_grad():
        got = att(x).numpy()
    p = {k: np_of(v).astype(np.float64) for k, v in att.state_dict().items()}
    xn = _np_ln(x.numpy(), p["norm.weight"], p["norm.bias"])
    qkv = xn @ p["to_qkv.weight"].T
    q, k, v = (_np_heads(qkv[..., 12 * i:12 * (i + 1)], 3) for i in range(3))
    attn = _np_softmax(np.einsum("bhid,bhjd->bhij", q, k) * 0.5)
    attn = np.einsum("bhij,hg->bgij", attn, p["reattn_weights"])
    attn = _np_ln(attn.transpose(0, 2, 3, 1), p["reattn_norm.1.weight"],
                  p["reattn_norm.1.bias"]).transpose(0, 3, 1, 2)  # LayerNorm over the heads
    out = np.einsum("bhij,bhjd->bhid", attn, v).transpose(0, 2, 1, 3).reshape(2, 5, 12)
    want = out @ p["to_out.0.weight"].T + p["to_out.0.bias"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- training, compile, gradcheck, export ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_lowers_the_loss(name):
    fw.manual_seed(0)
    model = MODELS[name]()
    opt = fw.optim.Adam(model.parameters(), lr=1e-2)
    xv, yv = _images(32, seed=100)

    def eval_loss():
        model.eval()
        with fw.no_grad():
            return F.cross_entropy(model(xv), yv).item()

    before = eval_loss()
    for step in range(15):
        model.train()
        x, y = _images(16, seed=step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def _train(name, compiled, steps=3):
    fw.manual_seed(0)
    model = _mae() if name == "mae" else MODELS[name]()
    opt = fw.optim.AdamW(model.parameters(), lr=1e-2)

    def step(x, y):
        out = model(x)
        loss = out if name == "mae" else F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    batches = [_images(4, seed=s) for s in range(steps)]
    fw.manual_seed(5)  # MAE's masks are drawn inside the step
    model.train()
    losses = [fn(x, y).item() for x, y in batches]
    return losses, {k: np_of(v).copy() for k, v in model.state_dict().items()}, fn


@pytest.mark.parametrize("name", sorted(MODELS) + ["mae"])
def test_compiled_training_step_matches_eager(name):
    """One capture, no recompiles; MAE draws a new random mask (rand + argsort) each step and
    scatters tokens with advanced-index assignment inside the compiled graph."""
    assert_compiled_matches_eager(lambda c: _train(name, c), captures=1, num_recompiles=0,
                                  eager_reason=None, graph_breaks=[])


def _gradcheck_module(module, names, *inputs):
    params = dict(module.named_parameters())
    leaves = tuple(params[n].detach().clone().requires_grad_() for n in names)

    def f(*args):
        ws, xs = args[:len(names)], args[len(names):]
        return fw.func.functional_call(module, dict(zip(names, ws)), xs)

    return fw.autograd.gradcheck(f, leaves + inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_cait_class_attention_float64():
    fw.manual_seed(0)
    att = CD.LayerScale(6, CD.CaitAttention(dim=6, heads=2, dim_head=3), depth=1).double()
    x = fw.randn(2, 1, 6, dtype=fw.float64, requires_grad=True)
    ctx = fw.randn(2, 3, 6, dtype=fw.float64, requires_grad=True)

    class WithContext(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.ls = att

        def forward(self, x, ctx):
            return self.ls(x, context=ctx)

    m = WithContext()
    assert _gradcheck_module(m, ["ls.scale", "ls.fn.mix_heads_pre_attn",
                                 "ls.fn.mix_heads_post_attn", "ls.fn.to_kv.weight"], x, ctx)


def test_gradcheck_deepvit_reattention_float64():
    fw.manual_seed(0)
    att = CD.DeepAttention(dim=6, heads=2, dim_head=3).double()
    x = fw.randn(2, 4, 6, dtype=fw.float64, requires_grad=True)
    assert _gradcheck_module(att, ["reattn_weights", "reattn_norm.1.weight", "to_qkv.weight"], x)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_export_eval_matches_onnxruntime(name, tmp_path):
    fw.manual_seed(0)
    model = MODELS[name]().eval()
    x, _ = _images(3, seed=9)
    assert_onnx_export_matches(model, (x,), tmp_path / f"{name}.onnx", input_names=["img"],
                               dynamic_axes={"img": {0: "batch"}}, sub_batch=2)


# ---- MAE: random masking by argsort and advanced indexing --------------------------------------

def test_mae_masking_replayed_with_numpy_indexing():
    """Replay the seeded ``rand(...).argsort`` and do every gather / scatter of MAE.forward with
    NumPy indexing; the submodules run as they are."""
    fw.manual_seed(0)
    mae = _mae().eval()
    img, _ = _images(3, seed=4)
    fw.manual_seed(11)
    with fw.no_grad():
        got = mae(img).item()
    fw.manual_seed(11)
    perm = fw.rand(3, 4).argsort(dim=-1).numpy()
    assert np.array_equal(np.sort(perm, 1), np.tile(np.arange(4), (3, 1)))
    masked, unmasked = perm[:, :3], perm[:, 3:]
    rows = np.arange(3)[:, None]
    with fw.no_grad():
        patches = mae.to_patch(img).numpy()
        tokens = mae.patch_to_emb(fw.tensor(patches)) + mae.encoder.pos_embedding
        enc = mae.encoder.transformer(fw.tensor(tokens.numpy()[rows, unmasked]))
        dec_in = np.zeros((3, 4, 8), np.float32)
        dec_in[rows, unmasked] = (mae.enc_to_dec(enc) + mae.decoder_pos_emb.weight[
            fw.tensor(unmasked)]).numpy()
        dec_in[rows, masked] = (mae.mask_token + mae.decoder_pos_emb.weight[
            fw.tensor(masked)]).numpy()
        dec = mae.decoder(fw.tensor(dec_in)).numpy()
        pred = mae.to_pixels(fw.tensor(dec[rows, masked])).numpy()
    want = ((pred - patches[rows, masked]) ** 2).mean()
    assert got == pytest.approx(float(want), rel=1e-5)


def test_mae_trains_its_encoder():
    fw.manual_seed(0)
    mae = _mae()
    opt = fw.optim.Adam(mae.parameters(), lr=3e-3)
    x, _ = _images(8, seed=1)

    def fixed_loss():
        fw.manual_seed(3)  # the same masks before and after
        with fw.no_grad():
            return mae(x).item()

    before = fixed_loss()
    for _ in range(15):
        loss = mae(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert fixed_loss() < 0.7 * before
    assert mae.encoder.pos_embedding.grad is not None  # the encoder is what MAE trains


def test_mae_with_a_cls_pool_encoder_fails_as_in_pytorch():
    """Upstream mae.py slices ``pos_embedding[:, 1:(n + 1)]``, written for the old 3-d
    ``pos_embedding``; vit.py's is now 2-d (n + 1, dim), so with pool='cls' the add cannot
    broadcast and PyTorch raises. fw raises its ShapeError naming the op and both shapes."""
    fw.manual_seed(0)
    mae = _mae(pool="cls")
    with pytest.raises(fw.ShapeError, match=r"add: shapes \[2, 4, 16\] and \[5, 4\]"):
        mae(_images(2, seed=0)[0])


# ---- CaiT's layer dropout, ViT's empty cls token, checkpoints -----------------------------------

def test_cait_layer_dropout_replays_its_draws():
    """``torch.zeros(n).uniform_() < p`` picks the layers to skip; a compiled step breaks the
    graph at ``all(to_drop)`` and runs the same layers as eager."""
    fw.manual_seed(0)
    t = CD.CaitTransformer(dim=8, depth=4, heads=2, dim_head=4, mlp_dim=8, layer_dropout=0.5)
    fw.manual_seed(3)
    kept = CD.dropout_layers(t.layers, dropout=0.5)
    fw.manual_seed(3)
    drop = fw.zeros(4).uniform_(0., 1.).numpy() < 0.5
    assert 0 < len(kept) < 4 and [id(m) for m in kept] == [
        id(m) for m, d in zip(t.layers, drop) if not d]
    x = fw.randn(2, 3, 8)
    fw.manual_seed(4)
    eager = [t(x).detach().numpy() for _ in range(3)]
    fn = fw.compile(lambda x: t(x))
    fw.manual_seed(4)
    with pytest.warns(UserWarning):
        comp = [fn(x).detach().numpy() for _ in range(3)]
    for a, b in zip(comp, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(eager[0], eager[1]) or not np.allclose(eager[1], eager[2])


def test_vit_mean_pool_has_an_empty_cls_token_and_round_trips(tmp_path):
    fw.manual_seed(0)
    model = MODELS["vit_mean"]().eval()
    assert model.cls_token.shape == (0, 16) and model.pos_embedding.shape == (4, 16)
    x, _ = _images(2, seed=0)
    with fw.no_grad():
        want = model(x).numpy()
    fw.save(model.state_dict(), str(tmp_path / "vit.pt"))
    fw.manual_seed(1)
    other = MODELS["vit_mean"]().eval()
    other.load_state_dict(fw.load(str(tmp_path / "vit.pt")))
    with fw.no_grad():
        np.testing.assert_array_equal(other(x).numpy(), want)
    headless = V.ViT(depth=1, **{**SMALL, "num_classes": 0})
    assert headless.mlp_head is None and headless(x).shape == (2, 5, 16)
