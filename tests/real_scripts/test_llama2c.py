# ruff: noqa: E501, F841, UP006, UP035, UP045  (the ported script's own lines are kept as written)
"""karpathy/llama2.c model.py (in _llama2c_model.py) and train.py's training-step mechanics
ported to ``fw``.

The model (ModelArgs, RMSNorm, the real-arithmetic RoPE, repeat_kv, Attention with
scaled_dot_product_attention(is_causal=True) or the manual mask, SwiGLU FeedForward, tied
embeddings, the scaled init, configure_optimizers, estimate_mfu, generate) is the original's
code with ``torch`` -> ``fw``. From train.py: get_lr, the autocast/nullcontext ``ctx``, the
GradScaler, gradient accumulation, clip_grad_norm_, zero_grad(set_to_none=True) and the
checkpoint dict. Replaced: the TinyStories Task.iter_batches (a synthetic token stream),
the configurator/DDP/wandb set-up and export.py's binary format.
"""

import inspect
import math
import random
from contextlib import nullcontext

import numpy as np
import pytest

import framework as fw

from ._llama2c_model import (FORCE_MANUAL, ModelArgs, RMSNorm, Transformer, apply_rotary_emb,
                             precompute_freqs_cis, repeat_kv)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``


# ---- train.py (training-step mechanics) --------------------------------------------------------

ARGS = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=32,
            max_seq_len=16, dropout=0.0)
learning_rate = 1e-2  # max learning rate
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # clip gradients at this value, or disable if == 0.0
warmup_iters = 2  # how many steps to warm up for
lr_decay_iters = 30  # should be ~= max_iters per Chinchilla
min_lr = 1e-3  # minimum learning rate, should be ~= learning_rate/10 per Chinchilla
batch_size = 4
gradient_accumulation_steps = 2


def get_lr(it):
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * it / warmup_iters
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)


# ---- tinystories.py: PretokDataset / Task.iter_batches over a synthetic token stream ------------

def _synthetic_shard(seed, n=2048, vocab_size=64):
    """Stands in for a pretokenized .bin shard: runs of a learnable rule (each token is
    (3 * previous + 1) mod vocab) restarted at a random token every 16 tokens."""
    g = np.random.default_rng(seed)
    m = np.empty(n, dtype=np.uint16)
    for i in range(n):
        m[i] = g.integers(vocab_size) if i % 16 == 0 else (3 * int(m[i - 1]) + 1) % vocab_size
    return m


class PretokDataset(torch.utils.data.IterableDataset):
    """Loads pretokenized examples from disk and yields them as PyTorch tensors."""

    def __init__(self, split, max_seq_len, seed=0):
        super().__init__()
        self.split = split
        self.max_seq_len = max_seq_len
        self.seed = seed

    def __iter__(self):
        worker_info = torch.utils.data.get_worker_info()
        worker_id = worker_info.id if worker_info else 0
        rng = random.Random(42 + worker_id + self.seed)
        shard_filenames = [self.seed]  # one in-memory shard instead of the glob of .bin files
        while True:
            rng.shuffle(shard_filenames)
            for shard in shard_filenames:
                m = _synthetic_shard(shard)  # np.memmap(shard, dtype=np.uint16, mode="r")
                num_batches = len(m) // self.max_seq_len
                num_batches -= 1  # drop the last partial batch
                assert num_batches > 0, "this shard is way too small? investigate."
                ixs = list(range(num_batches))
                rng.shuffle(ixs)
                for ix in ixs:
                    start = ix * self.max_seq_len
                    end = start + self.max_seq_len + 1
                    # calling .astype will copy the data into a new numpy array, now in RAM
                    chunk = torch.from_numpy((m[start:end]).astype(np.int64))
                    x = chunk[:-1]
                    y = chunk[1:]
                    yield x, y


def iter_batches(seed, device="cpu", num_workers=0, max_seq_len=16):
    """Task.iter_batches."""
    ds = PretokDataset("train", max_seq_len, seed)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, pin_memory=True, num_workers=num_workers
    )
    for x, y in dl:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        yield x, y


def make_model(seed=1337, dtype="float32", device="cpu"):
    torch.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # allow tf32 on matmul
    torch.backends.cudnn.allow_tf32 = True  # allow tf32 on cudnn
    gptconf = ModelArgs(**ARGS)
    model = Transformer(gptconf)
    model.to(device)
    device_type = "cuda" if "cuda" in device else "cpu"
    # initialize a GradScaler. If enabled=False scaler is a no-op
    scaler = torch.cuda.amp.GradScaler(enabled=(dtype == "float16"))
    optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type)
    return model, optimizer, scaler


def train(model, optimizer, scaler, iters, dtype="float32", device="cpu", step_fn=None, seed=0,
          compile=False):
    """The while-loop of train.py (no eval/checkpoint branch): returns lossf per iteration."""
    # compile the model
    if compile:
        print("compiling the model... (takes a ~minute)")
        model = torch.compile(model)  # requires PyTorch 2.0
    device_type = "cuda" if "cuda" in device else "cpu"
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    ctx = (
        nullcontext()
        if device_type == "cpu"
        else torch.amp.autocast(device_type=device_type, dtype=ptdtype)
    )
    raw_model = model
    train_batch_iter = iter_batches(seed, device)
    X, Y = next(train_batch_iter)  # fetch the very first batch
    out = []
    for iter_num in range(iters):
        lr = get_lr(iter_num)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        if step_fn is not None:  # the compiled variant: the same body, one function
            batches = [X, Y]
            for _ in range(gradient_accumulation_steps - 1):
                batches += next(train_batch_iter)
            X, Y = next(train_batch_iter)
            out.append(float(step_fn(*batches)) * gradient_accumulation_steps)
            continue
        for micro_step in range(gradient_accumulation_steps):
            with ctx:
                logits = model(X, Y)
                loss = raw_model.last_loss
                loss = loss / gradient_accumulation_steps
            # immediately async prefetch next batch while model is doing the forward pass on the GPU
            X, Y = next(train_batch_iter)
            # backward pass, with gradient scaling if training in fp16
            scaler.scale(loss).backward()
        # clip the gradient
        if grad_clip != 0.0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        # step the optimizer and scaler if training in fp16
        scaler.step(optimizer)
        scaler.update()
        # flush the gradients as soon as we can, no need for this memory anymore
        optimizer.zero_grad(set_to_none=True)
        lossf = loss.item() * gradient_accumulation_steps
        out.append(lossf)
    return out


def make_step(model, optimizer, scaler):
    """train.py's micro-step loop + clip + step + zero_grad, as one function to compile."""
    raw_model = model

    def step(*batches):
        for micro_step in range(gradient_accumulation_steps):
            X, Y = batches[2 * micro_step], batches[2 * micro_step + 1]
            logits = model(X, Y)
            loss = raw_model.last_loss
            loss = loss / gradient_accumulation_steps
            scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss
    return step


# ---- tests ------------------------------------------------------------------------------------

def _np(t):
    return t.detach().numpy().astype(np.float64)


def test_model_structure_tying_and_init():
    model, optimizer, scaler = make_model()
    assert model.tok_embeddings.weight is model.output.weight
    names = [n for n, _ in model.named_parameters()]
    assert "tok_embeddings.weight" in names and "output.weight" not in names  # tied: first name kept
    assert len(names) == 1 + 2 * 9 + 1
    # hidden_dim = multiple_of * ceil(int(2 * 4 * dim / 3) / multiple_of) = 32 * ceil(85 / 32)
    assert model.layers[0].feed_forward.w1.weight.shape == (96, 32)
    assert model.layers[0].attention.wk.weight.shape == (16, 32)  # n_kv_heads * head_dim
    assert model.layers[0].attention.flash
    # persistent=False: the RoPE tables are buffers but not in the state_dict
    assert "freqs_cos" in dict(model.named_buffers()) and "freqs_cos" not in model.state_dict()
    # scaled init of w3 / wo by name; 0.02 elsewhere; RMSNorm weights ones
    scaled = np.concatenate([_np(p).ravel() for n, p in model.named_parameters()
                             if n.endswith(("w3.weight", "wo.weight"))])
    plain = np.concatenate([_np(p).ravel() for n, p in model.named_parameters()
                            if n.endswith(("w1.weight", "w2.weight", "wq.weight"))])
    assert abs(scaled.std() - 0.01) < 0.0015 and abs(plain.std() - 0.02) < 0.002
    assert float(model.norm.weight.sum()) == 32.0
    assert not scaler.is_enabled()


def test_configure_optimizers_groups_and_fused_detection(capsys):
    assert "fused" in inspect.signature(torch.optim.AdamW).parameters
    model, optimizer, _ = make_model()
    out = capsys.readouterr().out
    assert "using fused AdamW: False" in out  # device_type 'cpu'
    decay, nodecay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and nodecay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and len(decay["params"]) == 1 + 2 * 7
    assert all(p.dim() == 1 for p in nodecay["params"]) and len(nodecay["params"]) == 5
    assert decay["betas"] == (0.9, 0.95)
    assert "num decayed parameter tensors: 15, with 26,624 parameters" in out
    model2 = Transformer(ModelArgs(**ARGS))
    opt = model2.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cuda")
    assert opt.defaults["fused"] is True


def test_rmsnorm_matches_numpy():
    fw.manual_seed(0)
    norm = RMSNorm(8, eps=1e-5)
    norm.weight.data.normal_()
    x = fw.randn(3, 5, 8)
    xn = _np(x)
    ref = xn / np.sqrt((xn ** 2).mean(-1, keepdims=True) + 1e-5) * _np(norm.weight)
    np.testing.assert_allclose(norm(x).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    # float16 input: normalized in float32, cast back, then scaled by the float32 weight
    y = norm(x.half())
    assert y.dtype == fw.float32


def test_rotary_embedding_matches_numpy_complex():
    head_dim, T = 8, 6
    cos, sin = precompute_freqs_cis(head_dim, T)
    freqs = 1.0 / 10000.0 ** (np.arange(0, head_dim, 2) / head_dim)
    angles = np.outer(np.arange(T), freqs)
    np.testing.assert_allclose(cos.numpy(), np.cos(angles), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sin.numpy(), np.sin(angles), rtol=1e-5, atol=1e-6)
    fw.manual_seed(0)
    xq, xk = fw.randn(2, T, 4, head_dim), fw.randn(2, T, 2, head_dim)
    oq, ok = apply_rotary_emb(xq, xk, cos, sin)
    rot = np.exp(1j * angles)[None, :, None, :]  # pairs (x0, x1) as x0 + i x1, times e^{i t f}
    for x, o in ((xq, oq), (xk, ok)):
        xn = _np(x)
        z = (xn[..., 0::2] + 1j * xn[..., 1::2]) * rot
        ref = np.stack([z.real, z.imag], -1).reshape(xn.shape)
        assert o.shape == x.shape and o.dtype == x.dtype
        np.testing.assert_allclose(o.numpy(), ref, rtol=1e-5, atol=1e-5)
    # a rotation: norms of every pair are kept, position 0 is unchanged
    np.testing.assert_allclose(oq.numpy()[:, 0], xq.numpy()[:, 0], rtol=1e-6)


def test_repeat_kv_is_repeat_interleave():
    x = fw.randn(2, 3, 2, 4)
    np.testing.assert_array_equal(repeat_kv(x, 3).numpy(), np.repeat(x.numpy(), 3, axis=2))
    assert repeat_kv(x, 1) is x


def _np_forward(model, tokens):
    """Transformer.forward with targets, in NumPy float64 (causal GQA attention, RoPE, SwiGLU)."""
    p = {k: _np(v) for k, v in model.state_dict().items()}
    a = model.params
    hd, rep = a.dim // a.n_heads, a.n_heads // a.n_kv_heads
    tok = tokens.numpy()
    B, T = tok.shape
    ang = np.outer(np.arange(T), 1.0 / 10000.0 ** (np.arange(0, hd, 2) / hd))
    rot = np.exp(1j * ang)[None, :, None, :]

    def rms(x, w):
        return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + a.norm_eps) * w

    def rope(x):
        z = (x[..., 0::2] + 1j * x[..., 1::2]) * rot
        return np.stack([z.real, z.imag], -1).reshape(x.shape)

    h = p["tok_embeddings.weight"][tok]
    causal = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(a.n_layers):
        pre = f"layers.{i}."
        x = rms(h, p[pre + "attention_norm.weight"])
        q = rope((x @ p[pre + "attention.wq.weight"].T).reshape(B, T, a.n_heads, hd))
        k = rope((x @ p[pre + "attention.wk.weight"].T).reshape(B, T, a.n_kv_heads, hd))
        v = (x @ p[pre + "attention.wv.weight"].T).reshape(B, T, a.n_kv_heads, hd)
        k, v = np.repeat(k, rep, 2), np.repeat(v, rep, 2)
        q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + causal
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        h = h + o.transpose(0, 2, 1, 3).reshape(B, T, -1) @ p[pre + "attention.wo.weight"].T
        x = rms(h, p[pre + "ffn_norm.weight"])
        g = x @ p[pre + "feed_forward.w1.weight"].T
        f = (g / (1 + np.exp(-g))) * (x @ p[pre + "feed_forward.w3.weight"].T)
        h = h + f @ p[pre + "feed_forward.w2.weight"].T
    return rms(h, p["norm.weight"]) @ p["output.weight"].T


@pytest.mark.parametrize("manual", [False, True])
def test_forward_matches_numpy_flash_and_manual_attention(manual, monkeypatch):
    monkeypatch.setitem(FORCE_MANUAL, 'on', manual)
    model, _, _ = make_model()
    assert model.layers[0].attention.flash is not manual
    for prm in model.parameters():  # weights larger than the init: attention is not uniform
        prm.data.normal_(0.0, 0.3)
    x, y = next(iter_batches(0))
    y[0, :3] = -1  # ignore_index=-1
    logits = model(x, y)
    ref = _np_forward(model, x)
    np.testing.assert_allclose(logits.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    yn = y.numpy().ravel()
    lp = ref.reshape(-1, ref.shape[-1])
    lp = lp - lp.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    keep = yn != -1
    np.testing.assert_allclose(float(model.last_loss), -lp[keep, yn[keep]].mean(), rtol=1e-5)
    # inference path: the output on the last position only, last_loss cleared
    last = model(x)
    assert last.shape == (4, 1, 64) and model.last_loss is None
    np.testing.assert_allclose(last.detach().numpy()[:, 0], ref[:, -1], rtol=1e-4, atol=1e-4)


def test_get_lr_cosine_with_warmup():
    assert get_lr(0) == 0.0 and get_lr(1) == learning_rate / 2
    assert get_lr(2) == pytest.approx(learning_rate) and get_lr(30) == pytest.approx(min_lr)
    assert get_lr(16) == pytest.approx((learning_rate + min_lr) / 2) and get_lr(50) == min_lr


def test_training_lowers_loss_and_checkpoint_resumes(tmp_path, capsys):
    model, optimizer, scaler = make_model()
    model.train()
    losses = train(model, optimizer, scaler, 20)
    assert losses[-1] < 0.6 * losses[0] and losses[0] == pytest.approx(math.log(64), rel=0.05), losses
    assert all(p.grad is None for p in model.parameters())  # set_to_none=True
    assert optimizer.param_groups[0]["lr"] == get_lr(19)
    mfu = model.estimate_mfu(batch_size * gradient_accumulation_steps, 0.5)
    N = sum(p.numel() for p in model.parameters())
    assert mfu == pytest.approx((6 * N + 12 * 2 * 4 * 8 * 16) * 16 * 8 / 0.5 / 312e12)

    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_args": dict(ARGS),
        "iter_num": 20,
        "best_val_loss": fw.tensor(losses[-1]),
        "config": {"learning_rate": learning_rate},
    }
    torch.save(checkpoint, str(tmp_path / "ckpt.pt"))
    # init_from == "resume"
    checkpoint = torch.load(str(tmp_path / "ckpt.pt"), map_location="cpu")
    model_args = dict(ARGS, dropout=0.0)
    checkpoint_model_args = checkpoint["model_args"]
    for k in ["dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "max_seq_len"]:
        model_args[k] = checkpoint_model_args[k]
    model2 = Transformer(ModelArgs(**model_args))
    state_dict = checkpoint["model"]
    unwanted_prefix = "_orig_mod."
    for k, v in list(state_dict.items()):
        if k.startswith(unwanted_prefix):
            state_dict[k[len(unwanted_prefix) :]] = state_dict.pop(k)
    model2.load_state_dict(state_dict)
    assert model2.tok_embeddings.weight is model2.output.weight  # still tied after loading
    opt2 = model2.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), "cpu")
    opt2.load_state_dict(checkpoint["optimizer"])
    assert checkpoint["iter_num"] == 20 and float(checkpoint["best_val_loss"]) == losses[-1]
    # both continue identically
    more1 = train(model, optimizer, scaler, 3, seed=5)
    more2 = train(model2, opt2, torch.cuda.amp.GradScaler(enabled=False), 3, seed=5)
    np.testing.assert_allclose(more1, more2, rtol=1e-6)


def test_float16_gradscaler_without_cuda_disables_itself():
    """dtype='float16' on a cpu-only machine: torch.cuda.amp.GradScaler(enabled=True) warns
    that CUDA is not available and disables itself (as PyTorch); training still runs."""
    with pytest.warns(UserWarning, match="CUDA is not available"):
        model, optimizer, scaler = make_model(dtype="float16")
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0
    losses = train(model, optimizer, scaler, 6, dtype="float16")
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_autocast_ctx_bfloat16_forward():
    """The ctx train.py builds for a non-cpu device_type, used here on the cpu."""
    model, _, _ = make_model()
    x, y = next(iter_batches(0))
    with torch.amp.autocast(device_type="cpu", dtype=torch.bfloat16):
        logits = model(x, y)
        loss = model.last_loss
    assert logits.dtype == fw.bfloat16 and loss.dtype == fw.float32
    ref = model(x, y)
    np.testing.assert_allclose(float(loss), float(model.last_loss), rtol=2e-2)
    assert ref.dtype == fw.float32


def test_compiled_model_as_train_py_matches_eager():
    """compile=True in train.py: torch.compile(model); the loss is read back from the
    compiled module's last_loss attribute, set inside the compiled forward."""
    model, optimizer, scaler = make_model()
    eager = train(model, optimizer, scaler, 4)
    s1 = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model, optimizer, scaler = make_model()
    compiled = train(model, optimizer, scaler, 4, compile=True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(v.numpy(), s1[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_compiled_training_step_matches_eager():
    model, optimizer, scaler = make_model()
    eager = train(model, optimizer, scaler, 4)
    s1 = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model, optimizer, scaler = make_model()
    fn = fw.compile(make_step(model, optimizer, scaler), mode="always")
    compiled = train(model, optimizer, scaler, 4, step_fn=fn)
    st = fn.stats()
    assert st["eager_reason"] is None and st["captures"] == 1 and st["num_recompiles"] == 0, st
    np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(v.numpy(), s1[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_gradcheck_float64(monkeypatch):
    # RMSNorm and apply_rotary_emb compute in x.float() (float32, as in PyTorch): finite
    # differences of a float64 model would see float32 rounding. Keep float64 throughout.
    monkeypatch.setattr(fw.Tensor, "float", lambda self: self)
    fw.manual_seed(0)
    model = Transformer(ModelArgs(dim=8, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=5,
                                  multiple_of=4, max_seq_len=4)).to(torch.float64)
    tokens = fw.tensor([[0, 3, 1], [4, 2, 2]])
    targets = fw.tensor([[3, 1, -1], [2, 2, 0]])
    names = ["tok_embeddings.weight", "layers.0.attention.wq.weight", "layers.0.attention.wk.weight",
             "layers.0.attention_norm.weight", "layers.0.feed_forward.w3.weight", "norm.weight"]
    params = dict(model.named_parameters())
    for n in names:
        params[n].data.normal_(0.0, 0.5)

    def f(*ws):
        fw.func.functional_call(model, dict(zip(names, ws)), (tokens, targets))
        return model.last_loss

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert fw.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_generate_greedy_topk_and_inference_mode():
    model, optimizer, scaler = make_model()
    train(model, optimizer, scaler, 20)
    model.eval()
    start = fw.tensor([[5, 16]])
    out = model.generate(start, 20, temperature=0.0)  # longer than max_seq_len: cropped
    assert out.shape == (1, 22) and out.dtype == fw.int64
    for t in range(2, 22):  # greedy = argmax of the (cropped) prefix's last logits
        with fw.no_grad():
            assert int(model(out[:, max(0, t - 16):t])[0, -1].argmax()) == int(out[0, t])
    assert (out.numpy()[0, 2:6] == [49, 20, 61, 56]).sum() >= 3  # the learned rule 3x+1 mod 64
    fw.manual_seed(3)
    s1 = model.generate(start, 6, temperature=0.8, top_k=5)
    fw.manual_seed(3)
    s2 = model.generate(start, 6, temperature=0.8, top_k=5)
    np.testing.assert_array_equal(s1.numpy(), s2.numpy())
    np.testing.assert_array_equal(model.generate(start, 6, top_k=1).numpy(), out[:, :8].numpy())
    assert not s1.requires_grad and fw.is_grad_enabled()
    assert fw.is_inference(s1)


def test_onnx_export_eval_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, _, _ = make_model()
    model.eval()
    path = str(tmp_path / "llama.onnx")
    tokens = fw.randint(0, 64, (2, 8))
    fw.onnx.export(model, (tokens,), path, input_names=["tokens"], output_names=["logits"],
                   dynamic_axes={"tokens": {0: "B", 1: "T"}})
    sess = ort.InferenceSession(path)
    for shape in ((2, 8), (3, 5)):
        tokens = fw.randint(0, 64, shape)
        (y,) = sess.run(None, {"tokens": tokens.numpy()})
        with fw.no_grad():
            np.testing.assert_allclose(y, model(tokens).numpy(), rtol=1e-4, atol=1e-5)
