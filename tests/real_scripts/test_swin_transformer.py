"""microsoft/Swin-Transformer run on ``fw``: ``models/swin_transformer.py`` (``_swin_model.py``),
``models/swin_transformer_v2.py`` (``_swin_v2_model.py``) and ``optimizer.py``
(``_swin_optimizer.py``).

The window machinery (partition / reverse, the relative position index, the shifted-window
mask, the cyclic roll) is checked against NumPy written index by index; a whole shifted block
against a NumPy forward; the attention layers against finite differences. Models are tiny:
16x16 images, patch 2, window 2 (shift 1) or 4 (shift 2), two stages of two blocks.
"""

import math
import types

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from . import _swin_model as S1
from . import _swin_optimizer as O
from . import _swin_v2_model as S2
from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, np_of

pytestmark = pytest.mark.filterwarnings("ignore:framework.utils.checkpoint")


def _model(v2=False, **kw):
    cfg = dict(img_size=16, patch_size=2, num_classes=4, embed_dim=8, depths=[2, 2],
               num_heads=[2, 4], window_size=2, drop_path_rate=0.1)
    return (S2.SwinTransformerV2 if v2 else S1.SwinTransformer)(**{**cfg, **kw})


def _textures(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.5, (n, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 4, n)
    for i, k in enumerate(y):
        if k == 0:
            x[i, :, ::4] += 1.5
        elif k == 1:
            x[i, :, :, ::4] += 1.5
        elif k == 2:
            x[i, :, ::4, ::4] += 3.0
    return fw.tensor(x), fw.tensor(y)


def _randomize_norms(model):
    """v2 zero-initialises its blocks' post-norms (``_init_respostnorm``), which would hide
    the attention from a comparison; the head (std .02) would hide everything."""
    with fw.no_grad():
        for m in model.modules():
            if isinstance(m, fw.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        model.head.weight.normal_(0, 1.0)


# ---- the window machinery against NumPy ---------------------------------------------------------

def _np_partition(x, ws):
    B, H, W, C = x.shape
    out = []
    for b in range(B):
        for i in range(H // ws):
            for j in range(W // ws):
                out.append(x[b, i * ws:(i + 1) * ws, j * ws:(j + 1) * ws])
    return np.stack(out)


def _np_reverse(windows, ws, H, W):
    nh, nw = H // ws, W // ws
    B = windows.shape[0] // (nh * nw)
    x = np.empty((B, H, W, windows.shape[-1]), windows.dtype)
    for k, win in enumerate(windows):
        b, r = divmod(k, nh * nw)
        i, j = divmod(r, nw)
        x[b, i * ws:(i + 1) * ws, j * ws:(j + 1) * ws] = win
    return x


@pytest.mark.parametrize("S", [S1, S2])
def test_window_partition_and_reverse_against_numpy(S):
    x = fw.randn(2, 8, 4, 3)
    win = S.window_partition(x, 2)
    np.testing.assert_array_equal(win.numpy(), _np_partition(x.numpy(), 2))
    back = S.window_reverse(win, 2, 8, 4)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    np.testing.assert_array_equal(_np_reverse(win.numpy(), 2, 8, 4), x.numpy())


def _np_relative_position_index(wh, ww):
    n = wh * ww
    idx = np.empty((n, n), np.int64)
    for i in range(n):
        for j in range(n):
            (hi, wi), (hj, wj) = divmod(i, ww), divmod(j, ww)
            idx[i, j] = (hi - hj + wh - 1) * (2 * ww - 1) + (wi - wj + ww - 1)
    return idx


@pytest.mark.parametrize("ws", [(2, 2), (3, 2), (4, 4)])
def test_relative_position_index_against_numpy(ws):
    att = S1.WindowAttention(dim=4, window_size=ws, num_heads=2)
    idx = att.relative_position_index
    assert idx.dtype == fw.int64 and "relative_position_index" in att.state_dict()
    np.testing.assert_array_equal(idx.numpy(), _np_relative_position_index(*ws))
    assert att.relative_position_bias_table.shape == ((2 * ws[0] - 1) * (2 * ws[1] - 1), 2)
    att2 = S2.WindowAttention(dim=4, window_size=ws, num_heads=2)
    np.testing.assert_array_equal(att2.relative_position_index.numpy(),
                                  _np_relative_position_index(*ws))


def _np_attn_mask(H, W, ws, shift):
    """Label each pixel of the rolled map by the (row, column) region it came from; tokens
    of a window attend only within their label."""
    def region(c, n):
        return 0 if c < n - ws else (1 if c < n - shift else 2)
    labels = np.array([[region(h, H) * 3 + region(w, W) for w in range(W)] for h in range(H)])
    win = _np_partition(labels[None, :, :, None], ws).reshape(-1, ws * ws)
    return np.where(win[:, None, :] == win[:, :, None], 0.0, -100.0)


@pytest.mark.parametrize("S", [S1, S2])
@pytest.mark.parametrize("res,ws,shift", [((4, 4), 2, 1), ((8, 8), 4, 2), ((8, 4), 2, 1)])
def test_shifted_window_attention_mask_against_numpy(S, res, ws, shift):
    blk = S.SwinTransformerBlock(dim=4, input_resolution=res, num_heads=2, window_size=ws,
                                 shift_size=shift)
    np.testing.assert_array_equal(blk.attn_mask.numpy(), _np_attn_mask(*res, ws, shift))
    assert S.SwinTransformerBlock(dim=4, input_resolution=res, num_heads=2, window_size=ws,
                                  shift_size=0).attn_mask is None
    small = S.SwinTransformerBlock(dim=4, input_resolution=(2, 2), num_heads=2, window_size=4,
                                   shift_size=2)  # the window covers the map: no shift
    assert small.shift_size == 0 and small.window_size == 2 and small.attn_mask is None


def _np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _np_softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _np_swin_block(p, x, H, W, ws, shift, heads):
    """SwinTransformerBlock.forward in float64 NumPy, window by window."""
    B, L, C = x.shape
    hd = C // heads
    xn = _np_ln(x, p["norm1.weight"], p["norm1.bias"]).reshape(B, H, W, C)
    rolled = np.roll(xn, (-shift, -shift), axis=(1, 2))
    wins = _np_partition(rolled, ws).reshape(-1, ws * ws, C)
    n_win = (H // ws) * (W // ws)
    table = p["attn.relative_position_bias_table"]
    bias = table[_np_relative_position_index(ws, ws)].transpose(2, 0, 1)  # heads, N, N
    mask = _np_attn_mask(H, W, ws, shift) if shift else np.zeros((n_win, ws * ws, ws * ws))
    out = np.empty_like(wins)
    for k, w in enumerate(wins):
        qkv = (w @ p["attn.qkv.weight"].T + p["attn.qkv.bias"]).reshape(-1, 3, heads, hd)
        heads_out = []
        for h in range(heads):
            q, kk, v = qkv[:, 0, h] * hd ** -0.5, qkv[:, 1, h], qkv[:, 2, h]
            a = _np_softmax(q @ kk.T + bias[h] + mask[k % n_win])
            heads_out.append(a @ v)
        out[k] = np.concatenate(heads_out, -1) @ p["attn.proj.weight"].T + p["attn.proj.bias"]
    merged = _np_reverse(out.reshape(-1, ws, ws, C), ws, H, W)
    x = x + np.roll(merged, (shift, shift), axis=(1, 2)).reshape(B, L, C)
    hdn = _np_gelu(_np_ln(x, p["norm2.weight"], p["norm2.bias"]) @ p["mlp.fc1.weight"].T
                   + p["mlp.fc1.bias"])
    return x + hdn @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]


@pytest.mark.parametrize("res,ws,shift", [((4, 4), 2, 1), ((8, 8), 4, 2), ((4, 8), 2, 0)])
def test_swin_block_forward_against_numpy(res, ws, shift):
    fw.manual_seed(0)
    blk = S1.SwinTransformerBlock(dim=6, input_resolution=res, num_heads=2, window_size=ws,
                                  shift_size=shift, mlp_ratio=2.0).eval()
    with fw.no_grad():
        blk.attn.relative_position_bias_table.normal_(0, 1.0)
    x = fw.randn(2, res[0] * res[1], 6)
    with fw.no_grad():
        got = blk(x).numpy()
    p = {k: np_of(v).astype(np.float64) for k, v in blk.state_dict().items()}
    want = _np_swin_block(p, x.numpy().astype(np.float64), *res, ws, shift, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_patch_merging_against_numpy():
    fw.manual_seed(0)
    pm = S1.PatchMerging((4, 6), dim=3)
    x = fw.randn(2, 24, 3)
    got = pm(x).detach().numpy()
    g = x.numpy().reshape(2, 4, 6, 3)
    cat = np.concatenate([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2],
                          g[:, 1::2, 1::2]], -1).reshape(2, 6, 12)
    p = {k: np_of(v) for k, v in pm.state_dict().items()}
    np.testing.assert_allclose(got, _np_ln(cat, p["norm.weight"], p["norm.bias"])
                               @ p["reduction.weight"].T, rtol=1e-5, atol=1e-6)


# ---- v2: log-spaced coordinates, continuous position bias, cosine attention -------------------

@pytest.mark.parametrize("pretrained", [0, 3])
def test_v2_relative_coords_table_against_numpy(pretrained):
    att = S2.WindowAttention(dim=4, window_size=(2, 4), num_heads=2,
                             pretrained_window_size=[pretrained, pretrained])
    h, w = np.meshgrid(np.arange(-1, 2), np.arange(-3, 4), indexing="ij")
    t = np.stack([h / ((pretrained or 2) - 1), w / ((pretrained or 4) - 1)], -1) * 8
    want = np.sign(t) * np.log2(np.abs(t) + 1.0) / np.log2(8)
    np.testing.assert_allclose(att.relative_coords_table.numpy(), want[None], rtol=1e-6,
                               atol=1e-7)


def _np_v2_attention(p, x, mask, heads, ws):
    B_, N, C = x.shape
    hd = C // heads
    bias = np.concatenate([p["q_bias"], np.zeros_like(p["v_bias"]), p["v_bias"]])
    qkv = (x @ p["qkv.weight"].T + bias).reshape(B_, N, 3, heads, hd).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
    scale = np.exp(np.minimum(p["logit_scale"], np.log(100.0)))
    attn = q @ k.swapaxes(-1, -2) * scale
    hidden = np.maximum(p["relative_coords_table"] @ p["cpb_mlp.0.weight"].T
                        + p["cpb_mlp.0.bias"], 0)
    table = (hidden @ p["cpb_mlp.2.weight"].T).reshape(-1, heads)
    bias_pos = 16 / (1 + np.exp(-table[p["relative_position_index"].reshape(-1).astype(int)]
                                .reshape(N, N, heads).transpose(2, 0, 1)))
    attn = attn + bias_pos[None]
    if mask is not None:
        nW = mask.shape[0]
        attn = (attn.reshape(B_ // nW, nW, heads, N, N) + mask[None, :, None]).reshape(
            B_, heads, N, N)
    out = (_np_softmax(attn) @ v).transpose(0, 2, 1, 3).reshape(B_, N, C)
    return out @ p["proj.weight"].T + p["proj.bias"]


def test_v2_cosine_attention_with_mask_against_numpy_and_the_logit_clamp():
    fw.manual_seed(0)
    att = S2.WindowAttention(dim=6, window_size=(2, 2), num_heads=2).eval()
    with fw.no_grad():
        att.q_bias.normal_()
        att.v_bias.normal_()
        att.logit_scale.copy_(fw.tensor([math.log(200.0), math.log(3.0)]).view(2, 1, 1))
    mask = fw.tensor(_np_attn_mask(4, 4, 2, 1), dtype=fw.float32)
    x = fw.randn(8, 4, 6)
    out = att(x, mask=mask)
    p = {k: np_of(v).astype(np.float64) for k, v in att.state_dict().items()}
    want = _np_v2_attention(p, x.numpy().astype(np.float64), mask.numpy(), 2, 2)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-4, atol=1e-5)
    out.sum().backward()  # above log(100) the clamp passes no gradient
    g = att.logit_scale.grad.numpy().ravel()
    assert g[0] == 0.0 and g[1] != 0.0


# ---- gradients against finite differences -----------------------------------------------------

def _gradcheck(module, names, *inputs, **kwargs):
    params = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    leaves = tuple(params[n].detach().clone().requires_grad_() for n in names)

    def f(*args):
        ws, xs = args[:len(names)], args[len(names):]
        return fw.func.functional_call(module, dict(zip(names, ws)), xs, kwargs)

    return fw.autograd.gradcheck(f, leaves + inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_shifted_swin_block_float64():
    fw.manual_seed(0)
    blk = S1.SwinTransformerBlock(dim=4, input_resolution=(4, 4), num_heads=2, window_size=2,
                                  shift_size=1, mlp_ratio=1.0).double()
    with fw.no_grad():
        blk.attn.relative_position_bias_table.normal_()
    x = fw.randn(1, 16, 4, dtype=fw.float64, requires_grad=True)
    assert _gradcheck(blk, ["attn.relative_position_bias_table", "attn.qkv.weight",
                            "norm1.weight"], x)


def test_gradcheck_v2_window_attention_with_mask_float64():
    fw.manual_seed(0)
    att = S2.WindowAttention(dim=4, window_size=(2, 2), num_heads=2).double()
    with fw.no_grad():
        att.q_bias.normal_()
        att.v_bias.normal_()
    mask = fw.tensor(_np_attn_mask(4, 4, 2, 1), dtype=fw.float64)
    x = fw.randn(4, 4, 4, dtype=fw.float64, requires_grad=True)
    # the log-spaced coordinates (a buffer) stand in for the 512-wide cpb_mlp's weights: their
    # gradient runs back through the MLP, the 16 * sigmoid and the index gather
    assert _gradcheck(att, ["logit_scale", "q_bias", "v_bias", "relative_coords_table"], x,
                      mask=mask)


# ---- stochastic depth, checkpointing, weight-decay groups ---------------------------------------

@pytest.mark.parametrize("v2", [False, True])
def test_drop_path_train_vs_eval(v2):
    fw.manual_seed(0)
    with_dp = _model(v2, drop_path_rate=0.5)
    fw.manual_seed(0)
    without = _model(v2, drop_path_rate=0.0)
    _randomize_norms(with_dp)
    without.load_state_dict(with_dp.state_dict())
    x, _ = _textures(4, 0)
    with fw.no_grad():
        with_dp.eval(), without.eval()
        np.testing.assert_array_equal(with_dp(x).numpy(), without(x).numpy())
        with_dp.train(), without.train()
        fw.manual_seed(1)
        a = with_dp(x).numpy()
        assert not np.allclose(a, without(x).numpy())
        fw.manual_seed(1)
        np.testing.assert_array_equal(with_dp(x).numpy(), a)  # the same seeded draws


@pytest.mark.parametrize("v2", [False, True])
def test_use_checkpoint_gives_the_same_gradients(v2):
    x, y = _textures(2, 0)
    grads = []
    for ckpt in (False, True):
        fw.manual_seed(0)
        m = _model(v2, use_checkpoint=ckpt, drop_path_rate=0.0)
        _randomize_norms(m)
        F.cross_entropy(m(x), y).backward()
        grads.append([np_of(p.grad) for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def _config(opt="adamw", simmim=False, model_type="swin", depths=(2, 2)):
    ns = types.SimpleNamespace
    return ns(TRAIN=ns(OPTIMIZER=ns(NAME=opt, EPS=1e-8, BETAS=(0.9, 0.999), MOMENTUM=0.9),
                       BASE_LR=1e-3, WEIGHT_DECAY=0.05, LAYER_DECAY=0.9),
              MODEL=ns(TYPE=model_type, SWIN=ns(DEPTHS=list(depths)),
                       SWINV2=ns(DEPTHS=list(depths))))


@pytest.mark.parametrize("v2", [False, True])
def test_no_weight_decay_sets_and_parameter_groups(v2):
    fw.manual_seed(0)
    m = _model(v2, ape=True)
    assert m.no_weight_decay() == {"absolute_pos_embed"}
    opt = O.build_optimizer(_config(), m)
    assert isinstance(opt, fw.optim.AdamW)
    names = {id(p): n for n, p in m.named_parameters()}
    decay, no_decay = ([names[id(p)] for p in g["params"]] for g in opt.param_groups)
    assert opt.param_groups[0]["weight_decay"] == 0.05
    assert opt.param_groups[1]["weight_decay"] == 0.0
    keywords = m.no_weight_decay_keywords()
    assert "absolute_pos_embed" in no_decay
    for n in no_decay:
        p = dict(m.named_parameters())[n]
        assert p.ndim == 1 or n.endswith(".bias") or n == "absolute_pos_embed" or any(
            k in n for k in keywords), n
    assert all(not any(k in n for k in keywords) for n in decay)
    assert any("relative_position_bias_table" in n or "cpb_mlp" in n for n in no_decay)
    if v2:
        assert any(n.endswith("logit_scale") for n in no_decay)
    assert sorted(decay + no_decay) == sorted(names.values())


def test_layer_wise_finetune_groups():
    fw.manual_seed(0)
    m = _model()
    opt = O.build_optimizer(_config(simmim=True), m, simmim=True, is_pretrain=False)
    scales = [0.9 ** i for i in reversed(range(6))]
    for g in opt.param_groups:
        layer = int(g["group_name"].split("_")[1])
        assert g["lr_scale"] == scales[layer] and g["lr"] == pytest.approx(1e-3 * scales[layer])
    layer_of = {n: int(g["group_name"].split("_")[1]) for g in opt.param_groups
                for n in [k for k, p in m.named_parameters() if any(p is q for q in g["params"])]}
    assert layer_of["patch_embed.proj.weight"] == 0
    assert layer_of["layers.0.blocks.1.attn.qkv.weight"] == 2
    assert layer_of["layers.0.downsample.reduction.weight"] == 2
    assert layer_of["layers.1.blocks.0.mlp.fc1.weight"] == 3 and layer_of["head.weight"] == 5
    with pytest.raises(TypeError):  # apex is not installed: FusedAdam is None
        O.build_optimizer(_config(opt="fused_adam"), m)


# ---- training, compile, export -------------------------------------------------------------------

@pytest.mark.parametrize("v2", [False, True])
def test_training_lowers_the_loss(v2):
    fw.manual_seed(0)
    m = _model(v2)
    opt = O.build_optimizer(_config(), m)
    for g in opt.param_groups:
        g["lr"] = 1e-2
    xv, yv = _textures(24, seed=50)

    def eval_loss():
        m.eval()
        with fw.no_grad():
            return F.cross_entropy(m(xv), yv).item()

    before = eval_loss()
    for step in range(15):
        m.train()
        x, y = _textures(12, seed=step)
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def _train(v2, ckpt, compiled, steps=3):
    fw.manual_seed(0)
    m = _model(v2, use_checkpoint=ckpt, drop_path_rate=0.2)
    opt = O.build_optimizer(_config(), m)

    def step(x, y):
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        fw.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    batches = [_textures(2, seed=s) for s in range(steps)]
    fw.manual_seed(4)  # the drop-path draws
    m.train()
    losses = [fn(x, y).item() for x, y in batches]
    return losses, {k: np_of(v).copy() for k, v in m.state_dict().items()}, fn


@pytest.mark.parametrize("v2,ckpt", [(False, False), (False, True), (True, False)])
def test_compiled_training_step_matches_eager(v2, ckpt):
    """Shifted windows (roll), the mask and index buffers, stochastic depth and, with
    use_checkpoint, torch.utils.checkpoint, all inside one compiled step."""
    assert_compiled_matches_eager(lambda c: _train(v2, ckpt, c), captures=1,
                                  num_recompiles=0, eager_reason=None, graph_breaks=[])


@pytest.mark.parametrize("v2", [False, True])
def test_onnx_export_eval_matches_onnxruntime(v2, tmp_path):
    fw.manual_seed(0)
    m = _model(v2).eval()
    _randomize_norms(m)
    x, _ = _textures(2, seed=3)
    assert_onnx_export_matches(m, (x,), tmp_path / "swin.onnx", input_names=["x"])


def test_onnx_export_with_a_dynamic_batch_names_the_int_of_a_size():
    """window_reverse computes ``B = int(windows.shape[0] / (H * W / ws / ws))``: float
    arithmetic on a size, which cannot stay symbolic (PyTorch's tracer bakes it in too)."""
    m = _model().eval()
    with pytest.raises(fw.errors.GraphBreak, match="dynamic dim into a Python int"):
        fw.onnx.export(m, (fw.randn(2, 3, 16, 16),), None, input_names=["x"],
                       dynamic_axes={"x": {0: "batch"}})
