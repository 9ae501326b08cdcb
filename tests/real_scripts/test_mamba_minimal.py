# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""johnma2006/mamba-minimal ported to ``fw``: ``model.py`` (in _mamba_minimal_model.py:
Mamba, ResidualBlock, MambaBlock with its depthwise causal conv1d, softplus and the
sequential selective scan, RMSNorm, from_pretrained) and ``demo.ipynb``'s ``generate``.

Changed beyond the rename: the einops calls (see the model module), the GPT-NeoX tokenizer
(a toy character tokenizer with the same call/decode interface) and HuggingFace's
``cached_file`` (a stand-in serving a config.json and a checkpoint from tmp_path, so
``from_pretrained`` runs as written). mamba-minimal has no training code: the tests write a
short loop around the model.
"""

import json
import sys
import types

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from ._checks import assert_params_close, assert_stats, grad_leaves
from ._mamba_minimal_model import Mamba, MambaBlock, ModelArgs, RMSNorm

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``


# ---- demo.ipynb ---------------------------------------------------------------------------------

def generate(model,
             tokenizer,
             prompt: str,
             n_tokens_to_gen: int = 50,
             sample: bool = True,
             top_k: int = 40):
    model.eval()

    input_ids = tokenizer(prompt, return_tensors='pt').input_ids

    for token_n in range(n_tokens_to_gen):
        with torch.no_grad():
            indices_to_input = input_ids
            next_token_logits = model(indices_to_input)[:, -1]

        probs = F.softmax(next_token_logits, dim=-1)
        (batch, vocab_size) = probs.shape

        if top_k is not None:
            (values, indices) = torch.topk(probs, k=top_k)
            probs[probs < values[:, -1, None]] = 0
            probs = probs / probs.sum(axis=1, keepdims=True)

        if sample:
            next_indices = torch.multinomial(probs, num_samples=1)
        else:
            next_indices = torch.argmax(probs, dim=-1)[:, None]

        input_ids = torch.cat([input_ids, next_indices], dim=1)

    output_completions = [tokenizer.decode(output.tolist()) for output in input_ids][0]

    return output_completions


class ToyTokenizer:
    """AutoTokenizer's interface (``tokenizer(text, return_tensors='pt').input_ids``,
    ``decode``) over a character vocabulary."""
    CHARS = " abcdefghijklmnopqrstuvwxyz.,"

    def __call__(self, text, return_tensors=None):
        assert return_tensors == 'pt'
        ids = torch.tensor([[self.CHARS.index(c) for c in text]])
        return types.SimpleNamespace(input_ids=ids)

    def decode(self, ids):
        return "".join(self.CHARS[i] if i < len(self.CHARS) else "?" for i in ids)


# ---- a training loop around the model -----------------------------------------------------------

TEXT = "the cat sat on the mat. the dog ran. "
TINY = dict(d_model=16, n_layer=2, vocab_size=29, d_state=4, expand=2, d_conv=4)


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    model = Mamba(ModelArgs(**{**TINY, **kw}))
    with torch.no_grad():  # the tied embedding's N(0, 1) init gives logits of size ~d_model
        model.embedding.weight.mul_(0.2)
    return model


def batches(n, bsz=4, seqlen=12, seed=0):
    ids = np.array([ToyTokenizer.CHARS.index(c) for c in TEXT * 4])
    g = np.random.default_rng(seed)
    for _ in range(n):
        ix = g.integers(0, len(ids) - seqlen - 1, bsz)
        yield torch.tensor(np.stack([ids[i:i + seqlen + 1] for i in ix]))


def train_step(model, optimizer, tokens):
    logits = model(tokens[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def train(model, steps, step_fn=train_step):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return [float(step_fn(model, optimizer, t)) for t in batches(steps)]


# ---- NumPy reference ---------------------------------------------------------------------------

def _silu(v):
    return v / (1 + np.exp(-v))


def _np_mamba_block(p, pre, x, args):
    """MambaBlock.forward in float64: in_proj, depthwise causal conv, SiLU, the selective
    scan written as the recurrence h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t."""
    b, L, _ = x.shape
    di, n, r, K = args.d_inner, args.d_state, args.dt_rank, args.d_conv
    xr = x @ p[pre + "in_proj.weight"].T
    u, res = xr[..., :di], xr[..., di:]
    w, cb = p[pre + "conv1d.weight"][:, 0, :], p[pre + "conv1d.bias"]
    padded = np.concatenate([np.zeros((b, K - 1, di)), u], axis=1)
    u = cb + sum(w[:, k] * padded[:, k:k + L] for k in range(K))  # out[t] = sum_k w_k u[t+k-K+1]
    u = _silu(u)
    A = -np.exp(p[pre + "A_log"])
    xd = u @ p[pre + "x_proj.weight"].T
    delta, B, C = xd[..., :r], xd[..., r:r + n], xd[..., r + n:]
    delta = delta @ p[pre + "dt_proj.weight"].T + p[pre + "dt_proj.bias"]
    delta = np.where(delta > 20, delta, np.log1p(np.exp(np.minimum(delta, 20))))  # softplus
    h = np.zeros((b, di, n))
    ys = []
    for t in range(L):
        h = np.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = np.stack(ys, 1) + u * p[pre + "D"]
    return (y * _silu(res)) @ p[pre + "out_proj.weight"].T


def _np_forward(model, ids):
    p = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    args = model.args

    def rms(v, w):
        return v / np.sqrt((v ** 2).mean(-1, keepdims=True) + 1e-5) * w

    x = p["embedding.weight"][ids.numpy()]
    for i in range(args.n_layer):
        pre = f"layers.{i}."
        x = _np_mamba_block(p, pre + "mixer.", rms(x, p[pre + "norm.weight"]), args) + x
    return rms(x, p["norm_f.weight"]) @ p["embedding.weight"].T


# ---- tests ------------------------------------------------------------------------------------

def test_model_args_and_structure():
    args = ModelArgs(d_model=16, n_layer=2, vocab_size=29)
    assert (args.d_inner, args.dt_rank, args.vocab_size) == (32, 1, 32)  # padded to a multiple of 8
    model = make_model()
    blk = model.layers[0].mixer
    assert isinstance(blk, MambaBlock) and isinstance(model.norm_f, RMSNorm)
    assert model.lm_head.weight is model.embedding.weight
    conv = blk.conv1d
    assert conv.weight.shape == (32, 1, 4) and conv.groups == 32 and conv.padding == (3,)
    # A_log = log(repeat(arange(1, n + 1), 'n -> d n')): float, one row 1..n per channel
    assert blk.A_log.dtype == fw.float32 and blk.A_log.shape == (32, 4)
    np.testing.assert_allclose(blk.A_log.detach().numpy(), np.log(np.tile(np.arange(1, 5), (32, 1))),
                               rtol=1e-6)
    assert blk.x_proj.weight.shape == (1 + 2 * 4, 32) and blk.dt_proj.bias.shape == (32,)
    assert float(blk.D.sum()) == 32.0
    keys = sorted(model.state_dict())
    assert "lm_head.weight" in keys and "embedding.weight" in keys and len(keys) == 2 + 1 + 2 * 10


def test_forward_matches_numpy():
    model = make_model()
    g = np.random.default_rng(0)
    with torch.no_grad():  # dt_proj.bias spread so delta (and exp(delta A)) varies
        for blk in (layer.mixer for layer in model.layers):
            blk.dt_proj.bias.copy_(torch.tensor(g.uniform(-3, 1, 32), dtype=torch.float32))
            blk.D.normal_()
    ids = fw.randint(0, 29, (2, 9))
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (2, 9, 32)
    np.testing.assert_allclose(logits.numpy(), _np_forward(model, ids), rtol=1e-4, atol=1e-4)
    # causal: changing the last token leaves the earlier positions' logits unchanged
    ids2 = ids.clone()
    ids2[:, -1] = (ids[:, -1] + 1) % 29
    with torch.no_grad():
        np.testing.assert_allclose(model(ids2).numpy()[:, :-1], logits.numpy()[:, :-1],
                                   rtol=1e-6, atol=1e-6)


def test_training_lowers_loss():
    model = make_model()
    model.train()
    losses = train(model, 15)
    assert losses[0] < np.log(32) + 1.5, losses
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses


def test_compiled_training_step_matches_eager():
    m1 = make_model()
    l1 = train(m1, 4)
    m2 = make_model()
    step = torch.compile(train_step, mode="always")
    l2 = train(m2, 4, step_fn=step)
    assert_stats(step, eager_reason=None, captures=1, num_recompiles=0, graph_breaks=[])
    np.testing.assert_allclose(l2, l1, rtol=1e-4, atol=1e-5)
    assert_params_close(m2, m1)


def test_compiled_model_forward_matches_eager():
    model = make_model()
    model.eval()
    cm = torch.compile(model, mode="always")
    for b in (2, 3):
        ids = fw.randint(0, 29, (b, 7))
        with torch.no_grad():
            np.testing.assert_allclose(cm(ids).numpy(), model(ids).numpy(), rtol=1e-5, atol=1e-5)
    assert cm.stats()["graph_breaks"] == []


def test_gradcheck_float64(monkeypatch):
    # ssm computes A and D in .float() (float32): keep float64 throughout for finite differences
    monkeypatch.setattr(fw.Tensor, "float", lambda self: self)
    torch.manual_seed(0)
    model = Mamba(ModelArgs(d_model=4, n_layer=1, vocab_size=8, d_state=2, expand=2, d_conv=3)).to(torch.float64)
    ids = fw.tensor([[1, 5, 2, 7], [3, 0, 6, 6]])
    names = ["layers.0.mixer.A_log", "layers.0.mixer.D", "layers.0.mixer.conv1d.weight",
             "layers.0.mixer.x_proj.weight", "layers.0.mixer.dt_proj.bias", "layers.0.norm.weight"]
    params = dict(model.named_parameters())

    def f(*ws):
        logits = fw.func.functional_call(model, dict(zip(names, ws)), (ids[:, :-1],))
        return F.cross_entropy(logits.reshape(-1, 8), ids[:, 1:].reshape(-1))

    assert fw.autograd.gradcheck(f, grad_leaves(*(params[n] for n in names)), eps=1e-6, atol=1e-6)


def test_onnx_export_eval_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = make_model()
    model.eval()
    path = str(tmp_path / "mamba.onnx")
    fw.onnx.export(model, (fw.randint(0, 29, (2, 8)),), path, input_names=["input_ids"],
                   output_names=["logits"], dynamic_axes={"input_ids": {0: "b"}})
    sess = ort.InferenceSession(path)
    for b in (2, 3):
        ids = fw.randint(0, 29, (b, 8))
        with torch.no_grad():
            np.testing.assert_allclose(sess.run(None, {"input_ids": ids.numpy()})[0],
                                       model(ids).numpy(), rtol=1e-4, atol=1e-5)


def test_demo_generate_greedy_and_top_k_sampling():
    model = make_model()
    train(model, 15)
    tok = ToyTokenizer()
    greedy = generate(model, tok, "the ca", n_tokens_to_gen=6, sample=False, top_k=5)
    ids = tok("the ca", return_tensors='pt').input_ids
    for _ in range(6):  # greedy = argmax of the full forward, token by token
        with torch.no_grad():
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert greedy == tok.decode(ids[0].tolist()) and greedy.startswith("the ca")
    torch.manual_seed(3)
    s1 = generate(model, tok, "the ", n_tokens_to_gen=8, top_k=3)
    torch.manual_seed(3)
    assert generate(model, tok, "the ", n_tokens_to_gen=8, top_k=3) == s1 and len(s1) == 12
    assert generate(model, tok, "the ca", n_tokens_to_gen=6, top_k=1) == greedy  # top-1 sampling


def test_from_pretrained_with_a_stand_in_hub(tmp_path, monkeypatch):
    """Mamba.from_pretrained as written: HF's cached_file stands in, serving config.json and a
    checkpoint saved with ``backbone.`` prefixes, loaded by torch.load(weights_only=True,
    map_location='cpu', mmap=True)."""
    src = make_model()
    train(src, 3)
    sd = {("lm_head.weight" if k == "lm_head.weight" else "backbone." + k): v
          for k, v in src.state_dict().items()}
    torch.save(sd, str(tmp_path / "pytorch_model.bin"))
    (tmp_path / "config.json").write_text(json.dumps(dict(d_model=16, n_layer=2, vocab_size=29)))
    utils = types.ModuleType("transformers.utils")
    utils.WEIGHTS_NAME, utils.CONFIG_NAME = "pytorch_model.bin", "config.json"
    hub = types.ModuleType("transformers.utils.hub")
    hub.cached_file = lambda name, filename, _raise_exceptions_for_missing_entries=True: str(tmp_path / filename)
    for name, mod in (("transformers", types.ModuleType("transformers")),
                      ("transformers.utils", utils), ("transformers.utils.hub", hub)):
        monkeypatch.setitem(sys.modules, name, mod)
    # ModelArgs' defaults for the rest: the source model used d_state=4, so use its config
    monkeypatch.setattr(ModelArgs, "__init__", _with_defaults(ModelArgs.__init__, d_state=4))
    model = Mamba.from_pretrained("state-spaces/mamba-tiny")
    assert model.lm_head.weight is model.embedding.weight
    ids = fw.randint(0, 29, (2, 6))
    with torch.no_grad():
        np.testing.assert_array_equal(model(ids).numpy(), src(ids).numpy())


def _with_defaults(init, **defaults):
    def wrapped(self, *args, **kw):
        init(self, *args, **{**defaults, **kw})
    return wrapped
