# ruff: noqa: E501, UP031  (the ported script's own lines are kept as written)
"""karpathy/build-nanogpt train_gpt2.py ported to ``fw``, run on one process.

The model (CausalSelfAttention with the fused c_attn split, NANOGPT_SCALE_INIT, flash
attention through F.scaled_dot_product_attention(is_causal=True), tanh-GELU MLP, the tied
wte / lm_head weight), configure_optimizers (decay groups by p.dim(), fused-AdamW detection
through inspect.signature), DataLoaderLite, get_lr, the validation / checkpoint / sampling /
training-step bodies of the main loop are the original's code with ``torch`` -> ``fw``.

Changed beyond the rename: the token shards are in-memory NumPy arrays of a tiny character
vocabulary (``load_tokens`` reads SHARDS[filename] instead of np.load, ``os.listdir`` lists
SHARDS), tiktoken is replaced by that character vocabulary, DDP / hellaswag /
GPT.from_pretrained are dropped, and the module-level loop is wrapped in functions (with
their hyper-parameters as arguments) so that tests can run a few steps of it.
"""

import inspect
import math
import os
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework.nn import functional as F

from ._checks import np_layer_norm, np_linear, np_params

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``
master_process = True  # no DDP: the single process is the master


# ---- train_gpt2.py: the model -----------------------------------------------------------------

class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        # key, query, value projections for all heads, but in a batch
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        # output projection
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.NANOGPT_SCALE_INIT = 1
        # regularization
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def forward(self, x):
        B, T, C = x.size() # batch size, sequence length, embedding dimensionality (n_embd)
        # calculate query, key, values for all heads in batch and move head forward to be the batch dim
        qkv = self.c_attn(x)
        q, k, v = qkv.split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True) # flash attention
        y = y.transpose(1, 2).contiguous().view(B, T, C) # re-assemble all head outputs side by side
        # output projection
        y = self.c_proj(y)
        return y

class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc    = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu    = nn.GELU(approximate='tanh')
        self.c_proj  = nn.Linear(4 * config.n_embd, config.n_embd)
        self.c_proj.NANOGPT_SCALE_INIT = 1

    def forward(self, x):
        x = self.c_fc(x)
        x = self.gelu(x)
        x = self.c_proj(x)
        return x

class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x

@dataclass
class GPTConfig:
    block_size: int = 1024 # max sequence length
    vocab_size: int = 50257 # number of tokens: 50,000 BPE merges + 256 bytes tokens + 1 <|endoftext|> token
    n_layer: int = 12 # number of layers
    n_head: int = 12 # number of heads
    n_embd: int = 768 # embedding dimension

class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config

        self.transformer = nn.ModuleDict(dict(
            wte = nn.Embedding(config.vocab_size, config.n_embd),
            wpe = nn.Embedding(config.block_size, config.n_embd),
            h = nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f = nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        # weight sharing scheme
        self.transformer.wte.weight = self.lm_head.weight

        # init params
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            std = 0.02
            if hasattr(module, 'NANOGPT_SCALE_INIT'):
                std *= (2 * self.config.n_layer) ** -0.5
            torch.nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        # idx is of shape (B, T)
        B, T = idx.size()
        assert T <= self.config.block_size, f"Cannot forward sequence of length {T}, block size is only {self.config.block_size}"
        # forward the token and posisition embeddings
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device) # shape (T)
        pos_emb = self.transformer.wpe(pos) # position embeddings of shape (T, n_embd)
        tok_emb = self.transformer.wte(idx) # token embeddings of shape (B, T, n_embd)
        x = tok_emb + pos_emb
        # forward the blocks of the transformer
        for block in self.transformer.h:
            x = block(x)
        # forward the final layernorm and the classifier
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x) # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, device_type):
        # start with all of the candidate parameters (that require grad)
        param_dict = {pn: p for pn, p in self.named_parameters()}
        param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
        # create optim groups. Any parameters that is 2D will be weight decayed, otherwise no.
        # i.e. all weight tensors in matmuls + embeddings decay, all biases and layernorms don't.
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {'params': decay_params, 'weight_decay': weight_decay},
            {'params': nodecay_params, 'weight_decay': 0.0}
        ]
        num_decay_params = sum(p.numel() for p in decay_params)
        num_nodecay_params = sum(p.numel() for p in nodecay_params)
        if master_process:
            print(f"num decayed parameter tensors: {len(decay_params)}, with {num_decay_params:,} parameters")
            print(f"num non-decayed parameter tensors: {len(nodecay_params)}, with {num_nodecay_params:,} parameters")
        # Create AdamW optimizer and use the fused version if it is available
        fused_available = 'fused' in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == "cuda"
        if master_process:
            print(f"using fused AdamW: {use_fused}")
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8, fused=use_fused)
        return optimizer


# ---- train_gpt2.py: the data ------------------------------------------------------------------

# tiny character vocabulary instead of tiktoken's gpt2 encoding (64 symbols)
CHARS = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678,."
stoi = {ch: i for i, ch in enumerate(CHARS)}
itos = {i: ch for i, ch in enumerate(CHARS)}
encode = lambda s: [stoi[c] for c in s]  # noqa: E731
decode = lambda ids: "".join(itos[i] for i in ids)  # noqa: E731

# in-memory "edu_fineweb10B" shards: a learnable, repetitive character stream
_TEXT = "hello, i am a language model. the cat sat on the mat. "
SHARDS = {
    "edufineweb_train_000000": np.array(encode(_TEXT * 6), dtype=np.uint16),
    "edufineweb_train_000001": np.array(encode(_TEXT[10:] * 6), dtype=np.uint16),
    "edufineweb_val_000000": np.array(encode(_TEXT[5:] * 4), dtype=np.uint16),
}

def load_tokens(filename):
    npt = SHARDS[os.path.basename(filename)]  # np.load(filename)
    npt = npt.astype(np.int32) # added after video
    ptt = torch.tensor(npt, dtype=torch.long)
    return ptt

class DataLoaderLite:
    def __init__(self, B, T, process_rank, num_processes, split):
        self.B = B
        self.T = T
        self.process_rank = process_rank
        self.num_processes = num_processes
        assert split in {'train', 'val'}

        # get the shard filenames
        data_root = "edu_fineweb10B"
        shards = list(SHARDS)  # os.listdir(data_root)
        shards = [s for s in shards if split in s]
        shards = sorted(shards)
        shards = [os.path.join(data_root, s) for s in shards]
        self.shards = shards
        assert len(shards) > 0, f"no shards found for split {split}"
        if master_process:
            print(f"found {len(shards)} shards for split {split}")
        self.reset()

    def reset(self):
        # state, init at shard zero
        self.current_shard = 0
        self.tokens = load_tokens(self.shards[self.current_shard])
        self.current_position = self.B * self.T * self.process_rank

    def next_batch(self):
        B, T = self.B, self.T
        buf = self.tokens[self.current_position : self.current_position+B*T+1]
        x = (buf[:-1]).view(B, T) # inputs
        y = (buf[1:]).view(B, T) # targets
        # advance the position in the tensor
        self.current_position += B * T * self.num_processes
        # if loading the next batch would be out of bounds, advance to next shard
        if self.current_position + (B * T * self.num_processes + 1) > len(self.tokens):
            self.current_shard = (self.current_shard + 1) % len(self.shards)
            self.tokens = load_tokens(self.shards[self.current_shard])
            self.current_position = B * T * self.process_rank
        return x, y


# ---- train_gpt2.py: the run, wrapped in functions -----------------------------------------------

max_lr = 6e-4
min_lr = max_lr * 0.1
warmup_steps = 715
max_steps = 19073 # 19,073 steps is ~1 epoch, if data is 10B tokens and batch size 0.5M tokens
def get_lr(it):
    # 1) linear warmup for warmup_iters steps
    if it < warmup_steps:
        return max_lr * (it+1) / warmup_steps
    # 2) if it > lr_decay_iters, return min learning rate
    if it > max_steps:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_steps) / (max_steps - warmup_steps)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) # coeff starts at 1 and goes to 0
    return min_lr + coeff * (max_lr - min_lr)

TINY = dict(block_size=16, vocab_size=64, n_layer=2, n_head=2, n_embd=32)


def setup(use_compile=False, B=4, T=16, total_batch_size=128, seed=1337):
    """The script's set-up: device, seed, batch sizes, loaders, the model, the optimizer."""
    device = "cpu"
    if torch.cuda.is_available():
        device = "cuda"
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(seed)
    ddp_world_size, ddp_rank = 1, 0
    assert total_batch_size % (B * T * ddp_world_size) == 0, "make sure total_batch_size is divisible by B * T * ddp_world_size"
    grad_accum_steps = total_batch_size // (B * T * ddp_world_size)
    train_loader = DataLoaderLite(B=B, T=T, process_rank=ddp_rank, num_processes=ddp_world_size, split="train")
    val_loader = DataLoaderLite(B=B, T=T, process_rank=ddp_rank, num_processes=ddp_world_size, split="val")

    torch.set_float32_matmul_precision('high')

    model = GPT(GPTConfig(**TINY))
    model.to(device)
    if use_compile:
        model = torch.compile(model)
    raw_model = model
    optimizer = raw_model.configure_optimizers(weight_decay=0.1, learning_rate=6e-4, device_type=device_type)
    return dict(device=device, device_type=device_type, grad_accum_steps=grad_accum_steps,
                train_loader=train_loader, val_loader=val_loader, model=model,
                raw_model=raw_model, optimizer=optimizer)


def validate(model, val_loader, device, device_type, val_loss_steps=2):
    """The loop's validation body."""
    model.eval()
    val_loader.reset()
    with torch.no_grad():
        val_loss_accum = 0.0
        for _ in range(val_loss_steps):
            x, y = val_loader.next_batch()
            x, y = x.to(device), y.to(device)
            with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
                logits, loss = model(x, y)
            loss = loss / val_loss_steps
            val_loss_accum += loss.detach()
    return val_loss_accum


def generate(model, device, device_type, ddp_rank=0, num_return_sequences=4, max_length=14):
    """The loop's sampling body (top-k 50, multinomial with a seeded generator, gather)."""
    model.eval()
    tokens = encode("hello, i am")
    tokens = torch.tensor(tokens, dtype=torch.long)
    tokens = tokens.unsqueeze(0).repeat(num_return_sequences, 1)
    xgen = tokens.to(device)
    sample_rng = torch.Generator(device=device)
    sample_rng.manual_seed(42 + ddp_rank)
    while xgen.size(1) < max_length:
        # forward the model to get the logits
        with torch.no_grad():
            with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
                logits, loss = model(xgen) # (B, T, vocab_size)
            # take the logits at the last position
            logits = logits[:, -1, :] # (B, vocab_size)
            # get the probabilities
            probs = F.softmax(logits, dim=-1)
            # do top-k sampling of 50 (huggingface pipeline default)
            topk_probs, topk_indices = torch.topk(probs, 50, dim=-1)
            # select a token from the top-k probabilities
            # note: multinomial does not demand the input to sum to 1
            ix = torch.multinomial(topk_probs, 1, generator=sample_rng) # (B, 1)
            # gather the corresponding indices
            xcol = torch.gather(topk_indices, -1, ix) # (B, 1)
            # append to the sequence
            xgen = torch.cat((xgen, xcol), dim=1)
    samples = []
    for i in range(num_return_sequences):
        tokens = xgen[i, :max_length].tolist()
        decoded = decode(tokens)
        print(f"rank {ddp_rank} sample {i}: {decoded}")
        samples.append(decoded)
    return xgen, samples


def make_train_step(model, optimizer, grad_accum_steps, device_type):
    """The loop's optimization step, from zero_grad to optimizer.step(), on given micro-batches."""
    def train_step(xs, ys, lr):
        optimizer.zero_grad()
        loss_accum = 0.0
        for micro_step in range(grad_accum_steps):
            x, y = xs[micro_step], ys[micro_step]
            with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
                logits, loss = model(x, y)
            # we have to scale the loss to account for gradient accumulation,
            # because the gradients just add on each successive backward().
            loss = loss / grad_accum_steps
            loss_accum += loss.detach()
            loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for param_group in optimizer.param_groups:
            param_group['lr'] = lr
        optimizer.step()
        return loss_accum, norm
    return train_step


def train(s, steps, lr_fn=get_lr, compiled=False):
    """``steps`` iterations of the script's loop body (train mode, next_batch, the step)."""
    model, optimizer, device = s["model"], s["optimizer"], s["device"]
    step_fn = make_train_step(model, optimizer, s["grad_accum_steps"], s["device_type"])
    if compiled:
        step_fn = fw.compile(step_fn, mode="always")
    log = []
    for step in range(steps):
        model.train()
        xs, ys = [], []
        for micro_step in range(s["grad_accum_steps"]):
            x, y = s["train_loader"].next_batch()
            xs.append(x.to(device))
            ys.append(y.to(device))
        lr = lr_fn(step)
        loss_accum, norm = step_fn(xs, ys, lr)
        print(f"step {step:5d} | loss: {loss_accum.item():.6f} | lr {lr:.4e} | norm: {norm:.4f}")
        log.append((loss_accum.item(), float(norm), lr))
    return log, step_fn


def _fast_lr(it):
    """get_lr's shape with the tiny run's lengths: warm-up 2, decay to step 20."""
    global warmup_steps, max_steps, max_lr, min_lr
    saved = warmup_steps, max_steps, max_lr, min_lr
    warmup_steps, max_steps, max_lr = 2, 20, 1e-2
    min_lr = max_lr * 0.1
    try:
        return get_lr(it)
    finally:
        warmup_steps, max_steps, max_lr, min_lr = saved


# ---- tests ------------------------------------------------------------------------------------

def test_weight_tying_init_and_optimizer_groups():
    s = setup()
    model, opt = s["model"], s["optimizer"]
    assert model.transformer.wte.weight is model.lm_head.weight
    names = [n for n, _ in model.named_parameters()]
    assert "lm_head.weight" not in names or "transformer.wte.weight" not in names  # shared once
    assert len(names) == len(set(id(p) for p in model.parameters()))
    # NANOGPT_SCALE_INIT: c_proj std 0.02 / sqrt(2 * n_layer) = 0.01; others 0.02; biases 0
    cp = np.concatenate([b.attn.c_proj.weight.detach().numpy().ravel() for b in model.transformer.h]
                        + [b.mlp.c_proj.weight.detach().numpy().ravel() for b in model.transformer.h])
    fc = np.concatenate([b.mlp.c_fc.weight.detach().numpy().ravel() for b in model.transformer.h])
    assert 0.008 < cp.std() < 0.012 and 0.018 < fc.std() < 0.022, (cp.std(), fc.std())
    assert float(model.transformer.h[0].attn.c_attn.bias.abs().sum()) == 0.0
    assert float(model.transformer.ln_f.weight.sum()) == 32.0
    # decay groups by p.dim() >= 2; fused detection (cpu: not fused)
    decay, nodecay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and nodecay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in nodecay["params"])
    assert len(decay["params"]) + len(nodecay["params"]) == len(names)
    assert len(decay["params"]) == 2 + 4 * TINY["n_layer"]  # wte(=lm_head), wpe, 4 per block
    assert decay["betas"] == (0.9, 0.95) and decay["eps"] == 1e-8 and decay["fused"] is False
    assert fw.get_float32_matmul_precision() == "high"


def test_data_loader_positions_and_shard_rollover():
    loader = DataLoaderLite(B=2, T=8, process_rank=0, num_processes=1, split="train")
    assert [os.path.basename(p) for p in loader.shards] == ["edufineweb_train_000000",
                                                            "edufineweb_train_000001"]
    stream = SHARDS["edufineweb_train_000000"].astype(np.int64)
    n_batches = (len(stream) - 1) // 16
    for i in range(n_batches):
        x, y = loader.next_batch()
        assert x.dtype == fw.int64 and x.shape == (2, 8)
        np.testing.assert_array_equal(x.numpy().ravel(), stream[16 * i:16 * i + 16])
        np.testing.assert_array_equal(y.numpy().ravel(), stream[16 * i + 1:16 * i + 17])
    # the last batch that fits moved the loader to shard 1, position 0
    assert loader.current_shard == 1 and loader.current_position == 0
    x, _ = loader.next_batch()
    np.testing.assert_array_equal(x.numpy().ravel(), SHARDS["edufineweb_train_000001"][:16])
    # a second process starts B*T further and strides by B*T*2
    r1 = DataLoaderLite(B=2, T=8, process_rank=1, num_processes=2, split="val")
    x, _ = r1.next_batch()
    np.testing.assert_array_equal(x.numpy().ravel(), SHARDS["edufineweb_val_000000"][16:32])
    assert r1.current_position == 48


def test_get_lr_schedule():
    assert get_lr(0) == pytest.approx(6e-4 / 715)
    assert get_lr(714) == pytest.approx(6e-4)
    assert get_lr(715) == pytest.approx(6e-4)
    assert get_lr(19073) == pytest.approx(6e-5)
    assert get_lr(30000) == pytest.approx(6e-5)
    mid = 715 + (19073 - 715) // 2
    assert get_lr(mid) == pytest.approx(6e-5 + 0.5 * (1 + math.cos(math.pi * 9179 / 18358)) * 5.4e-4)


def _np_forward(model, idx):
    """GPT.forward in NumPy float64: causal attention, tanh-GELU, tied head."""
    p = np_params(model.state_dict())
    ln, lin = partial(np_layer_norm, p), partial(np_linear, p)

    idx = idx.numpy()
    B, T = idx.shape
    C, H = model.config.n_embd, model.config.n_head
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    for i in range(model.config.n_layer):
        pre = f"transformer.h.{i}"
        qkv = lin(ln(x, pre + ".ln_1"), pre + ".attn.c_attn")
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(B, T, H, C // H).transpose(0, 2, 1, 3)
                   for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(C // H)
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        x = x + lin(o.transpose(0, 2, 1, 3).reshape(B, T, C), pre + ".attn.c_proj")
        h = lin(ln(x, pre + ".ln_2"), pre + ".mlp.c_fc")
        h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
        x = x + lin(h, pre + ".mlp.c_proj")
    return ln(x, "transformer.ln_f") @ p["transformer.wte.weight"].T


def test_forward_matches_numpy_and_is_causal():
    fw.manual_seed(0)
    model = GPT(GPTConfig(**TINY))
    for prm in model.parameters():  # larger weights than the init: visible attention effects
        prm.data.normal_(0.0, 0.3)
    idx = fw.randint(0, 64, (2, 7))
    tgt = fw.randint(0, 64, (2, 7))
    with fw.no_grad():
        logits, loss = model(idx, tgt)
    ref = _np_forward(model, idx)
    np.testing.assert_allclose(logits.numpy(), ref, rtol=1e-4, atol=1e-4)
    lse = np.log(np.exp(ref - ref.max(-1, keepdims=True)).sum(-1)) + ref.max(-1)
    nll = lse - np.take_along_axis(ref, tgt.numpy()[..., None], -1)[..., 0]
    assert loss.item() == pytest.approx(nll.mean(), rel=1e-4)
    idx2 = idx.clone()
    idx2[:, -1] = (idx[:, -1] + 1) % 64
    with fw.no_grad():
        l2 = model(idx2)[0].numpy()
    np.testing.assert_array_equal(l2[:, :-1], logits.numpy()[:, :-1])  # the future is hidden


def test_training_with_grad_accumulation_lowers_loss_and_checkpoints(tmp_path):
    s = setup()
    assert s["grad_accum_steps"] == 2
    val0 = validate(s["model"], s["val_loader"], s["device"], s["device_type"])
    log, _ = train(s, 12, lr_fn=_fast_lr)
    losses = [loss for loss, _, _ in log]
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < 0.7 * losses[0], losses
    assert log[0][2] == pytest.approx(5e-3) and log[1][2] == pytest.approx(1e-2)
    val1 = validate(s["model"], s["val_loader"], s["device"], s["device_type"])
    assert val1.item() < 0.7 * val0.item(), (val0.item(), val1.item())

    # checkpoint as the script writes it, then load it into a fresh model
    raw_model, step = s["raw_model"], 12
    checkpoint_path = os.path.join(str(tmp_path), f"model_{step:05d}.pt")
    checkpoint = {
        'model': raw_model.state_dict(),
        'config': raw_model.config,
        'step': step,
        'val_loss': val1.item()
    }
    torch.save(checkpoint, checkpoint_path)
    ck = torch.load(checkpoint_path, weights_only=False)
    assert ck['step'] == 12 and ck['config'] == GPTConfig(**TINY) and ck['val_loss'] == val1.item()
    fresh = GPT(ck['config'])
    fresh.load_state_dict(ck['model'])
    assert fresh.transformer.wte.weight is fresh.lm_head.weight  # still tied after loading
    fresh.eval()
    s["val_loader"].reset()
    x, y = s["val_loader"].next_batch()
    with fw.no_grad():
        np.testing.assert_array_equal(fresh(x, y)[0].numpy(), raw_model(x, y)[0].numpy())


def test_gradient_accumulation_equals_one_big_batch():
    """loss / grad_accum_steps summed over two micro-batches gives the gradient of the mean
    loss over the whole batch (float32, no autocast)."""
    fw.manual_seed(0)
    model = GPT(GPTConfig(**TINY))
    loader = DataLoaderLite(B=4, T=16, process_rank=0, num_processes=1, split="train")
    x, y = loader.next_batch()
    model(x, y)[1].backward()
    big = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    for i in range(2):
        loss = model(x[2 * i:2 * i + 2], y[2 * i:2 * i + 2])[1] / 2
        loss.backward()
    for g, p in zip(big, model.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-4, atol=1e-6)


def test_sampling_is_seeded_and_follows_topk():
    s = setup()
    train(s, 4, lr_fn=_fast_lr)
    xgen, samples = generate(s["model"], s["device"], s["device_type"])
    assert xgen.shape == (4, 14) and xgen.dtype == fw.int64
    assert all(smp.startswith("hello, i am") and len(smp) == 14 for smp in samples)
    xgen2, _ = generate(s["model"], s["device"], s["device_type"])
    np.testing.assert_array_equal(xgen.numpy(), xgen2.numpy())  # manual_seed(42 + rank)
    xgen3, _ = generate(s["model"], s["device"], s["device_type"], ddp_rank=1)
    assert not np.array_equal(xgen.numpy(), xgen3.numpy())
    # topk(50) keeps indices into the vocabulary; gather maps the sampled column back
    probs = fw.softmax(fw.tensor([[0.0, 3.0, 1.0, 2.0] + [-9.0] * 60]), dim=-1)
    topk_probs, topk_indices = torch.topk(probs, 50, dim=-1)
    assert topk_indices[0, :4].tolist() == [1, 3, 2, 0]
    g = torch.Generator(device="cpu")
    g.manual_seed(0)
    ix = torch.multinomial(topk_probs.repeat(2000, 1), 1, generator=g)
    picked = torch.gather(topk_indices.repeat(2000, 1), -1, ix).numpy().ravel()
    freq = np.bincount(picked, minlength=64) / 2000
    np.testing.assert_allclose(freq[:4], probs.numpy()[0, :4], atol=0.04)


def _run(compiled, steps=4):
    s = setup()
    log, fn = train(s, steps, lr_fn=_fast_lr, compiled=compiled)
    state = {k: v.detach().numpy().copy() for k, v in s["model"].state_dict().items()}
    state["lr"] = np.array([g["lr"] for g in s["optimizer"].param_groups])  # set in the step
    return log, state, fn


def test_compiled_training_step_matches_eager():
    l1, s1, _ = _run(False)
    l2, s2, fn = _run(True)
    st = fn.stats()
    assert st["eager_reason"] is None and st["num_recompiles"] == 0, st
    assert st["captures"] == 1, st
    np.testing.assert_allclose([x[0] for x in l1], [x[0] for x in l2], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([x[1] for x in l1], [x[1] for x in l2], rtol=1e-4, atol=1e-5)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_use_compile_model_trains_like_eager():
    """``model = torch.compile(model)`` (the script's use_compile=True): the compiled forward
    under autocast, eager backward through it."""
    s_eager, s_comp = setup(), setup(use_compile=True)
    l1, _ = train(s_eager, 3, lr_fn=_fast_lr)
    l2, _ = train(s_comp, 3, lr_fn=_fast_lr)
    np.testing.assert_allclose([x[0] for x in l1], [x[0] for x in l2], rtol=1e-4, atol=1e-5)
    st = s_comp["model"].stats()
    assert st["num_recompiles"] == 0, st
    v1 = validate(s_eager["model"], s_eager["val_loader"], "cpu", "cpu")
    v2 = validate(s_comp["model"], s_comp["val_loader"], "cpu", "cpu")
    assert v1.item() == pytest.approx(v2.item(), rel=1e-4)


def test_gradcheck_float64():
    fw.manual_seed(0)
    model = GPT(GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=2, n_embd=4)).to(torch.float64)
    idx = fw.tensor([[0, 3, 1], [4, 2, 2]])
    tgt = fw.tensor([[3, 1, 0], [2, 2, 0]])
    names = ["lm_head.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
             "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.ln_1.weight"]
    params = dict(model.named_parameters(remove_duplicate=False))
    for n in names:
        params[n].data.normal_(0.0, 0.5)

    def f(*ws):
        # the tied weight is passed once, under both of its names, as a user would
        d = dict(zip(names, ws))
        d["transformer.wte.weight"] = d["lm_head.weight"]
        return fw.func.functional_call(model, d, (idx, tgt), tie_weights=True)[1]

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert fw.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_onnx_export_eval_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    model = GPT(GPTConfig(**TINY))
    model.eval()
    path = str(tmp_path / "gpt.onnx")
    idx = fw.randint(0, 64, (2, 16))
    fw.onnx.export(model, (idx,), path, input_names=["idx"], output_names=["logits"],
                   dynamic_axes={"idx": {0: "B"}})
    idx = fw.randint(0, 64, (3, 16))
    outs = ort.InferenceSession(path).run(None, {"idx": idx.numpy()})
    with fw.no_grad():
        np.testing.assert_allclose(outs[0], model(idx)[0].numpy(), rtol=1e-4, atol=1e-5)
