"""The unusual layers of torchvision's models (``_tv_*.py``) against NumPy formulas (float64)
and finite differences: Swin's shifted-window attention (V1 scaled dot product and V2 cosine
attention, with padding, cyclic shift and the region mask), its relative-position index and
V2's log-spaced coordinate table, patch merging, MaxViT's relative attention and window /
grid partitions, StochasticDepth, ConvNeXt's LayerNorm2d, MobileNetV3's hard-sigmoid SE,
torchvision's ConvNormActivation padding rule, RegNet's width schedule and memory-efficient
DenseNet's checkpointed bottlenecks."""

import math

import numpy as np
import pytest

import framework as fw

from . import _tv_convnext_vit as V
from . import _tv_densenet_squeezenet as D
from . import _tv_maxvit as X
from . import _tv_ops as O
from . import _tv_regnet as R
from . import _tv_swin as S
from ._checks import grad_leaves, np_of


def _np_softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_window_attention(x, qkv_w, qkv_b, proj_w, proj_b, bias, ws, heads, shift, logit_scale=None):
    """Swin's W-MSA / SW-MSA written out: pad, roll, windows, attention + relative bias and
    the -100 mask between regions of different origin, then everything back."""
    B, H, W, C = x.shape
    pb, pr = (ws[0] - H % ws[0]) % ws[0], (ws[1] - W % ws[1]) % ws[1]
    x = np.pad(x, ((0, 0), (0, pb), (0, pr), (0, 0)))
    Hp, Wp = x.shape[1:3]
    shift = [0 if ws[0] >= Hp else shift[0], 0 if ws[1] >= Wp else shift[1]]
    x = np.roll(x, (-shift[0], -shift[1]), axis=(1, 2))
    nh, nw, N = Hp // ws[0], Wp // ws[1], ws[0] * ws[1]
    win = x.reshape(B, nh, ws[0], nw, ws[1], C).transpose(0, 1, 3, 2, 4, 5).reshape(-1, N, C)
    if logit_scale is not None:
        qkv_b = qkv_b.copy()
        qkv_b[C:2 * C] = 0.0  # V2: no key bias
    qkv = (win @ qkv_w.T + qkv_b).reshape(-1, N, 3, heads, C // heads).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv
    if logit_scale is None:
        attn = (q * (C // heads) ** -0.5) @ k.swapaxes(-1, -2)
    else:
        qn = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
        kn = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
        attn = qn @ kn.swapaxes(-1, -2) * np.exp(np.minimum(logit_scale, math.log(100.0)))
    attn = attn + bias
    if sum(shift) > 0:
        region = np.zeros((Hp, Wp))
        cuts = [(slice(0, -w), slice(-w, -s), slice(-s, None)) for w, s in zip(ws, shift)]
        for n, (hs, wsl) in enumerate((a, b) for a in cuts[0] for b in cuts[1]):
            region[hs, wsl] = n
        region = region.reshape(nh, ws[0], nw, ws[1]).transpose(0, 2, 1, 3).reshape(-1, N)
        mask = np.where(region[:, None, :] != region[:, :, None], -100.0, 0.0)
        attn = (attn.reshape(B, nh * nw, heads, N, N) + mask[None, :, None]).reshape(attn.shape)
    out = (_np_softmax(attn) @ v).transpose(0, 2, 1, 3).reshape(-1, N, C) @ proj_w.T + proj_b
    out = out.reshape(B, nh, nw, ws[0], ws[1], C).transpose(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
    out = np.roll(out, (shift[0], shift[1]), axis=(1, 2))
    return out[:, :H, :W]


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("hw,shift", [((6, 6), [2, 2]), ((5, 7), [2, 2]), ((4, 4), [2, 2]),
                                      ((8, 8), [0, 0])])
def test_shifted_window_attention_matches_numpy(v2, hw, shift):
    fw.manual_seed(0)
    cls = S.ShiftedWindowAttentionV2 if v2 else S.ShiftedWindowAttention
    attn = cls(8, [4, 4], shift, num_heads=2).double().eval()
    with fw.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    x = fw.randn(2, *hw, 8, dtype=fw.float64)
    bias = np_of(attn.get_relative_position_bias())
    p = {k: np_of(v) for k, v in attn.named_parameters()}
    want = _np_window_attention(x.numpy(), p["qkv.weight"], p["qkv.bias"], p["proj.weight"],
                                p["proj.bias"], bias, [4, 4], 2, shift,
                                p["logit_scale"] if v2 else None)
    np.testing.assert_allclose(np_of(attn(x)), want, rtol=1e-10, atol=1e-12)


def test_relative_position_tables_match_numpy():
    attn = S.ShiftedWindowAttentionV2(8, [3, 4], [0, 0], num_heads=2)
    ys, xs = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    coords = np.stack([ys.ravel(), xs.ravel()])
    d = coords[:, :, None] - coords[:, None, :]
    want = (d[0] + 2) * (2 * 4 - 1) + (d[1] + 3)
    np.testing.assert_array_equal(attn.relative_position_index.numpy(), want.ravel())
    # V2: t = 8 * offset / (window - 1), then sign(t) log2(|t| + 1) / 3
    t = np.stack(np.meshgrid(np.arange(-2, 3) / 2, np.arange(-3, 4) / 3, indexing="ij"), -1) * 8
    np.testing.assert_allclose(attn.relative_coords_table.numpy()[0],
                               np.sign(t) * np.log2(np.abs(t) + 1) / 3, rtol=1e-6, atol=1e-7)
    # MaxViT builds the same index for square windows
    np.testing.assert_array_equal(X._get_relative_position_index(3, 3).numpy().ravel(),
                                  S.ShiftedWindowAttention(4, [3, 3], [0, 0], 1)
                                  .relative_position_index.numpy())


def test_patch_merging_pads_odd_sizes_and_interleaves_like_numpy():
    x = fw.randn(2, 5, 3, 4, dtype=fw.float64)
    xp = np.pad(x.numpy(), ((0, 0), (0, 1), (0, 1), (0, 0)))
    want = np.concatenate([xp[:, 0::2, 0::2], xp[:, 1::2, 0::2], xp[:, 0::2, 1::2],
                           xp[:, 1::2, 1::2]], -1)
    np.testing.assert_array_equal(S._patch_merging_pad(x).numpy(), want)


def test_maxvit_relative_attention_matches_numpy():
    fw.manual_seed(0)
    attn = X.RelativePositionalMultiHeadAttention(8, 4, 9).double()  # 2 heads, 3x3 partitions
    with fw.no_grad():
        attn.relative_position_bias_table.normal_()
    x = fw.randn(2, 3, 9, 8, dtype=fw.float64)
    p = {k: np_of(v) for k, v in attn.named_parameters()}
    qkv = x.numpy() @ p["to_qkv.weight"].T + p["to_qkv.bias"]
    q, k, v = (a.reshape(2, 3, 9, 2, 4).transpose(0, 1, 3, 2, 4) for a in np.split(qkv, 3, -1))
    idx = attn.relative_position_index.numpy().ravel()
    bias = p["relative_position_bias_table"][idx].reshape(9, 9, 2).transpose(2, 0, 1)
    # the key scale is feat_dim ** -0.5 (8 features), not head_dim ** -0.5, as published
    att = _np_softmax(q @ (k * 8 ** -0.5).swapaxes(-1, -2) + bias)
    out = (att @ v).transpose(0, 1, 3, 2, 4).reshape(2, 3, 9, 8)
    want = out @ p["merge.weight"].T + p["merge.bias"]
    np.testing.assert_allclose(np_of(attn(x)), want, rtol=1e-10, atol=1e-12)


def test_maxvit_window_and_grid_partitions_match_numpy():
    x = fw.randn(2, 3, 8, 8, dtype=fw.float64)
    part = X.WindowPartition()(x, 4)  # [B, windows, P*P, C]
    want = x.numpy().reshape(2, 3, 2, 4, 2, 4).transpose(0, 2, 4, 3, 5, 1).reshape(2, 4, 16, 3)
    np.testing.assert_array_equal(part.numpy(), want)
    np.testing.assert_array_equal(X.WindowDepartition()(part, 4, 2, 2).numpy(), x.numpy())
    # "grid" partitions take every 2nd pixel: partition by p = 2, then swap the two axes
    grid = X.SwapAxes(-2, -3)(X.WindowPartition()(x, 2))
    np.testing.assert_array_equal(grid.numpy()[:, 0], x.numpy()[:, :, ::2, ::2]
                                  .transpose(0, 2, 3, 1).reshape(2, 16, 3))


def test_stochastic_depth_rows_batch_and_eval():
    fw.manual_seed(0)
    x = fw.randn(400, 3, 2)
    y = O.stochastic_depth(x, 0.25, "row").numpy() / x.numpy()
    per_row = y.reshape(400, -1)
    assert np.allclose(per_row, per_row[:, :1])  # one draw per row
    kept = np.isclose(per_row[:, 0], 1 / 0.75)
    assert np.all(kept | np.isclose(per_row[:, 0], 0.0)) and 0.65 < kept.mean() < 0.85
    ratios = {round(float(v), 6) for v in (O.stochastic_depth(x, 0.5, "batch").numpy()
                                           / x.numpy()).ravel()}
    assert ratios in ({0.0}, {2.0})  # all or nothing
    assert O.stochastic_depth(x, 1.0, "row").abs().sum().item() == 0.0  # no 0 / 0
    layer = O.StochasticDepth(0.5, "row").eval()
    assert layer(x) is x and O.stochastic_depth(x, 0.0, "row") is x
    with pytest.raises(ValueError, match="drop probability has to be between 0 and 1"):
        O.stochastic_depth(x, 1.5, "row")
    with pytest.raises(ValueError, match="mode has to be either 'batch' or 'row'"):
        O.stochastic_depth(x, 0.5, "col")
    assert repr(layer) == "StochasticDepth(p=0.5, mode=row)"


def test_layer_norm_2d_and_hardsigmoid_squeeze_excitation_match_numpy():
    fw.manual_seed(0)
    ln = V.LayerNorm2d(4, eps=1e-6).double()
    with fw.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = fw.randn(2, 4, 3, 5, dtype=fw.float64)
    xn = x.numpy()
    mu, var = xn.mean(1, keepdims=True), xn.var(1, keepdims=True)
    want = (xn - mu) / np.sqrt(var + 1e-6) * ln.weight.detach().numpy()[:, None, None] \
        + ln.bias.detach().numpy()[:, None, None]
    np.testing.assert_allclose(np_of(ln(x)), want, rtol=1e-10, atol=1e-12)
    se = O.SqueezeExcitation(4, 2, scale_activation=fw.nn.Hardsigmoid).double()
    p = {k: np_of(v) for k, v in se.named_parameters()}
    pooled = xn.mean((2, 3))
    h = np.maximum(pooled @ p["fc1.weight"][:, :, 0, 0].T + p["fc1.bias"], 0)
    s = h @ p["fc2.weight"][:, :, 0, 0].T + p["fc2.bias"]
    hsig = np.clip(s / 6 + 0.5, 0, 1)
    np.testing.assert_allclose(np_of(se(x)), xn * hsig[:, :, None, None], rtol=1e-10)


def test_conv_norm_activation_padding_rule_and_direct_use_warning():
    block = O.Conv2dNormActivation(3, 4, kernel_size=(3, 5), dilation=(1, 2))
    assert block[0].padding == (1, 4) and block[0].bias is None  # bias only without norm
    assert len(block) == 3 and block[2].inplace
    plain = O.Conv2dNormActivation(3, 4, 1, norm_layer=None, activation_layer=None)
    assert len(plain) == 1 and plain[0].bias is not None and plain.out_channels == 4
    with pytest.warns(UserWarning, match="Don't use ConvNormActivation directly"):
        O.ConvNormActivation(3, 4)
    mlp = O.MLP(8, [16, 4], norm_layer=fw.nn.LayerNorm, dropout=0.1)
    assert [type(m).__name__ for m in mlp] == ["Linear", "LayerNorm", "ReLU", "Dropout",
                                               "Linear", "Dropout"]


def test_regnet_width_schedule_is_the_published_one():
    # RegNetY-400MF (Radosavovic et al. 2020): stage widths 48, 104, 208, 440, depths 1, 3, 6, 6
    bp = R.BlockParams.from_init_params(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8,
                                        se_ratio=0.25)
    assert bp.widths == [48, 104, 208, 440] and bp.depths == [1, 3, 6, 6]
    assert bp.group_widths == [8] * 4 and bp.strides == [2] * 4
    with pytest.raises(ValueError, match="Invalid RegNet settings"):
        R.BlockParams.from_init_params(depth=16, w_0=44, w_a=27.89, w_m=2.09, group_width=8)


def test_memory_efficient_densenet_recomputes_the_same_gradients():
    # memory_efficient=True runs each bottleneck under torch.utils.checkpoint (non-reentrant)
    def grads(memory_efficient):
        fw.manual_seed(0)
        model = D.DenseNet(growth_rate=4, block_config=(2, 2), num_init_features=8, bn_size=2,
                           num_classes=5, memory_efficient=memory_efficient)
        fw.manual_seed(1)
        fw.nn.functional.cross_entropy(model(fw.randn(2, 3, 32, 32)), fw.tensor([1, 2])).backward()
        return {n: np_of(p.grad) for n, p in model.named_parameters()}

    plain, recomputed = grads(False), grads(True)
    for name, g in plain.items():
        np.testing.assert_array_equal(recomputed[name], g, err_msg=name)


# ---- gradients against finite differences (float64) ----------------------------------------

def test_gradcheck_shifted_window_attention_with_relative_bias_float64():
    fw.manual_seed(0)
    attn = S.ShiftedWindowAttention(4, [2, 2], [1, 1], num_heads=2).double()
    x, table, w = grad_leaves(fw.randn(1, 3, 3, 4, dtype=fw.float64),
                              attn.relative_position_bias_table, attn.qkv.weight)

    def f(x, table, w):
        bias = S._get_relative_position_bias(table, attn.relative_position_index, [2, 2])
        return S.shifted_window_attention(x, w, attn.proj.weight.detach(), bias, [2, 2], 2,
                                          [1, 1], qkv_bias=attn.qkv.bias.detach(),
                                          proj_bias=attn.proj.bias.detach(), training=False)

    assert fw.autograd.gradcheck(f, (x, table, w), eps=1e-6, atol=1e-6)


def test_gradcheck_v2_cosine_attention_and_maxvit_grid_layer_float64():
    fw.manual_seed(0)
    attn = S.ShiftedWindowAttentionV2(4, [2, 2], [1, 1], num_heads=2).double()
    x, scale = grad_leaves(fw.randn(1, 3, 3, 4, dtype=fw.float64), attn.logit_scale)

    def f(x, scale):
        bias = attn.get_relative_position_bias()
        return S.shifted_window_attention(x, attn.qkv.weight, attn.proj.weight, bias, [2, 2], 2,
                                          [1, 1], qkv_bias=attn.qkv.bias, proj_bias=attn.proj.bias,
                                          logit_scale=scale, training=False)

    assert fw.autograd.gradcheck(f, (x, scale), eps=1e-6, atol=1e-6)
    layer = X.PartitionAttentionLayer(4, 2, 2, "grid", (4, 4), 2, fw.nn.GELU, fw.nn.LayerNorm,
                                      0.0, 0.0, 0.0).double().eval()
    (x,) = grad_leaves(fw.randn(1, 4, 4, 4, dtype=fw.float64))
    assert fw.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-6)
