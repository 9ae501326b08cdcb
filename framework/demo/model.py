"""The demo's model: a small character-level GPT built from :mod:`framework.nn`.

Token and position embeddings, ``n_layer`` pre-norm transformer blocks (causal
self-attention through ``scaled_dot_product_attention(..., is_causal=True)``, so "cuda"
runs the fused attention kernel and the CPU a cached causal bias; then an MLP with GPT-2's
tanh-approximated GELU), a final LayerNorm and a linear head over the vocabulary
(optionally tied to the token embedding). The layout follows nanoGPT, so the
``state_dict`` keys read the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from framework import nn
from framework.errors import ArgumentError, ShapeError
from framework.nn import functional as F


@dataclass
class GPTConfig:
    """Model sizes. ``block_size`` is the longest context the position table covers."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    tie_weights: bool = False

    def to_dict(self) -> dict:
        """The fields as a plain dict (stored next to checkpoints)."""
        return asdict(self)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees itself and the past only
    (sdpa's ``is_causal``: no mask tensor is passed)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ArgumentError(f"CausalSelfAttention: n_embd={cfg.n_embd} is not a multiple "
                                f"of n_head={cfg.n_head}")
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        b, t, c = x.shape
        h = self.n_head
        q, k, v = self.c_attn(x).split(c, dim=2)
        q = q.view(b, t, h, c // h).transpose(1, 2)      # (B, H, T, hd)
        k = k.view(b, t, h, c // h).transpose(1, 2)
        v = v.view(b, t, h, c // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Linear -> GELU -> Linear, four times wider in the middle."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Character-level GPT: ``forward(idx)`` maps ``(B, T)`` token ids to ``(B, T, vocab)``
    logits (``T <= block_size``)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m) -> None:
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases.
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        if idx.ndim != 2:
            raise ShapeError(f"GPT: expected (batch, time) token ids, got shape "
                             f"{list(idx.shape)}")
        t = idx.shape[1]
        if isinstance(t, int) and t > self.config.block_size:
            raise ShapeError(f"GPT: sequence length {t} exceeds block_size "
                             f"{self.config.block_size}")
        # Positions 0..T-1 are computed from ``idx`` itself (not from fw.arange), so T can
        # stay symbolic when the model is exported with a dynamic sequence axis.
        pos = (idx[0] * 0 + 1).cumsum(0) - 1                 # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def num_parameters(self) -> int:
        """Number of distinct parameter elements (a tied head counts once)."""
        return sum(p.numel() for p in self.parameters())
