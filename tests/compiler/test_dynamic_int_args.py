"""Python int arguments become symbolic ints on their second value (PyTorch's automatic
dynamic shapes for int inputs): a KV-cache decoding step called with a new ``start_pos``
every time reuses one graph instead of capturing again per position. Uses that need the
value (a loop count, a list index) specialize it with a guard; guards on what the trace
assumed recompile with a readable reason."""

import math

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework import nn
from framework.errors import ShapeError

TABLE = fw.randn(40, 4)


def _check(cf, fn, calls):
    """Call the compiled and the eager function on each argument tuple; compare."""
    for args in calls:
        got, want = cf(*args), fn(*args)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=str(args[1:]))
    return cf.stats()


# ---------------------------------------------------------------------------------------
# the llama-style decoding step
class CachedAttention(nn.Module):
    """llama's Attention in small: a KV cache written at ``start_pos``, a RoPE table
    sliced at ``start_pos``, the causal mask (``hstack`` with zeros for the cached
    positions) only when more than one token comes in."""

    def __init__(self, dim=8, heads=2, max_seq=16, bsz=2):
        super().__init__()
        self.h, self.hd = heads, dim // heads
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        shape = (bsz, max_seq, heads, dim // heads)
        self.register_buffer("cache_k", fw.zeros(shape))
        self.register_buffer("cache_v", fw.zeros(shape))
        ang = fw.arange(max_seq).float()[:, None] * fw.arange(1, self.hd // 2 + 1).float() * 0.3
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())

    @staticmethod
    def rope(x, cos, sin):
        x1, x2 = x[..., ::2], x[..., 1::2]
        c, s = cos[None, :, None], sin[None, :, None]
        return fw.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).flatten(-2)

    def forward(self, x, start_pos):
        bsz, seqlen, _ = x.shape
        q, k, v = (w(x).view(bsz, seqlen, self.h, self.hd) for w in (self.wq, self.wk, self.wv))
        cos = self.cos[start_pos: start_pos + seqlen]
        sin = self.sin[start_pos: start_pos + seqlen]
        q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
        self.cache_k[:bsz, start_pos: start_pos + seqlen] = k
        self.cache_v[:bsz, start_pos: start_pos + seqlen] = v
        keys = self.cache_k[:bsz, :start_pos + seqlen].transpose(1, 2)
        values = self.cache_v[:bsz, :start_pos + seqlen].transpose(1, 2)
        scores = q.transpose(1, 2) @ keys.transpose(2, 3) / math.sqrt(self.hd)
        if seqlen > 1:
            mask = fw.full((seqlen, seqlen), float("-inf"), device=x.device).triu(1)
            scores = scores + fw.hstack([fw.zeros((seqlen, start_pos), device=x.device), mask])
        out = F.softmax(scores, dim=-1) @ values
        return self.wo(out.transpose(1, 2).reshape(bsz, seqlen, -1))


def _twins(device="cpu"):
    fw.manual_seed(0)
    a = CachedAttention().to(device)
    b = CachedAttention().to(device)
    b.load_state_dict(a.state_dict())
    return a, b


def _decode(eager, model, toks, positions):
    """The prefill (two tokens at 0), then one token at a time; compare every step."""
    fwd = fw.compile(model.forward, mode="always")
    with fw.no_grad():
        steps = [(toks[:, :2], 0)] + [(toks[:, t:t + 1], t) for t in positions]
        for x, pos in steps:
            np.testing.assert_allclose(fwd(x, pos).cpu().numpy(), eager(x, pos).cpu().numpy(),
                                       rtol=1e-5, atol=1e-6, err_msg=str(pos))
        np.testing.assert_allclose(model.cache_k.cpu().numpy(), eager.cache_k.cpu().numpy(),
                                   rtol=1e-6)
    return fwd


def test_decoding_step_over_twelve_positions_captures_twice():
    eager, model = _twins()
    toks = fw.randn(2, 14, 8)
    fwd = _decode(eager, model, toks, range(2, 14))
    with fw.no_grad():
        st = fwd.stats()
        assert st["captures"] == 2 and st["eager_reason"] is None, st
        assert st["recompiles"] == ["shape of x changed ([2, 2, 8] -> [2, 1, 8]) -> dynamic"]
        graph = str(fwd.graph(toks[:, 5:6], 5))
        assert "starts=(s0, 0)" in graph and "f32[2, 2, 1, s0 + 1]" in graph, graph
        # a chunk of 3 at start_pos 8 (the masked branch) is another capture, and matches
        x = toks[:, 8:11]
        np.testing.assert_allclose(fwd(x, 8).numpy(), eager(x, 8).numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_decoding_step_on_cuda():
    # asked here, not in a skipif: tests/gpu/conftest.py turns the simulated device on
    if not fw.cuda.is_available():
        pytest.skip("needs a CUDA device (real, or simulated with FW_TRITON_INTERPRET=1)")
    eager, model = _twins("cuda")
    fwd = _decode(eager, model, fw.randn(2, 7, 8, device="cuda"), range(2, 7))
    st = fwd.stats()
    assert st["captures"] == 2 and st["eager_reason"] is None, st


# ---------------------------------------------------------------------------------------
# what the trace does with a symbolic int
def _window(x, n):
    return x + TABLE[n: n + 3]


def _narrow(x, n):
    return x + TABLE.narrow(0, n, 3) * TABLE[:n].sum()


def _arange(x, n):
    return x * fw.arange(n).float().sum() + n


def _halves(x, n):
    return TABLE[:n // 2].sum(0) + TABLE[:math.ceil(n / 2)].sum(0) + x


@pytest.mark.parametrize("fn", [_window, _narrow, _arange, _halves])
def test_slice_narrow_arange_and_arithmetic_reuse_one_graph(fn):
    cf = fw.compile(fn, mode="always")
    st = _check(cf, fn, [(fw.randn(3, 4), n) for n in (2, 3, 4, 7, 11, 5, 36)])
    assert st["captures"] == 2 and st["recompiles"] == [
        "value of argument n changed (2 -> 3) -> dynamic"], st
    assert "s0" in str(cf.graph(fw.randn(3, 4), 9))


def test_int_used_as_a_loop_count_recompiles_per_value():
    def f(x, n):
        for _ in range(n):
            x = x * 1.5 + 1
        return x

    cf = fw.compile(f, mode="always")
    st = _check(cf, f, [(fw.randn(3), n) for n in (2, 3, 4, 3, 2, 5)])
    # 3 is traced once symbolic, specialized by range() and traced again static; from then
    # on n is keyed by its value: 2, 3, 4, 5 are four captures, repeats are cache hits
    assert st["captures"] == 4 and st["cache_hits"] == 2, st
    assert st["recompiles"][-1] == "value of argument n changed (4 -> 5)", st


def test_list_index_and_string_uses_specialize():
    scales = [0.5, 1.5, 2.5, 3.5, 4.5]

    def f(x, i):
        return x * scales[i] + len(f"{i}")

    cf = fw.compile(f, mode="always")
    st = _check(cf, f, [(fw.randn(3), i) for i in (2, 3, 4, 3)])
    assert st["captures"] == 3 and st["cache_hits"] == 1, st


def _int_index(x, n):
    return x + TABLE[n]


def _view(x, n):
    return x.view(n, -1).sum(0)  # 12 / n is a size only where n divides 12


@pytest.mark.parametrize("fn, numel", [(_int_index, 4), (_view, 12)])
def test_uses_the_capture_cannot_take_symbolic_fall_back_to_a_static_int(fn, numel):
    cf = fw.compile(fn, mode="always")
    st = _check(cf, fn, [(fw.randn(numel), n) for n in (2, 3, 4, 6, 3)])
    # 3: the symbolic capture fails, the static one serves; n is static from then on
    assert st["captures"] == 4 and st["cache_hits"] == 1 and st["eager_reason"] is None, st
    assert st["recompiles"][-1] == "value of argument n changed (4 -> 6)", st


def test_zero_and_one_stay_specialized():
    cf = fw.compile(_arange, mode="always")
    st = _check(cf, _arange, [(fw.randn(3), n) for n in (0, 1, 2, 3, 4, 0, 1)])
    # 0 and 1 are graphs of their own; 2 is traced symbolic and serves 3 and 4
    assert st["captures"] == 3 and st["cache_hits"] == 4, st
    assert "s0" not in str(cf.graph(fw.randn(3), 1))


def test_dynamic_false_keeps_ints_specialized_and_true_makes_them_symbolic():
    calls = [(fw.randn(3, 4), n) for n in (2, 3, 4, 5)]
    static = fw.compile(_window, mode="always", dynamic=False)
    assert _check(static, _window, calls)["captures"] == 4
    dynamic = fw.compile(_window, mode="always", dynamic=True)
    st = _check(dynamic, _window, calls + [(fw.randn(3, 4), 1)])
    assert st["captures"] == 2 and st["num_recompiles"] == 1, st  # 1 stays specialized


def test_bools_stay_specialized():
    def f(x, flag):
        return x * 2 if flag else x - 1

    cf = fw.compile(f, mode="always")
    st = _check(cf, f, [(fw.randn(3), b) for b in (True, False, True, False)])
    assert st["captures"] == 2 and "s0" not in str(cf.graph(fw.randn(3), True))


# ---------------------------------------------------------------------------------------
# guards
def test_negative_value_fails_the_sign_guard_and_recompiles():
    cf = fw.compile(_window, mode="always")
    st = _check(cf, _window, [(fw.randn(3, 4), n) for n in (2, 3, 4, -5, -6, -7, 9)])
    # 2, then 3 (symbolic, positive), then -5 (symbolic, negative); 9 goes back to the
    # positive graph (kept when its guard failed) without a capture
    assert st["captures"] == 3 and st["cache_hits"] == 4, st
    assert st["recompiles"][1:] == ["guard n >= 1 on a symbolic int failed (n=-5)"], st


def test_comparison_guard_recompiles_when_its_answer_changes():
    def f(x, n):
        if n > 5:
            return x[:, :n - 5].sum(1)
        return x.sum(1) * n

    cf = fw.compile(f, mode="always")
    calls = [(fw.randn(3, 12), n) for n in (2, 3, 4, 6, 7, 9, 5, 3)]
    st = _check(cf, f, calls)
    assert st["captures"] == 3 and st["cache_hits"] == 5, st  # n <= 5 and n > 5: two graphs
    assert st["recompiles"][1] == "guard n <= 5 on a symbolic int failed (n=6)", st


def test_bound_past_the_end_raises_the_eager_error():
    cf = fw.compile(_window, mode="always")
    _check(cf, _window, [(fw.randn(3, 4), n) for n in (2, 3, 37)])
    with pytest.raises(ShapeError, match="not broadcastable"):
        _window(fw.randn(3, 4), 38)
    with pytest.raises(ShapeError, match="not broadcastable"):
        cf(fw.randn(3, 4), 38)


# ---------------------------------------------------------------------------------------
# containers, outputs
def test_ints_in_tuples_and_dicts_and_int_outputs():
    def f(x, span, cfg):
        a, b = span
        out = (x + TABLE[a:a + 3] * cfg["scale"])[:, :b]
        return out, {"next": a + b, "half": cfg["scale"] // 2}

    cf = fw.compile(f, mode="always")
    for i in range(2, 10):
        x, span, cfg = fw.randn(3, 4), (i, 2 + i % 2), {"scale": i + 1}
        (got, meta), (want, meta_e) = cf(x, span, cfg), f(x, span, cfg)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        assert meta == meta_e and all(type(v) is int for v in meta.values()), meta
        assert type(cfg["scale"]) is int  # the caller's dict holds its own int again
    st = cf.stats()
    assert st["captures"] == 2 and st["recompiles"] == [
        "value of argument span_0 changed (2 -> 3) -> dynamic"], st


# ---------------------------------------------------------------------------------------
# training steps
def _train(step_fn, steps):
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = fw.optim.SGD(model.parameters(), lr=0.05)
    data, target = fw.randn(10, 4), fw.randn(10, 1)

    def step(x, y, i, seq_len):
        opt.zero_grad()
        loss = ((model(x[:seq_len]) - y[:seq_len]) ** 2).mean() * (1.0 + 0.1 * i)
        loss.backward()
        opt.step()
        return loss.detach(), i + 1

    run = step_fn(step)
    out = [run(data, target, i, seq_len) for i, seq_len in steps]
    return out, [p.detach().numpy() for p in model.parameters()], run


def test_training_step_with_an_int_argument_that_changes_every_call():
    steps = [(i, 3 + i % 6) for i in range(2, 12)]  # the step (a multiplier) and a length
    eager, p_eager, _ = _train(lambda f: f, steps)
    comp, p_comp, cf = _train(lambda f: fw.compile(f, mode="always"), steps)
    for (l1, n1), (l2, n2) in zip(eager, comp):
        np.testing.assert_allclose(l2.numpy(), l1.numpy(), rtol=1e-5, atol=1e-7)
        assert n1 == n2 and type(n2) is int
    for a, b in zip(p_eager, p_comp):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    st = cf.stats()
    assert st["captures"] == 2 and st["recompiles"] == [
        "value of argument i changed (2 -> 3) -> dynamic"], st


def test_code_generation_that_refuses_a_symbolic_int_falls_back_to_static(monkeypatch):
    from compiler import runtime

    build = runtime.build_entry

    def no_int_symbols(cap, *a, **kw):  # a backend without support for them
        if cap.int_syms:
            raise NotImplementedError("symbolic ints")
        return build(cap, *a, **kw)

    monkeypatch.setattr(runtime, "build_entry", no_int_symbols)
    cf = fw.compile(_window, mode="always")
    st = _check(cf, _window, [(fw.randn(3, 4), n) for n in (2, 3, 4, 3)])
    assert st["eager_reason"] is None and st["captures"] == 4 and st["cache_hits"] == 1, st
