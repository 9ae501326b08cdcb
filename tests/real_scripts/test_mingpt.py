# ruff: noqa: E501, UP031, UP045  (the ported script's own lines are kept as written)
"""pytorch/examples distributed/minGPT-ddp (mingpt/model.py, trainer.py, char_dataset.py and
main.py's get_train_objs) ported to ``fw``, run on one process.

The model, the optimizer's decay / no-decay groups, the character dataset, the trainer's
batch step (clip_grad_norm_, GradScaler/autocast), its snapshot save/load and generation
are the original's code with ``torch`` -> ``fw``. Changed beyond the rename: the text comes
from a small local file (fsspec -> open), and the torchrun / DDP set-up is dropped (the
framework has no distributed runtime): no DDP wrapper, DistributedSampler given
num_replicas=1 and rank=0, tensors moved to ``self.device`` (cpu) instead of the rank.
"""

import math
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Dict, Optional

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework.nn import functional as F
from framework.utils.data import DataLoader, Dataset, random_split
from framework.utils.data.distributed import DistributedSampler

from ._checks import np_layer_norm, np_linear, np_params

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


# ---- mingpt/model.py --------------------------------------------------------------------------

@dataclass
class GPTConfig:
    model_type: str = 'gpt2'
    # model configurations
    n_layer: int = None
    n_head: int = None
    n_embd: int =  None
    # openai's values for gpt2
    vocab_size: int = 50257
    block_size: int = 1024
    # dropout hyperparameters
    embd_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    attn_pdrop: float = 0.1

@dataclass
class OptimizerConfig:
    learning_rate: float = 3e-4
    weight_decay: float = 0.1

class MultiheadAttentionLayer(nn.Module):
    """
    A multi-head masked self-attention layer with a projection at the end.
    """

    def __init__(self, config, device="cpu", dtype=torch.float32):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.resid_drop = nn.Dropout(config.resid_pdrop)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, device=device, dtype=dtype)
        self.register_buffer("mask", torch.tril(torch.ones(config.block_size, config.block_size))
                             .view(1, 1, config.block_size, config.block_size))
        self.attn = torch.nn.MultiheadAttention(
            embed_dim=config.n_embd,
            num_heads=config.n_head,
            dropout=config.attn_pdrop,
            batch_first=True,
            device=device,
            dtype=dtype
        )

    def forward(self, x):
        _, seq_size, _ = x.size()
        y = self.attn(x, x, x, attn_mask=self.mask[0, 0, :seq_size, :seq_size])[0]
        y = self.resid_drop(self.c_proj(y))
        return y

class Block(nn.Module):
    """ an unassuming Transformer block """
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.attn = MultiheadAttentionLayer(config)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.resid_pdrop),
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x

class EmbeddingStem(nn.Module):
    def __init__(self, config: GPTConfig, device="cpu", dtype=torch.float32):
        super().__init__()
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd, device=device, dtype=dtype)
        self.pos_emb = nn.Parameter(torch.zeros(1, config.block_size, config.n_embd, device=device, dtype=dtype))
        self.drop = nn.Dropout(config.embd_pdrop)
        self.block_size = config.block_size

    def reset_parameters(self):
        self.tok_emb.reset_parameters()

    def forward(self, idx):
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"

        token_embeddings = self.tok_emb(idx)  # each index maps to a (learnable) embedding vector
        position_embeddings = self.pos_emb[:, :t, :]  # each position maps to a (learnable) position vector
        return self.drop(token_embeddings + position_embeddings)

class GPT(nn.Module):
    """ GPT Language Model """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.block_size = config.block_size
        config = self._set_model_config(config)

        # input embedding stem
        self.emb_stem = EmbeddingStem(config)
        # transformer
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])
        # decoder head
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        # init all weights, and apply a special scaled init to the residual projections, per GPT-2 paper
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith('c_proj.weight'):
                p.data.normal_(mean=0.0, std=0.02/math.sqrt(2 * config.n_layer))

        # report number of parameters (note we don't count the decoder parameters in lm_head)
        n_params = sum(p.numel() for p in self.blocks.parameters())
        print("number of parameters: %.2fM" % (n_params/1e6,))

    def _set_model_config(self, config):
        type_given = config.model_type is not None
        params_given = all([config.n_layer is not None, config.n_head is not None, config.n_embd is not None])
        # assert type_given ^ params_given # exactly one of these (XOR)
        if type_given and not params_given:
            # translate from model_type to detailed configuration
            config.__dict__.update({
                # names follow the huggingface naming conventions
                # GPT-1
                'openai-gpt':   dict(n_layer=12, n_head=12, n_embd=768),  # 117M params
                # GPT-2 configs
                'gpt2':         dict(n_layer=12, n_head=12, n_embd=768),  # 124M params
                'gpt2-medium':  dict(n_layer=24, n_head=16, n_embd=1024), # 350M params
                'gpt2-large':   dict(n_layer=36, n_head=20, n_embd=1280), # 774M params
                'gpt2-xl':      dict(n_layer=48, n_head=25, n_embd=1600), # 1558M params
                # Gophers
                'gopher-44m':   dict(n_layer=8, n_head=16, n_embd=512),
                # (there are a number more...)
                # I made these tiny models up
                'gpt-mini':     dict(n_layer=6, n_head=6, n_embd=192),
                'gpt-micro':    dict(n_layer=4, n_head=4, n_embd=128),
                'gpt-nano':     dict(n_layer=3, n_head=3, n_embd=48),
            }[config.model_type])
        return config

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def forward(self, idx, targets=None):
        x = self.emb_stem(idx)
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.head(x)

        # if we are given some desired targets also calculate the loss
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, do_sample=False, top_k=None):
        """
        Take a conditioning sequence of indices idx (LongTensor of shape (b,t)) and complete
        the sequence max_new_tokens times, feeding the predictions back into the model each time.
        Most likely you'll want to make sure to be in model.eval() mode of operation for this.
        """
        for _ in range(max_new_tokens):
            # if the sequence context is growing too long we must crop it at block_size
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size:]
            # forward the model to get the logits for the index in the sequence
            logits, _ = self(idx_cond)
            # pluck the logits at the final step and scale by desired temperature
            logits = logits[:, -1, :] / temperature
            # optionally crop the logits to only the top k options
            if top_k is not None:
                v, _ = torch.topk(logits, top_k)
                logits[logits < v[:, [-1]]] = -float('Inf')
            # apply softmax to convert logits to (normalized) probabilities
            probs = F.softmax(logits, dim=-1)
            # either sample from the distribution or take the most likely element
            if do_sample:
                idx_next = torch.multinomial(probs, num_samples=1)
            else:
                _, idx_next = torch.topk(probs, k=1, dim=-1)
            # append sampled index to the running sequence and continue
            idx = torch.cat((idx, idx_next), dim=1)

        return idx


def create_optimizer(model: torch.nn.Module, opt_config: OptimizerConfig):
    """
    This long function is unfortunately doing something very simple and is being very defensive:
    We are separating out all parameters of the model into two buckets: those that will experience
    weight decay for regularization and those that won't (biases, and layernorm/embedding weights).
    We are then returning the PyTorch optimizer object.
    """

    # separate out all parameters to those that will and won't experience regularizing weight decay
    decay = set()
    no_decay = set()
    whitelist_weight_modules = (torch.nn.Linear, )
    blacklist_weight_modules = (torch.nn.LayerNorm, torch.nn.Embedding)
    for mn, m in model.named_modules():
        for pn, p in m.named_parameters():
            fpn = '%s.%s' % (mn, pn) if mn else pn # full param name
            # random note: because named_modules and named_parameters are recursive
            # we will see the same tensors p many many times. but doing it this way
            # allows us to know which parent module any tensor p belongs to...
            if pn.endswith('bias'):
                # all biases will not be decayed
                no_decay.add(fpn)
            elif pn.endswith('weight') and isinstance(m, whitelist_weight_modules):
                # weights of whitelist modules will be weight decayed
                decay.add(fpn)
            elif pn.endswith('in_proj_weight'):
                # MHA projection layer
                decay.add(fpn)
            elif pn.endswith('weight') and isinstance(m, blacklist_weight_modules):
                # weights of blacklist modules will NOT be weight decayed
                no_decay.add(fpn)
            elif pn.endswith('pos_emb'):
                # positional embedding shouldn't be decayed
                no_decay.add(fpn)

    # validate that we considered every parameter
    param_dict = {pn: p for pn, p in model.named_parameters()}
    inter_params = decay & no_decay
    union_params = decay | no_decay
    assert len(inter_params) == 0, "parameters %s made it into both decay/no_decay sets!" % (str(inter_params), )
    assert len(param_dict.keys() - union_params) == 0, "parameters %s were not separated into either decay/no_decay set!" \
                                                % (str(param_dict.keys() - union_params), )

    # create the pytorch optimizer object
    optim_groups = [
        {"params": [param_dict[pn] for pn in sorted(list(decay))], "weight_decay": opt_config.weight_decay},
        {"params": [param_dict[pn] for pn in sorted(list(no_decay))], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(optim_groups, lr=opt_config.learning_rate, betas=(0.9, 0.95))
    return optimizer


# ---- mingpt/char_dataset.py ------------------------------------------------------------------

@dataclass
class DataConfig:
    path: str = None
    block_size: int = None
    train_split: float = None
    truncate: float = 1.0

class CharDataset(Dataset):

    def __init__(self, data_cfg: DataConfig): #data_path: str, block_size):
        data = open(data_cfg.path, "rb").read().decode('utf-8')  # fsspec.open(...).open()
        data = data[ : int(len(data) * data_cfg.truncate)]

        chars = sorted(list(set(data)))
        data_size, vocab_size = len(data), len(chars)
        print('Data has %d characters, %d unique.' % (data_size, vocab_size))

        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}
        self.block_size = data_cfg.block_size
        self.vocab_size = vocab_size
        self.data = data

    def __len__(self):
        return len(self.data) - self.block_size

    def __getitem__(self, idx):
        # grab a chunk of (block_size + 1) characters from the data
        chunk = self.data[idx:idx + self.block_size + 1]
        # encode every character to an integer
        dix = [self.stoi[s] for s in chunk]
        x = torch.tensor(dix[:-1], dtype=torch.long)
        y = torch.tensor(dix[1:], dtype=torch.long)
        return x, y


# ---- mingpt/trainer.py -------------------------------------------------------------------------

@dataclass
class TrainerConfig:
    max_epochs: int = None
    batch_size: int = None
    data_loader_workers: int = None
    grad_norm_clip: float = None
    snapshot_path: Optional[str] = None
    save_every: int = None
    use_amp: bool = None

@dataclass
class Snapshot:
    model_state: 'OrderedDict[str, torch.Tensor]'
    optimizer_state: Dict[str, Any]
    finished_epoch: int

class Trainer:

    def __init__(self, trainer_config: TrainerConfig, model, optimizer, train_dataset, test_dataset=None):
        self.config = trainer_config
        # set torchrun variables
        self.local_rank = int(os.environ["LOCAL_RANK"])
        self.global_rank = int(os.environ["RANK"])
        # set device
        # the original's torch.accelerator.current_accelerator() (device "cuda", no index):
        # this single-process port trains on the CPU
        self.acc = torch.device("cpu")
        self.device: torch.device = torch.device(f"{self.acc}:{self.local_rank}")
        self.device_type = self.device.type
        # data stuff
        self.train_dataset = train_dataset
        self.train_loader = self._prepare_dataloader(train_dataset)
        self.test_loader = self._prepare_dataloader(test_dataset) if test_dataset else None
        # initialize train states
        self.epochs_run = 0
        self.model = model.to(self.device)  # .to(self.local_rank): a cuda index in torch
        self.optimizer = optimizer
        self.save_every = self.config.save_every
        if self.config.use_amp:
            self.scaler = torch.amp.GradScaler(self.device_type)
        # load snapshot if available. only necessary on the first node.
        if self.config.snapshot_path is None:
            self.config.snapshot_path = "snapshot.pt"
        self._load_snapshot()
        # (single process: no DDP wrapper)

    def _prepare_dataloader(self, dataset: Dataset):
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            pin_memory=True,
            shuffle=False,
            num_workers=self.config.data_loader_workers,
            sampler=DistributedSampler(dataset, num_replicas=1, rank=0)  # no process group
        )

    def _load_snapshot(self):
        try:
            snapshot = open(self.config.snapshot_path, "rb")  # fsspec.open(...)
            with snapshot as f:
                snapshot_data = torch.load(f, map_location="cpu")
        except FileNotFoundError:
            print("Snapshot not found. Training model from scratch")
            return

        snapshot = Snapshot(**snapshot_data)
        self.model.load_state_dict(snapshot.model_state)
        self.optimizer.load_state_dict(snapshot.optimizer_state)
        self.epochs_run = snapshot.finished_epoch
        print(f"Resuming training from snapshot at Epoch {self.epochs_run}")


    def _run_batch(self, source, targets, train: bool = True) -> float:
        with torch.set_grad_enabled(train), torch.amp.autocast(device_type=self.device_type, dtype=torch.float16, enabled=(self.config.use_amp)):
            _, loss = self.model(source, targets)

        if train:
            self.optimizer.zero_grad(set_to_none=True)
            if self.config.use_amp:
                self.scaler.scale(loss).backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_norm_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_norm_clip)
                self.optimizer.step()

        return loss.item()

    def _run_epoch(self, epoch: int, dataloader: DataLoader, train: bool = True):
        if train:
            dataloader.sampler.set_epoch(epoch)
        for iter, (source, targets) in enumerate(dataloader):
            step_type = "Train" if train else "Eval"
            source = source.to(self.device)
            targets = targets.to(self.device)
            batch_loss = self._run_batch(source, targets, train)
            self.losses.setdefault(step_type, []).append(batch_loss)  # (test bookkeeping)
            if iter % 100 == 0:
                print(f"[RANK{self.global_rank}] Epoch {epoch} | Iter {iter} | {step_type} Loss {batch_loss:.5f}")

    def _save_snapshot(self, epoch):
        # capture snapshot
        model = self.model
        raw_model = model.module if hasattr(model, "module") else model
        snapshot = Snapshot(
            model_state=raw_model.state_dict(),
            optimizer_state=self.optimizer.state_dict(),
            finished_epoch=epoch
        )
        # save snapshot
        snapshot = asdict(snapshot)
        torch.save(snapshot, self.config.snapshot_path)

        print(f"Snapshot saved at epoch {epoch}")

    def train(self):
        self.losses = {}
        for epoch in range(self.epochs_run, self.config.max_epochs):
            epoch += 1
            self._run_epoch(epoch, self.train_loader, train=True)
            if self.local_rank == 0 and epoch % self.save_every == 0:
                self._save_snapshot(epoch)
            # eval run
            if self.test_loader:
                self._run_epoch(epoch, self.test_loader, train=False)


# ---- main.py: get_train_objs -------------------------------------------------------------------

def get_train_objs(gpt_cfg: GPTConfig, opt_cfg: OptimizerConfig, data_cfg: DataConfig):
    dataset = CharDataset(data_cfg)
    train_len = int(len(dataset) * data_cfg.train_split)
    train_set, test_set = random_split(dataset, [train_len, len(dataset) - train_len])

    gpt_cfg.vocab_size = dataset.vocab_size
    gpt_cfg.block_size = dataset.block_size
    model = GPT(gpt_cfg)
    optimizer = create_optimizer(model, opt_cfg)

    return model, optimizer, train_set, test_set


# ---- test harness ------------------------------------------------------------------------------

TEXT = "the cat sat on the mat. the dog sat on the log. " * 6


@pytest.fixture
def text_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    path = tmp_path / "input.txt"
    path.write_text(TEXT)
    return str(path)


def _cfgs(path, tmp_dir, **trainer):
    gpt_cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16)
    opt_cfg = OptimizerConfig(learning_rate=3e-3, weight_decay=0.1)
    data_cfg = DataConfig(path=path, block_size=8, train_split=0.9)
    t = dict(max_epochs=1, batch_size=32, data_loader_workers=0, grad_norm_clip=1.0,
             snapshot_path=os.path.join(tmp_dir, "gpt_snapshot.pt"), save_every=1,
             use_amp=False)
    t.update(trainer)
    return gpt_cfg, opt_cfg, data_cfg, TrainerConfig(**t)


def _trainer(path, tmp_dir, seed=0, **trainer):
    fw.manual_seed(seed)
    gpt_cfg, opt_cfg, data_cfg, trainer_cfg = _cfgs(path, tmp_dir, **trainer)
    model, optimizer, train_data, test_data = get_train_objs(gpt_cfg, opt_cfg, data_cfg)
    return Trainer(trainer_cfg, model, optimizer, train_data, test_data)


def test_char_dataset_and_split(text_file):
    ds = CharDataset(DataConfig(path=text_file, block_size=8, train_split=0.9))
    assert ds.vocab_size == len(set(TEXT)) and len(ds) == len(TEXT) - 8
    x, y = ds[3]
    assert x.dtype == fw.int64 and x.shape == (8,)
    assert "".join(ds.itos[int(i)] for i in x) == TEXT[3:11]
    np.testing.assert_array_equal(x.numpy()[1:], y.numpy()[:-1])
    fw.manual_seed(0)
    a, b = random_split(ds, [250, len(ds) - 250])
    assert len(a) == 250 and sorted(a.indices + b.indices) == list(range(len(ds)))


def test_optimizer_groups_by_module_type(text_file):
    """Linear weights and MHA in_proj/out_proj weights decay; biases, LayerNorm, Embedding
    and pos_emb do not (the script asserts every parameter lands in exactly one group)."""
    fw.manual_seed(0)
    gpt_cfg, opt_cfg, data_cfg, _ = _cfgs(text_file, ".")
    model, opt, _, _ = get_train_objs(gpt_cfg, opt_cfg, data_cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = sorted(names[id(p)] for p in opt.param_groups[0]["params"])
    no_decay = sorted(names[id(p)] for p in opt.param_groups[1]["params"])
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert "blocks.0.attn.attn.in_proj_weight" in decay
    assert "blocks.0.attn.attn.out_proj.weight" in decay  # out_proj is an nn.Linear
    assert "blocks.1.attn.c_proj.weight" in decay and "head.weight" in decay
    assert {"emb_stem.pos_emb", "emb_stem.tok_emb.weight", "ln_f.weight",
            "blocks.0.attn.attn.in_proj_bias", "blocks.0.attn.attn.out_proj.bias"} <= set(no_decay)
    assert len(decay) + len(no_decay) == len(names)
    # GPT-2 init: c_proj weights get std 0.02/sqrt(2 * n_layer), LayerNorms ones/zeros
    assert float(model.ln_f.weight.sum()) == 16.0 and float(model.ln_f.bias.abs().sum()) == 0.0
    cw = np.concatenate([b.attn.c_proj.weight.detach().numpy().ravel() for b in model.blocks])
    assert 0.005 < cw.std() < 0.015 and float(model.blocks[0].attn.c_proj.bias.abs().sum()) == 0


def _np_forward(model, idx):
    """GPT.forward (eval) in NumPy float64: pre-LN blocks, MultiheadAttention with
    the script's float tril mask ADDED to the scores (a float attn_mask is additive in PyTorch:
    this mask biases, it does not hide the future), exact GELU, bias-free head."""
    p = np_params(model.state_dict())
    from math import erf
    verf = np.vectorize(erf)
    ln, lin = partial(np_layer_norm, p), partial(np_linear, p)

    idx = idx.numpy()
    B, T = idx.shape
    x = p["emb_stem.tok_emb.weight"][idx] + p["emb_stem.pos_emb"][:, :T]
    for i in range(len(model.blocks)):
        pre = f"blocks.{i}"
        h = ln(x, pre + ".ln1")
        w, b = p[pre + ".attn.attn.in_proj_weight"], p[pre + ".attn.attn.in_proj_bias"]
        E = h.shape[-1]
        H = model.blocks[i].attn.attn.num_heads
        q, k, v = (h @ w[j * E:(j + 1) * E].T + b[j * E:(j + 1) * E] for j in range(3))
        q, k, v = (t.reshape(B, T, H, E // H).transpose(0, 2, 1, 3) for t in (q, k, v))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(E // H) + p[pre + ".attn.mask"][0, 0, :T, :T]
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        o = lin(o.transpose(0, 2, 1, 3).reshape(B, T, E), pre + ".attn.attn.out_proj")
        x = x + lin(o, pre + ".attn.c_proj")
        h = lin(ln(x, pre + ".ln2"), pre + ".mlp.0")
        h = 0.5 * h * (1 + verf(h / np.sqrt(2)))
        x = x + lin(h, pre + ".mlp.2")
    return lin(ln(x, "ln_f"), "head", bias=False)


def test_forward_matches_numpy_with_the_additive_float_mask(text_file):
    fw.manual_seed(0)
    gpt_cfg, opt_cfg, data_cfg, _ = _cfgs(text_file, ".")
    model, _, _, _ = get_train_objs(gpt_cfg, opt_cfg, data_cfg)
    for prm in model.parameters():  # larger weights than the 0.02 init: a visible mask effect
        prm.data.normal_(0.0, 0.3)
    model.eval()
    idx = fw.randint(0, model.head.out_features, (2, 6))
    with fw.no_grad():
        logits, loss = model(idx)
    assert loss is None and logits.shape == (2, 6, model.head.out_features)
    np.testing.assert_allclose(logits.numpy(), _np_forward(model, idx), rtol=1e-4, atol=1e-5)
    # the float mask does not hide the future: changing the last token changes position 0
    idx2 = idx.clone()
    idx2[:, -1] = (idx[:, -1] + 1) % model.head.out_features
    with fw.no_grad():
        assert not np.allclose(model(idx2)[0].numpy()[:, 0], logits.numpy()[:, 0])


def test_trainer_lowers_loss_and_snapshot_resumes(text_file, tmp_path):
    trainer = _trainer(text_file, str(tmp_path), max_epochs=3, save_every=1)
    trainer.train()
    train_losses = trainer.losses["Train"]
    assert len(train_losses) == 3 * math.ceil(len(trainer.train_dataset) / 32)
    assert np.mean(train_losses[-3:]) < 0.7 * train_losses[0], train_losses
    assert trainer.losses["Eval"][-1] < 0.8 * trainer.losses["Eval"][0]
    snap = fw.load(trainer.config.snapshot_path)
    assert snap["finished_epoch"] == 3 and set(snap) == {"model_state", "optimizer_state",
                                                         "finished_epoch"}

    # a new trainer (same seed: the same random_split; its fresh weights are the untrained
    # ones) finds the snapshot: the trained weights and optimizer state, epochs_run = 3
    other = _trainer(text_file, str(tmp_path), seed=0, max_epochs=4, save_every=1)
    assert other.epochs_run == 3
    for (k, a), b in zip(trainer.model.state_dict().items(), other.model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    sa, sb = trainer.optimizer.state_dict(), other.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(sa["state"][i][key].numpy(), sb["state"][i][key].numpy())
    # resuming continues exactly where the first trainer would have gone
    trainer.config.max_epochs = 4
    trainer.epochs_run = 3
    trainer.config.snapshot_path = str(tmp_path / "first.pt")
    fw.manual_seed(1)  # the same dropout masks
    trainer.train()
    fw.manual_seed(1)
    other.train()
    np.testing.assert_allclose(other.losses["Train"], trainer.losses["Train"], rtol=1e-6)


def test_trainer_with_amp(text_file, tmp_path):
    """use_amp=True (the script's config): autocast(float16) + GradScaler on the cpu."""
    trainer = _trainer(text_file, str(tmp_path), max_epochs=2, use_amp=True)
    trainer.train()
    losses = trainer.losses["Train"]
    assert all(np.isfinite(losses)) and np.mean(losses[-3:]) < losses[0], losses
    assert trainer.scaler.get_scale() > 0


def test_generate_greedy_and_sampled(text_file, tmp_path):
    trainer = _trainer(text_file, str(tmp_path), max_epochs=1)
    model = trainer.model.eval()
    ds = trainer.train_dataset.dataset
    ctx = torch.tensor([[ds.stoi[c] for c in "the "]], dtype=torch.long)
    out = model.generate(ctx, max_new_tokens=10)  # beyond block_size: the context is cropped
    assert out.shape == (1, 14) and out.dtype == fw.int64
    np.testing.assert_array_equal(out[:, :4].numpy(), ctx.numpy())
    # greedy: every new token is the argmax of the model on the (cropped) prefix
    with fw.no_grad():
        for t in range(4, 14):
            logits, _ = model(out[:, max(0, t - 8):t])
            assert int(logits[0, -1].argmax()) == int(out[0, t])
    fw.manual_seed(3)
    s1 = model.generate(ctx, max_new_tokens=6, do_sample=True, top_k=3, temperature=0.8)
    fw.manual_seed(3)
    s2 = model.generate(ctx, max_new_tokens=6, do_sample=True, top_k=3, temperature=0.8)
    np.testing.assert_array_equal(s1.numpy(), s2.numpy())
    # top_k=1 sampling is greedy decoding
    np.testing.assert_array_equal(model.generate(ctx, 6, do_sample=True, top_k=1).numpy(),
                                  out[:, :10].numpy())
    assert fw.is_grad_enabled()  # @torch.no_grad() on generate restores grad mode


def _compiled_losses(text_file, tmp_dir, compiled, steps=4):
    trainer = _trainer(text_file, tmp_dir, seed=0)
    trainer.losses = {}
    model, opt = trainer.model, trainer.optimizer

    def step(source, targets):
        _, loss = model(source, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.config.grad_norm_clip)
        opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    batches = list(trainer.train_loader)[:steps]
    model.train()
    fw.manual_seed(11)  # the same dropout masks in both runs
    losses = [float(fn(x, y)) for x, y in batches]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_training_step_matches_eager(text_file, tmp_path):
    l1, s1, _ = _compiled_losses(text_file, str(tmp_path), False)
    l2, s2, fn = _compiled_losses(text_file, str(tmp_path), True)
    st = fn.stats()
    assert st["eager_reason"] is None and st["captures"] == 1 and st["num_recompiles"] == 0, st
    assert st["cache_hits"] == 2, st  # call 1: eager warm-up (AdamW state), 2: capture
    np.testing.assert_allclose(l1, l2, rtol=1e-4, atol=1e-5)
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_gradcheck_float64():
    fw.manual_seed(0)
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=4, vocab_size=5, block_size=4,
                    embd_pdrop=0.0, resid_pdrop=0.0, attn_pdrop=0.0)
    model = GPT(cfg).to(torch.float64)
    idx = fw.tensor([[0, 3, 1], [4, 2, 2]])
    tgt = fw.tensor([[3, 1, -1], [2, 2, 0]])  # -1: ignore_index
    names = ["emb_stem.pos_emb", "blocks.0.attn.attn.in_proj_weight",
             "blocks.0.attn.c_proj.weight", "blocks.0.ln1.weight", "head.weight"]
    params = dict(model.named_parameters())
    for n in names:
        params[n].data.normal_(0.0, 0.5)

    def f(*ws):
        return fw.func.functional_call(model, dict(zip(names, ws)), (idx, tgt))[1]

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert fw.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_onnx_export_eval_matches_onnxruntime(text_file, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    gpt_cfg, opt_cfg, data_cfg, _ = _cfgs(text_file, ".")
    model, _, _, _ = get_train_objs(gpt_cfg, opt_cfg, data_cfg)
    model.eval()
    path = str(tmp_path / "gpt.onnx")
    idx = fw.randint(0, model.head.out_features, (2, 8))
    # GAP: a dynamic sequence axis ({1: "T"}) is refused: EmbeddingStem's
    # `assert t <= self.block_size` on a symbolic size cannot be traced (no SymInt hints);
    # torch.onnx.export(dynamo=True) turns it into a range constraint
    fw.onnx.export(model, (idx,), path, input_names=["idx"], output_names=["logits"],
                   dynamic_axes={"idx": {0: "B"}})
    idx = fw.randint(0, model.head.out_features, (3, 8))
    (y,) = ort.InferenceSession(path).run(None, {"idx": idx.numpy()})
    with fw.no_grad():
        np.testing.assert_allclose(y, model(idx)[0].numpy(), rtol=1e-4, atol=1e-5)
