"""harvardnlp/annotated-transformer ported to fw (the model and training code live in
``_annotated_transformer.py``, as published with ``torch`` -> ``fw``).

Checked here: the masks, LayerNorm (unbiased std), the positional encoding, attention and
the whole EncoderDecoder against NumPy formulas; ``make_model``'s deep-copied clones and
Xavier init; the Noam ``rate`` through LambdaLR; LabelSmoothing's target distribution and
its KLDivLoss against NumPy (and float64 gradcheck); ``run_epoch``/TrainState; the copy
task (greedy decoding copies the input after training); the training step under
``fw.compile``; ONNX export of the encoder and the full forward; ``collate_batch``."""
# ruff: noqa: N806

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import framework as fw
from framework.optim.lr_scheduler import LambdaLR

from . import _annotated_transformer as at
from ._checks import (
    assert_compiled_matches_eager,
    assert_onnx_export_matches,
    assert_stats,
    grad_leaves,
    np_of,
    np_params,
)

V = 11  # the copy task's vocabulary (0 = padding)


def _model(N=1, d_model=16, d_ff=32, h=2, dropout=0.1, seed=0, vocab=V):
    fw.manual_seed(seed)
    return at.make_model(vocab, vocab, N=N, d_model=d_model, d_ff=d_ff, h=h, dropout=dropout)


# ---- masks, layers, init ----------------------------------------------------------------

def test_subsequent_mask_and_batch_masks():
    m = at.subsequent_mask(4)
    assert m.shape == (1, 4, 4) and m.dtype == fw.bool
    np.testing.assert_array_equal(m.numpy()[0], np.tril(np.ones((4, 4), bool)))
    src = fw.tensor([[1, 5, 6, 2, 2], [1, 7, 2, 2, 2]])
    tgt = fw.tensor([[1, 6, 5, 2], [1, 7, 9, 2]])
    b = at.Batch(src, tgt, pad=2)
    np.testing.assert_array_equal(b.src_mask.numpy(), (src.numpy() != 2)[:, None, :])
    want = (tgt.numpy()[:, :-1] != 2)[:, None, :] & np.tril(np.ones((3, 3), bool))
    assert b.tgt_mask.dtype == fw.bool
    np.testing.assert_array_equal(b.tgt_mask.numpy(), want)
    np.testing.assert_array_equal(b.tgt_y.numpy(), tgt.numpy()[:, 1:])
    assert b.ntokens.item() == 4 and b.ntokens.dtype == fw.int64


def test_layer_norm_uses_the_unbiased_std_plus_eps():
    fw.manual_seed(0)
    ln = at.LayerNorm(6)
    with fw.no_grad():
        ln.a_2.uniform_(0.5, 1.5)
        ln.b_2.uniform_(-0.5, 0.5)
    x = fw.randn(3, 4, 6)
    xs = x.numpy().astype(np.float64)
    mu = xs.mean(-1, keepdims=True)
    std = xs.std(-1, ddof=1, keepdims=True)  # torch.std: Bessel-corrected by default
    want = np_of(ln.a_2) * (xs - mu) / (std + 1e-6) + np_of(ln.b_2)
    np.testing.assert_allclose(ln(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_positional_encoding_buffer():
    pe = at.PositionalEncoding(6, dropout=0.0, max_len=50)
    pos = np.arange(50)[:, None]
    div = np.exp(np.arange(0, 6, 2) * -(np.log(10000.0) / 6))
    want = np.zeros((50, 6))
    want[:, 0::2], want[:, 1::2] = np.sin(pos * div), np.cos(pos * div)
    assert "pe" in pe.state_dict() and not pe.pe.requires_grad and not list(pe.parameters())
    np.testing.assert_allclose(pe.pe.numpy()[0], want, rtol=1e-5, atol=1e-5)
    x = fw.zeros(2, 7, 6, requires_grad=True)
    y = pe(x)
    np.testing.assert_allclose(y.detach().numpy(), np.broadcast_to(want[:7], (2, 7, 6)),
                               rtol=1e-5, atol=1e-5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 7, 6)))


def test_make_model_clones_are_independent_and_xavier_initialised():
    model = _model(N=2, d_model=16, d_ff=32, h=4)
    enc = model.encoder.layers
    assert enc[0] is not enc[1]
    w0, w1 = enc[0].self_attn.linears[0].weight, enc[1].self_attn.linears[0].weight
    assert w0 is not w1 and not np.array_equal(np_of(w0), np_of(w1))  # re-initialised
    assert len({id(p) for p in model.parameters()}) == len(list(model.parameters()))
    for name, p in model.named_parameters():
        if p.dim() > 1:
            fan_out, fan_in = p.shape
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(np_of(p)).max() <= bound + 1e-7, name
            assert np.abs(np_of(p)).max() > 0.5 * bound, name
    # the a_2/b_2 LayerNorm parameters keep their ones/zeros
    np.testing.assert_array_equal(np_of(model.encoder.norm.a_2), np.ones(16))
    n_params = sum(p.numel() for p in model.parameters())
    d, f = 16, 32
    per_mha, per_ff, per_ln = 4 * (d * d + d), 2 * d * f + f + d, 2 * d
    want = (2 * (per_mha + per_ff + 2 * per_ln) + 2 * (2 * per_mha + per_ff + 3 * per_ln)
            + 2 * per_ln + 2 * V * d + (d * V + V))
    assert n_params == want


# ---- NumPy reference of the whole model ---------------------------------------------------

def _np_forward(sd, src, tgt, src_mask, tgt_mask, N, h):
    p = np_params(sd)

    def lin(x, pre):
        return x @ p[pre + ".weight"].T + p[pre + ".bias"]

    def ln(x, pre):
        mu, std = x.mean(-1, keepdims=True), x.std(-1, ddof=1, keepdims=True)
        return p[pre + ".a_2"] * (x - mu) / (std + 1e-6) + p[pre + ".b_2"]

    def mha(q, k, v, mask, pre):
        B, d = q.shape[0], q.shape[-1]
        dk = d // h
        q, k, v = (lin(x, f"{pre}.linears.{i}").reshape(B, -1, h, dk).transpose(0, 2, 1, 3)
                   for i, x in enumerate((q, k, v)))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dk)
        s = np.where(mask[:, None] == 0, -1e9, s)
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        return lin(o.transpose(0, 2, 1, 3).reshape(B, -1, d), f"{pre}.linears.3")

    def ff(x, pre):
        return lin(np.maximum(lin(x, pre + ".w_1"), 0), pre + ".w_2")

    d = p["src_embed.0.lut.weight"].shape[1]
    x = p["src_embed.0.lut.weight"][src] * np.sqrt(d) + p["src_embed.1.pe"][:, :src.shape[1]]
    for i in range(N):
        pre = f"encoder.layers.{i}"
        x = x + mha(*(ln(x, pre + ".sublayer.0.norm"),) * 3, src_mask, pre + ".self_attn")
        x = x + ff(ln(x, pre + ".sublayer.1.norm"), pre + ".feed_forward")
    mem = ln(x, "encoder.norm")
    y = p["tgt_embed.0.lut.weight"][tgt] * np.sqrt(d) + p["tgt_embed.1.pe"][:, :tgt.shape[1]]
    for i in range(N):
        pre = f"decoder.layers.{i}"
        y = y + mha(*(ln(y, pre + ".sublayer.0.norm"),) * 3, tgt_mask, pre + ".self_attn")
        y = y + mha(ln(y, pre + ".sublayer.1.norm"), mem, mem, src_mask, pre + ".src_attn")
        y = y + ff(ln(y, pre + ".sublayer.2.norm"), pre + ".feed_forward")
    out = ln(y, "decoder.norm")
    logits = lin(out, "generator.proj")
    logits = logits - logits.max(-1, keepdims=True)
    return out, logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_forward_matches_numpy_reference_with_padding_masks():
    model = _model(N=2, d_model=16, d_ff=32, h=4).eval()
    src = fw.tensor([[1, 4, 5, 6, 0, 0], [1, 9, 8, 7, 6, 5]])
    tgt = fw.tensor([[1, 4, 5, 6, 0], [1, 9, 8, 7, 6]])
    b = at.Batch(src, fw.cat([tgt, fw.zeros(2, 1, dtype=fw.long)], 1), pad=0)
    with fw.no_grad():
        out = model.forward(b.src, b.tgt, b.src_mask, b.tgt_mask)
        logp = model.generator(out)
    want_out, want_logp = _np_forward(model.state_dict(), src.numpy(), b.tgt.numpy(),
                                      b.src_mask.numpy(), b.tgt_mask.numpy(), N=2, h=4)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logp.numpy(), want_logp, rtol=1e-4, atol=1e-5)
    # the attention map kept on the module (self.attn): rows sum to 1, pads get nothing
    attn = model.decoder.layers[1].src_attn.attn.numpy()
    assert attn.shape == (2, 4, 5, 6)
    np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)
    assert np.all(attn[0, :, :, 4:] < 1e-6)


# ---- the Noam schedule --------------------------------------------------------------------

def test_rate_and_lambda_lr_follow_the_noam_formula():
    opts = [[512, 1, 4000], [512, 1, 8000], [256, 2, 10]]
    lrs = at.example_learning_schedule(opts, steps=40).numpy()
    assert lrs.shape == (3, 40)
    for row, (size, factor, warmup) in zip(lrs, opts):
        step = np.maximum(np.arange(40), 1).astype(np.float64)
        want = factor * size ** -0.5 * np.minimum(step ** -0.5, step * warmup ** -1.5)
        np.testing.assert_allclose(row, want, rtol=1e-6)
    # warmup 10: linear up to step 10, then 1/sqrt(step) decay
    assert np.argmax(lrs[2]) == 10
    assert at.rate(0, 512, 1, 4000) == at.rate(1, 512, 1, 4000)


# ---- label smoothing ----------------------------------------------------------------------

def _np_true_dist(target, size, padding_idx, smoothing):
    t = np.full((len(target), size), smoothing / (size - 2))
    t[np.arange(len(target)), target] = 1.0 - smoothing
    t[:, padding_idx] = 0
    t[np.asarray(target) == padding_idx] = 0
    return t


def _np_kl_sum(x, t):
    return float(np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t * x))


def test_label_smoothing_distribution_matches_numpy():
    true_dist = at.example_label_smoothing().numpy()
    np.testing.assert_allclose(true_dist, _np_true_dist([2, 1, 0, 3, 3], 5, 0, 0.4),
                               rtol=1e-6)
    # finite log-probabilities, pads at one, several and no rows (index_fill_ takes the
    # 0-d index that mask.squeeze() gives for a single pad, and an empty one for none)
    fw.manual_seed(0)
    for target in ([2, 0, 3, 4], [0, 1, 0, 0], [3, 1, 4, 2]):
        crit = at.LabelSmoothing(6, 0, 0.2)
        x = fw.randn(4, 6).log_softmax(-1)
        got = crit(x, fw.tensor(target)).item()
        want = _np_true_dist(target, 6, 0, 0.2)
        np.testing.assert_allclose(crit.true_dist.numpy(), want, rtol=1e-6)
        assert got == pytest.approx(_np_kl_sum(x.numpy().astype(np.float64), want), rel=1e-5)


def test_label_smoothing_penalization_matches_pytorch_semantics():
    """The original's ``loss(x, crit)`` feeds log(0) = -inf where the target is 0: KLDivLoss
    computes xlogy(t, t) - t * x, and 0 * -inf is nan (PyTorch gives nan too; the plot
    in the write-up is empty on current PyTorch, harvardnlp/annotated-transformer#109)."""
    crit = at.LabelSmoothing(5, 0, 0.1)
    assert np.isnan(float(at.loss(1, crit)))
    # without zero probabilities the penalization is finite and grows with confidence
    predict = fw.FloatTensor([[1e-9, 0.25, 0.25, 0.25, 0.25 - 1e-9]])
    assert np.isfinite(crit(predict.log(), fw.LongTensor([1])).item())


def test_label_smoothing_gradcheck_float64():
    crit = at.LabelSmoothing(5, 0, 0.3)
    fw.manual_seed(0)
    (x,) = grad_leaves(fw.randn(4, 5, dtype=fw.float64).log_softmax(-1))
    target = fw.tensor([1, 0, 4, 2])
    assert fw.autograd.gradcheck(lambda x: crit(x, target), (x,))
    crit(x, target).backward()
    np.testing.assert_allclose(x.grad.numpy(), -_np_true_dist([1, 0, 4, 2], 5, 0, 0.3))


def test_layer_norm_and_attention_gradcheck_float64():
    fw.manual_seed(1)
    ln = at.LayerNorm(5).double()
    mha = at.MultiHeadedAttention(2, 4, dropout=0.0).double()
    (x,) = grad_leaves(fw.randn(2, 3, 5, dtype=fw.float64))
    assert fw.autograd.gradcheck(
        lambda x, a, b: fw.func.functional_call(ln, {"a_2": a, "b_2": b}, (x,)),
        (x, *grad_leaves(ln.a_2, ln.b_2)))
    (q,) = grad_leaves(fw.randn(2, 3, 4, dtype=fw.float64))
    mask = at.subsequent_mask(3)
    assert fw.autograd.gradcheck(lambda q: mha(q, q, q, mask), (q,))


# ---- training ----------------------------------------------------------------------------

def test_run_epoch_counts_tokens_and_eval_mode_does_not_step():
    model = _model()
    crit = at.LabelSmoothing(size=V, padding_idx=0, smoothing=0.1)
    opt = fw.optim.Adam(model.parameters(), lr=0.5, betas=(0.9, 0.98), eps=1e-9)
    sch = LambdaLR(optimizer=opt, lr_lambda=lambda step: at.rate(step, 16, 1.0, 40))
    state = at.TrainState()
    fw.manual_seed(2)
    loss, state = at.run_epoch(at.data_gen(V, 4, 3), model,
                               at.SimpleLossCompute(model.generator, crit), opt, sch,
                               mode="train", train_state=state)
    assert state.step == 3 and state.accum_step == 3 and state.samples == 12
    assert int(state.tokens) == 3 * 4 * 9 and np.isfinite(float(loss))
    assert sch.last_epoch == 3 and opt.param_groups[0]["lr"] == pytest.approx(at.rate(3, 16, 1, 40) * 0.5)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    model.eval()
    at.run_epoch(at.data_gen(V, 4, 2), model, at.SimpleLossCompute(model.generator, crit),
                 at.DummyOptimizer(), at.DummyScheduler(), mode="eval")
    for a, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, p.detach().numpy())


def test_copy_task_learns_to_copy():
    """example_simple_model at a tiny size: greedy decoding reproduces held-out inputs."""
    fw.manual_seed(0)
    model = at.example_simple_model(V=V, N=1, d_model=32, d_ff=64, h=4, batch_size=32,
                                    epochs=10, nbatches=20, warmup=40)
    fw.manual_seed(123)
    src = fw.randint(1, V, size=(6, 10))
    src[:, 0] = 1
    src_mask = fw.ones(1, 1, 10)
    copied = 0
    for row in src:
        out = at.greedy_decode(model, row[None], src_mask, max_len=10, start_symbol=1)
        assert out.shape == (1, 10) and out.dtype == fw.int64
        copied += int(np.array_equal(out.numpy()[0], row.numpy()))
    assert copied >= 5, copied


def test_greedy_decode_is_the_argmax_of_the_full_forward():
    model = _model(N=1, dropout=0.0).eval()
    src = fw.LongTensor([[1, 2, 3, 4, 5]])
    src_mask = fw.ones(1, 1, 5)
    ys = at.greedy_decode(model, src, src_mask, max_len=5, start_symbol=1)
    assert ys.dtype == fw.int64 and ys.shape == (1, 5)
    with fw.no_grad():
        for i in range(1, 5):
            prefix = ys[:, :i]
            out = model.forward(src, prefix, src_mask, at.subsequent_mask(i))
            assert int(model.generator(out[:, -1]).argmax()) == int(ys[0, i])
    fw.manual_seed(0)
    ys = at.inference_test()
    assert ys.shape == (1, 10) and ys[0, 0].item() == 0


def test_greedy_decode_with_a_compiled_decode_step():
    """model.decode under fw.compile in greedy_decode's loop: the target grows by one token
    per step, so one static capture, one recompile to a dynamic length, then cache hits."""
    model = _model(N=1, dropout=0.0).eval()
    src, src_mask = fw.LongTensor([[1, 2, 3, 4, 5, 6]]), fw.ones(1, 1, 6)
    want = at.greedy_decode(model, src, src_mask, max_len=8, start_symbol=1)
    decode = fw.compile(model.decode, mode="always")
    compiled = SimpleNamespace(encode=model.encode, decode=decode, generator=model.generator)
    got = at.greedy_decode(compiled, src, src_mask, max_len=8, start_symbol=1)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    st = assert_stats(decode, captures=2, num_recompiles=1, cache_hits=5, eager_reason=None)
    assert st["recompiles"][0].endswith("-> dynamic"), st


def _step_run(compiled, criterion_for, scheduler_inside=False):
    model = _model(N=1, d_model=16, d_ff=32, h=2, dropout=0.1)
    crit = criterion_for(compiled)
    opt = fw.optim.Adam(model.parameters(), lr=0.5, betas=(0.9, 0.98), eps=1e-9)
    sch = LambdaLR(optimizer=opt, lr_lambda=lambda step: at.rate(step, 16, 1.0, 40))
    loss_compute = at.SimpleLossCompute(model.generator, crit)

    def train_step(src, tgt, src_mask, tgt_mask, tgt_y, ntokens):
        # run_epoch's body for one batch
        out = model.forward(src, tgt, src_mask, tgt_mask)
        loss, loss_node = loss_compute(out, tgt_y, ntokens)
        loss_node.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if scheduler_inside:
            sch.step()
        return loss

    fn = fw.compile(train_step, mode="always") if compiled else train_step
    model.train()
    fw.manual_seed(7)  # the same data and dropout masks in both runs
    losses = []
    for b in at.data_gen(V, 4, 5):
        losses.append(float(fn(b.src, b.tgt, b.src_mask, b.tgt_mask, b.tgt_y, b.ntokens)))
        if not scheduler_inside:
            sch.step()
    state = [p.detach().numpy().copy() for p in model.parameters()]
    return losses, state + [np.array([opt.param_groups[0]["lr"], sch.last_epoch])], fn


def _nll_when_compiled(compiled):
    if compiled:
        return fw.nn.NLLLoss(reduction="sum", ignore_index=0)
    return at.LabelSmoothing(size=V, padding_idx=0, smoothing=0.0)


def test_compiled_training_step_matches_eager():
    """With smoothing 0 and no pads, LabelSmoothing's KL sum is NLLLoss(sum) exactly: the
    compiled step with NLLLoss matches eager with the original criterion (forward,
    backward, Adam under the Noam lr), one capture after Adam's warm-up call."""
    assert_compiled_matches_eager(lambda c: _step_run(c, _nll_when_compiled), captures=1,
                                  num_recompiles=0, cache_hits=3, eager_reason=None,
                                  graph_breaks=[])


def test_compiled_step_with_the_scheduler_inside_runs_eagerly_with_the_right_lr():
    """run_epoch steps the Noam LambdaLR right after the optimizer: inside a compiled step
    that is Python state a graph cannot replay, so the step runs eagerly. Regression: the
    capture used to leave the scheduler one step ahead (a wrong lr from then on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = assert_compiled_matches_eager(
            lambda c: _step_run(c, _nll_when_compiled, scheduler_inside=True), captures=0,
            rtol=1e-6, atol=1e-7)
    assert "lr_scheduler.step()" in fn.stats()["eager_reason"]
    assert sum("running eagerly" in str(w.message) for w in caught) == 1


def test_compiled_step_with_label_smoothing_breaks_at_nonzero_and_stays_correct():
    """``torch.nonzero`` has a data-dependent shape: a graph break (named with its line),
    after which the step runs eagerly and gives eager's numbers."""
    def criterion_for(compiled):
        return at.LabelSmoothing(size=V, padding_idx=0, smoothing=0.1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = assert_compiled_matches_eager(lambda c: _step_run(c, criterion_for),
                                           captures=0, rtol=1e-6, atol=1e-7)
    reason = fn.stats()["eager_reason"]
    assert "nonzero()" in reason and "_annotated_transformer.py" in reason, reason
    assert any("nonzero()" in str(w.message) for w in caught)


# ---- export, data pipeline, checkpoints ---------------------------------------------------

def test_onnx_export_encoder_and_full_forward(tmp_path):
    model = _model(N=1, d_model=16, d_ff=32, h=2).eval()
    src = fw.tensor([[1, 4, 5, 6, 0, 0], [1, 9, 8, 7, 6, 5]])
    tgt = fw.tensor([[1, 4, 5, 6, 0], [1, 9, 8, 7, 6]])
    src_mask = (src != 0).unsqueeze(-2)
    tgt_mask = at.Batch.make_std_mask(tgt, 0)
    assert_onnx_export_matches(model.encode, (src, src_mask), tmp_path / "enc.onnx")
    assert_onnx_export_matches(model, (src, tgt, src_mask, tgt_mask), tmp_path / "full.onnx")


def test_collate_batch_pads_with_the_blank_id():
    vocab = at.ToyVocab("ein mann a man sitzt sits".split())
    src, tgt = at.collate_batch([("ein mann sitzt", "a man sits"), ("ein", "a")],
                                str.split, str.split, vocab, vocab, fw.device("cpu"),
                                max_padding=6, pad_id=vocab.get_stoi()["<blank>"])
    assert src.shape == tgt.shape == (2, 6) and src.dtype == fw.int64
    np.testing.assert_array_equal(src.numpy(), [[0, 4, 5, 8, 1, 2], [0, 4, 1, 2, 2, 2]])
    b = at.Batch(src, tgt, pad=2)
    assert b.ntokens.item() == 4 + 2


def test_state_dict_save_load_roundtrip(tmp_path):
    model = _model(N=1)
    path = tmp_path / "multi30k_model_final.pt"
    fw.save(model.state_dict(), str(path))
    other = _model(N=1, seed=5)
    other.load_state_dict(fw.load(str(path)))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
