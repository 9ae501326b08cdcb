"""MultiheadAttention, the Transformer layers and the demo GPT reach
``scaled_dot_product_attention`` (and with it the fused kernel on "cuda"): PyTorch's
``need_weights=False`` routing and ``is_causal`` hints, ``_detect_is_causal_mask``, the
cached causal bias of sdpa's math path and its folding under ``fw.compile``. Values are
checked against the explicit ``need_weights=True`` math (unchanged) in float64."""

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import ArgumentError
from framework.nn import functional_attention as FA
from framework.nn.modules.transformer import _detect_is_causal_mask

R = np.random.default_rng(11)


def t64(a, grad=False):
    return fw.tensor(a, dtype=fw.float64, requires_grad=grad)


@pytest.fixture
def sdpa_calls(monkeypatch):
    """Every call MHA makes to sdpa: (is_causal, attn_mask given, dropout_p)."""
    calls = []
    real = FA.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kw):
        calls.append((is_causal, attn_mask is not None, dropout_p))
        return real(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                    **kw)
    monkeypatch.setattr(FA, "scaled_dot_product_attention", spy)
    return calls


def _mha(**kw):
    fw.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, **kw).double()
    with fw.no_grad():
        for p in m.parameters():
            if p.ndim == 1:
                p.copy_(fw.randn(*p.shape, dtype=fw.float64))
    return m


def _causal_bool(n):
    return fw.tensor(np.triu(np.ones((n, n), bool), 1))   # True: NOT allowed (MHA's rule)


def _masks(case, length, src, bsz, heads):
    kpm = np.zeros((bsz, src), bool)
    kpm[0, src - 2:] = True
    am = R.random((length, src)) > 0.6
    am[:, 0] = False
    return {
        "none": {},
        "bool-attn": {"attn_mask": fw.tensor(am)},
        "float-attn-3d": {"attn_mask": t64(R.standard_normal((bsz * heads, length, src)))},
        "bool-kpm": {"key_padding_mask": fw.tensor(kpm)},
        "float-kpm": {"key_padding_mask": t64(R.standard_normal((bsz, src)))},
        "both": {"attn_mask": fw.tensor(am), "key_padding_mask": fw.tensor(kpm)},
    }[case]


def _np_mha(m, q, k, masks):
    """NumPy MHA (sequence-first, self weights) with the masks merged as PyTorch does."""
    e, h = m.embed_dim, m.num_heads
    w, b = m.in_proj_weight.detach().numpy(), m.in_proj_bias.detach().numpy()
    qp, kp, vp = q @ w[:e].T + b[:e], k @ w[e:2 * e].T + b[e:2 * e], k @ w[2 * e:].T + b[2 * e:]

    def split(x):  # (L, N, E) -> (N, H, L, hd)
        return x.reshape(x.shape[0], x.shape[1], h, e // h).transpose(1, 2, 0, 3)

    s = split(qp) @ split(kp).transpose(0, 1, 3, 2) / np.sqrt(e // h)
    for name, mask in masks.items():
        a = mask.numpy()
        a = np.where(a, -np.inf, 0.0) if a.dtype == bool else a
        s = s + (a.reshape(-1, h, *a.shape[-2:]) if name == "attn_mask" and a.ndim == 3 else
                 a if name == "attn_mask" else a[:, None, None, :])
    p = np.exp(s - s.max(-1, keepdims=True))
    o = (p / p.sum(-1, keepdims=True)) @ split(vp)
    o = o.transpose(2, 0, 1, 3).reshape(q.shape[0], q.shape[1], e)
    return o @ m.out_proj.weight.detach().numpy().T + m.out_proj.bias.detach().numpy()


@pytest.mark.parametrize("case", ["none", "bool-attn", "float-attn-3d", "bool-kpm",
                                  "float-kpm", "both"])
def test_need_weights_false_runs_sdpa_with_the_same_values(case, sdpa_calls):
    m = _mha()
    q, k = R.standard_normal((4, 3, 8)), R.standard_normal((5, 3, 8))
    masks = _masks(case, 4, 5, 3, 2)
    qa, ka = t64(q, True), t64(k, True)
    out, w = m(qa, ka, ka, need_weights=False, **masks)
    assert w is None and len(sdpa_calls) == 1
    assert sdpa_calls[0] == (False, bool(masks), 0.0)  # one merged mask, or none
    out.square().sum().backward()
    grads = [qa.grad.numpy().copy(), ka.grad.numpy().copy()] + \
        [p.grad.numpy().copy() for p in m.parameters()]
    np.testing.assert_allclose(out.detach().numpy(), _np_mha(m, q, k, masks), atol=1e-12)
    m.zero_grad()
    qb, kb = t64(q, True), t64(k, True)
    ref, _ = m(qb, kb, kb, **masks)                  # need_weights=True: the explicit math
    assert len(sdpa_calls) == 1
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    ref.square().sum().backward()
    for g, h in zip(grads, [qb.grad, kb.grad] + [p.grad for p in m.parameters()]):
        np.testing.assert_allclose(g, h.numpy(), atol=1e-10)


@pytest.mark.parametrize("layout", ["unbatched", "batch_first", "kdim_vdim", "bias_kv"])
def test_need_weights_false_layouts(layout, sdpa_calls):
    kw = {"batch_first": True} if layout == "batch_first" else \
        {"kdim": 3, "vdim": 5} if layout == "kdim_vdim" else \
        {"add_bias_kv": True, "add_zero_attn": True} if layout == "bias_kv" else {}
    m = _mha(**kw)
    if layout == "unbatched":
        q, k, v = (t64(R.standard_normal((n, 8))) for n in (4, 5, 5))
    elif layout == "kdim_vdim":
        q, k, v = t64(R.standard_normal((4, 2, 8))), t64(R.standard_normal((5, 2, 3))), \
            t64(R.standard_normal((5, 2, 5)))
    else:   # (L, N, E) = (4, 2, 8), or (N, L, E) = (2, 4, 8) batch first
        q = k = v = t64(R.standard_normal((2, 4, 8) if layout == "batch_first" else (4, 2, 8)))
    src = 4 if layout in ("batch_first", "bias_kv") else 5
    allowed_first = np.arange(src) == 0                   # every query keeps key 0
    mask = fw.tensor((R.random((4, src)) > 0.7) & ~allowed_first)
    out, _ = m(q, k, v, attn_mask=mask, need_weights=False)
    ref, _ = m(q, k, v, attn_mask=mask)
    assert len(sdpa_calls) == 1 and out.shape == ref.shape
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)


def test_causal_hint_drops_the_mask_as_pytorch(sdpa_calls):
    m = _mha()
    x = t64(R.standard_normal((5, 2, 8)))
    causal = _causal_bool(5)
    ref, _ = m(x, x, x, attn_mask=causal)                          # explicit math
    out, _ = m(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)
    assert sdpa_calls[-1] == (True, False, 0.0)                    # sdpa's causal path
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    fcausal = nn.Transformer.generate_square_subsequent_mask(5, dtype=fw.float64)
    out, _ = m(x, x, x, attn_mask=fcausal, is_causal=True, need_weights=False)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    # a hint is trusted: PyTorch does not read the mask either
    other = fw.zeros(5, 5, dtype=fw.bool)
    out, _ = m(x, x, x, attn_mask=other, is_causal=True, need_weights=False)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    # with weights, or a key padding mask to merge, the mask itself is used
    kpm = fw.tensor([[False, False, False, False, True], [False] * 5])
    n = len(sdpa_calls)
    out, w = m(x, x, x, attn_mask=other, is_causal=True)
    assert w is not None and len(sdpa_calls) == n
    np.testing.assert_allclose(out.detach().numpy(), m(x, x, x)[0].detach().numpy(),
                               atol=1e-12)
    out, _ = m(x, x, x, attn_mask=causal, key_padding_mask=kpm, is_causal=True,
               need_weights=False)
    assert sdpa_calls[-1] == (False, True, 0.0)
    np.testing.assert_allclose(out.detach().numpy(), m(x, x, x, attn_mask=causal,
                                                       key_padding_mask=kpm)[0].detach().numpy(),
                               atol=1e-12)
    with pytest.raises(ArgumentError, match="is_causal"):
        m(x, x, x, is_causal=True, need_weights=False)


@pytest.mark.parametrize("kw", [{"add_bias_kv": True}, {"add_zero_attn": True}],
                         ids=["bias_kv", "zero_attn"])
def test_causal_hint_keeps_the_mask_with_extra_keys(kw):
    """bias_k / add_zero_attn add key columns every query sees: the padded mask, not a
    causal triangle over the longer key axis, gives the need_weights=True values."""
    m = _mha(**kw)
    x = t64(R.standard_normal((4, 2, 8)))
    causal = _causal_bool(4)
    out, _ = m(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)
    ref, _ = m(x, x, x, attn_mask=causal)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)


def test_dropout_goes_through_sdpa(sdpa_calls):
    m = _mha(dropout=0.3)
    x = t64(R.standard_normal((6, 2, 8)))
    fw.manual_seed(5)
    a, _ = m(x, x, x, need_weights=False)
    fw.manual_seed(5)
    b, _ = m(x, x, x)                   # the same draws over the same (N, H, L, S) weights
    assert sdpa_calls == [(False, False, 0.3)]
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
    m.eval()
    m(x, x, x, need_weights=False)
    assert sdpa_calls[-1] == (False, False, 0.0)


def test_detect_is_causal_mask():
    f = nn.Transformer.generate_square_subsequent_mask(4)
    assert _detect_is_causal_mask(f) and _detect_is_causal_mask(f, None, 4)
    assert _detect_is_causal_mask(_causal_bool(4))
    assert not _detect_is_causal_mask(f, None, 5)                # another size
    assert not _detect_is_causal_mask(f, False)                  # a hint is taken as is
    assert _detect_is_causal_mask(fw.zeros(4, 4), True)
    assert not _detect_is_causal_mask(None) and _detect_is_causal_mask(None, True)
    assert not _detect_is_causal_mask(f.tril())                  # zeros: not causal
    assert not _detect_is_causal_mask(_causal_bool(4).logical_not())
    assert not _detect_is_causal_mask(fw.zeros(2, 4, 4))


def _stack(kind):
    fw.manual_seed(1)
    if kind == "encoder":
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        return nn.TransformerEncoder(layer, 2).double()
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    return nn.TransformerDecoder(layer, 2).double()


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_stacks_detect_the_causal_mask(kind, sdpa_calls):
    stack = _stack(kind)
    x, mem = t64(R.standard_normal((2, 5, 8))), t64(R.standard_normal((2, 3, 8)))
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=fw.float64)

    def run(m, hint=None):
        sdpa_calls.clear()
        if kind == "encoder":
            return stack(x, mask=m, is_causal=hint)
        return stack(x, mem, tgt_mask=m, tgt_is_causal=hint)
    cross = [] if kind == "encoder" else [(False, False, 0.0)]   # memory: no mask, no hint
    out = run(mask)                                              # hint None: detected
    assert sdpa_calls == ([(True, False, 0.0)] + cross) * 2
    ref = run(mask, False)                                       # the mask itself
    assert sdpa_calls == ([(False, True, 0.0)] + cross) * 2
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    almost = mask.clone()
    almost[0, 1] = 0.0                                           # not the causal mask
    run(almost)
    assert sdpa_calls == ([(False, True, 0.0)] + cross) * 2


def test_transformer_passes_the_hints():
    fw.manual_seed(2)
    model = nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True).double()
    src, tgt = t64(R.standard_normal((2, 4, 8))), t64(R.standard_normal((2, 3, 8)))
    mask = model.generate_square_subsequent_mask(3, dtype=fw.float64)
    a = model(src, tgt, tgt_mask=mask)                           # detected
    b = model(src, tgt, tgt_mask=mask, tgt_is_causal=False)      # the mask
    c = model(src, tgt, tgt_mask=mask, tgt_is_causal=True)       # the hint
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c.detach().numpy(), b.detach().numpy(), atol=1e-12)


def test_compiled_encoder_with_a_mask_keeps_one_graph():
    """Under fw.compile the hint is not detected from the mask's values (that would break
    the graph); the mask path gives the same result."""
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    x = fw.randn(2, 5, 8)
    f = fw.compile(lambda a, m: enc(a, mask=m), fullgraph=True)
    np.testing.assert_allclose(f(x, mask).detach().numpy(), enc(x, mask=mask).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    g = fw.compile(lambda a, m: enc(a, mask=m, is_causal=True), fullgraph=True)
    np.testing.assert_allclose(g(x, mask).detach().numpy(), enc(x, mask=mask).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def _op_counts(fn):
    with fw.profiler.profile() as prof:
        fn()
    return {e.name: e.count for e in prof.key_averages() if e.kind == "op"}


def test_causal_bias_is_built_once_per_shape():
    q = fw.randn(2, 3, 7, 4)
    k = fw.randn(2, 3, 9, 4)
    FA._CAUSAL_CACHE.clear()
    first = _op_counts(lambda: FA.scaled_dot_product_attention(q, k, k, is_causal=True))
    again = _op_counts(lambda: FA.scaled_dot_product_attention(q, k, k, is_causal=True))
    assert first.get("trilu") == 1 and "trilu" not in again and "full" not in again
    assert again["add"] == 1                          # the scores plus the cached bias
    causal = np.where(np.tril(np.ones((7, 9), bool)), 0.0, -np.inf)
    s = q.numpy() @ np.swapaxes(k.numpy(), -1, -2) / 2.0 + causal
    w = np.exp(s - s.max(-1, keepdims=True))
    ref = (w / w.sum(-1, keepdims=True)) @ k.numpy()
    out = FA.scaled_dot_product_attention(q, k, k, is_causal=True)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    for n in range(2, 2 + 2 * FA._CAUSAL_CACHE_ENTRIES):   # bounded
        x = fw.randn(1, 1, n, 4)
        FA.scaled_dot_product_attention(x, x, x, is_causal=True)
    assert len(FA._CAUSAL_CACHE) == FA._CAUSAL_CACHE_ENTRIES


def test_causal_bias_from_inference_mode_is_not_reused_for_training():
    FA._CAUSAL_CACHE.clear()
    q = fw.randn(1, 2, 6, 4, requires_grad=True)
    with fw.inference_mode():
        FA.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert not FA._CAUSAL_CACHE
    FA.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
    assert q.grad is not None and len(FA._CAUSAL_CACHE) == 1


def test_compiled_causal_mask_is_a_folded_constant():
    q = fw.randn(2, 2, 8, 4)
    f = fw.compile(lambda a: FA.scaled_dot_product_attention(a, a, a, is_causal=True))
    np.testing.assert_allclose(f(q).numpy(),
                               FA.scaled_dot_product_attention(q, q, q,
                                                               is_causal=True).numpy(),
                               rtol=1e-5, atol=1e-6)
    ops = [n.op.name for n in f.graph(q).nodes]
    assert "trilu" not in ops and "where" not in ops and "full" not in ops, ops
    assert ops.count("add") == 1
    code = f.code(q)
    (line,) = [ln for ln in code.splitlines() if "np.add(" in ln]
    assert "c_k_" in line, code               # scores + a constant of the graph


def test_demo_gpt_uses_is_causal_with_the_mask_values(monkeypatch):
    from framework.demo.model import GPT, GPTConfig
    from framework.nn import functional as F
    fw.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
    ids = fw.tensor(R.integers(0, 11, (2, 8)))
    calls = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kw):
        calls.append((is_causal, attn_mask is not None))
        return real(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)

    def explicit(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kw):
        t = q.shape[-2]
        allowed = fw.tensor(np.tril(np.ones((t, t), bool)))     # the demo's old bool mask
        return real(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    out = model(ids)
    assert calls == [(True, False)] * 2
    monkeypatch.setattr(F, "scaled_dot_product_attention", explicit)
    np.testing.assert_allclose(out.detach().numpy(), model(ids).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
