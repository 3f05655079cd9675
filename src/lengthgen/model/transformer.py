"""A decoder-only transformer in one readable file (after nanoGPT's model.py).

Pre-LayerNorm blocks, GELU MLP, PyTorch scaled-dot-product attention. Positional information
comes only from the pluggable `PositionalScheme` and the explicit `position_ids`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .positional import PositionalScheme, make_scheme


@dataclass
class TransformerConfig:
    vocab_size: int
    max_positions: int
    n_layers: int = 2
    n_heads: int = 2
    d_model: int = 64
    d_mlp: int | None = None  # None = 4 * d_model
    tie_weights: bool = True
    positional: str = "ape"
    positional_params: dict = field(default_factory=dict)
    position_vocab: int = 0  # > 0 adds a head predicting the next token's position ID (PPC)


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x, position_ids, pos: PositionalScheme, bias, cache: "LayerCache | None" = None):
        """`x` and `position_ids` cover the new tokens; with a cache, their keys and values join
        those of the earlier tokens, and `bias` holds the new tokens' rows."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = pos.rotate(q, k, position_ids)
        if cache is not None:
            k, v = cache.extend(k, v)
        if bias is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        elif k.shape[2] == T:  # no earlier tokens
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new tokens after cached ones: query i sees every earlier token and new tokens <= i
            seen = torch.ones(T, k.shape[2], dtype=torch.bool, device=q.device).tril(k.shape[2] - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class LayerCache:
    """One layer's keys and values [B, H, L, d] of the tokens decoded so far."""

    def __init__(self):
        self.k = self.v = None

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        d_mlp = cfg.d_mlp or 4 * cfg.d_model
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, cfg.d_model))

    def forward(self, x, position_ids, pos, bias, cache: LayerCache | None = None):
        x = x + self.attn(self.ln1(x), position_ids, pos, bias, cache)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = make_scheme(cfg.positional, cfg.d_model, cfg.n_heads, cfg.max_positions, **cfg.positional_params)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.tok.weight
        self.position_head = nn.Linear(cfg.d_model, cfg.position_vocab) if cfg.position_vocab else None
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def causal_bias(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        """The scheme's attention bias with the causal mask folded in (None: plain causal)."""
        bias = self.pos.bias(position_ids)
        if bias is None:
            return None
        T = position_ids.shape[1]
        future = torch.ones(T, T, dtype=torch.bool, device=bias.device).triu(1)
        return bias.masked_fill(future, float("-inf"))

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                cache: list[LayerCache] | None = None):
        """Token logits [B, T, V]; with a position head, also position-ID logits [B, T, P].

        Incremental decoding: with `cache` (one `LayerCache` per block, from `new_cache()`), `idx`
        holds only the tokens after those already cached and `position_ids` the IDs of all tokens
        so far; the logits are the new tokens'. Schemes see the whole ID sequence, so embeddings
        and biases that depend on more than a token's own ID stay exact.
        """
        if position_ids is None:
            if cache is not None:
                raise ValueError("incremental decoding needs the position IDs of all tokens so far")
            position_ids = torch.arange(idx.shape[1], device=idx.device).expand_as(idx)
        T = idx.shape[1]
        x = self.tok(idx)
        pe = self.pos.embed(position_ids)
        if pe is not None:
            x = x + pe[:, -T:].to(x.dtype)
        bias = self.causal_bias(position_ids)
        if bias is not None:
            bias = bias[..., -T:, :]
        new_ids = position_ids[:, -T:]
        for i, block in enumerate(self.blocks):
            x = block(x, new_ids, self.pos, bias, None if cache is None else cache[i])
        x = self.ln_f(x)
        logits = self.head(x)
        if self.position_head is None:
            return logits
        return logits, self.position_head(x)

    def new_cache(self) -> list[LayerCache]:
        return [LayerCache() for _ in self.blocks]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
