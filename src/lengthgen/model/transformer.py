"""A decoder-only transformer in one readable file (after nanoGPT's model.py).

Pre-LayerNorm blocks, GELU MLP, PyTorch scaled-dot-product attention. Positional information
comes only from the pluggable `PositionalScheme` and the explicit `position_ids`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .positional import PositionalScheme, make_scheme

# The architecture is `lengthgen.config.ModelConfig` (n_layers, n_heads, d_model, d_mlp, tie_weights,
# positional, positional_params, predict_positions, attention_scale); the task fixes the vocabulary
# and the run the size of the position table, so both come separately.


@dataclass
class Output:
    logits: torch.Tensor  # [B, T, V] next-token logits
    position_logits: torch.Tensor | None = None  # [B, T, max_positions] next token's position ID (PPC)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        # Scalable-Softmax (Nakanishi 2025): a query that sees n keys has its logits (content and
        # bias) multiplied by s_h·ln n, so attention stays as sharp on longer inputs as on the
        # training lengths instead of spreading over the extra keys. s_h is learned, starting at 1.
        self.log_scale = nn.Parameter(torch.ones(cfg.n_heads)) if cfg.attention_scale == "log_length" else None

    def forward(self, x, position_ids, pos: PositionalScheme, bias, cache: "LayerCache | None" = None,
                at: torch.Tensor | None = None):
        """`x` and `position_ids` cover the new tokens; with a cache, their keys and values join
        those of the earlier tokens, and `bias` holds the new tokens' rows. With `at` [B, S] (no
        cache), only the queries at those positions are computed: outputs [B, S, D]."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = pos.rotate(q, k, position_ids)
        if cache is not None:
            k, v = cache.extend(k, v)
        if at is None:
            query_pos = torch.arange(k.shape[2] - T, k.shape[2], device=x.device)[None]
        else:
            query_pos, q = at, q.gather(2, at[:, None, :, None].expand(-1, q.shape[1], -1, q.shape[3]))
            bias = self.query_rows(bias, at) if bias is not None else self.causal_rows(at, T, q.dtype)
        if self.log_scale is not None:
            q, bias = self.length_scaled(q, bias, query_pos)
        if bias is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        elif k.shape[2] == T:  # no earlier tokens
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new tokens after cached ones: query i sees every earlier token and new tokens <= i
            seen = torch.ones(T, k.shape[2], dtype=torch.bool, device=q.device).tril(k.shape[2] - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=seen)
        return self.out(y.transpose(1, 2).reshape(B, q.shape[2], D))

    @staticmethod
    def query_rows(bias: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """The rows of a [B or 1, H or 1, T, T] bias (causal mask folded in) at positions `at` [B, S]."""
        bias = bias.expand(at.shape[0], -1, -1, -1)
        return bias.gather(2, at[:, None, :, None].expand(-1, bias.shape[1], -1, bias.shape[3]))

    @staticmethod
    def causal_rows(at: torch.Tensor, keys: int, dtype) -> torch.Tensor:
        """The causal mask's rows [B, 1, S, keys] of the queries at positions `at` [B, S]: 0 up to
        the query, −inf after it."""
        after = torch.arange(keys, device=at.device) > at[:, None, :, None]
        return torch.zeros(after.shape, dtype=dtype, device=at.device).masked_fill(after, float("-inf"))

    def length_scaled(self, q, bias, query_pos: torch.Tensor):
        """q and the bias rows of the queries at `query_pos` [B or 1, S] scaled by s_h·ln(keys each
        one sees): a causal query at position i sees i + 1 keys."""
        seen = (query_pos + 1).to(q.dtype)
        factor = self.log_scale.to(q.dtype)[None, :, None] * seen.log()[:, None, :]  # [B or 1, H, S]
        q = q * factor[..., None]
        if bias is not None:  # the causal mask's -inf stays -inf; masked out before the product, so
            masked = torch.isinf(bias)  # no inf * 0 reaches the backward pass
            bias = (bias.masked_fill(masked, 0) * factor[..., None].to(bias.dtype)).masked_fill(masked, float("-inf"))
        return q, bias


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
    def __init__(self, cfg):
        super().__init__()
        d_mlp = cfg.d_mlp or 4 * cfg.d_model
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, cfg.d_model))

    def forward(self, x, position_ids, pos, bias, cache: LayerCache | None = None, at: torch.Tensor | None = None):
        """With `at` [B, S]: the block's outputs at those positions only, [B, S, D]."""
        rows = x if at is None else x.gather(1, at[..., None].expand(-1, -1, x.shape[2]))
        x = rows + self.attn(self.ln1(x), position_ids, pos, bias, cache, at)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, cfg, vocab_size: int, max_positions: int):
        """`cfg`: a `ModelConfig`; `max_positions`: IDs 0..max_positions-1 (the table of APE, the
        classes of the PPC position head)."""
        super().__init__()
        self.cfg, self.vocab_size, self.max_positions = cfg, vocab_size, max_positions
        self.tok = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = make_scheme(cfg.positional, cfg.d_model, cfg.n_heads, max_positions, **cfg.positional_params)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_weights:
            self.head.weight = self.tok.weight
        # PPC: predicts the position ID of the next token.
        self.position_head = nn.Linear(cfg.d_model, max_positions) if cfg.predict_positions else None
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    def _init(self, m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):  # token and position tables: cfg.embedding_init_std
            embeds = m is self.tok or m is self.pos.position_table()
            nn.init.normal_(m.weight, std=self.cfg.embedding_init_std if embeds else 0.02)

    def causal_bias(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        """The scheme's attention bias with the causal mask folded in (None: plain causal)."""
        bias = self.pos.bias(position_ids)
        if bias is None:
            return None
        T = position_ids.shape[1]
        future = torch.ones(T, T, dtype=torch.bool, device=bias.device).triu(1)
        return bias.masked_fill(future, float("-inf"))

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                cache: list[LayerCache] | None = None, at: torch.Tensor | None = None) -> Output:
        """Token logits [B, T, V] and, with a position head, position-ID logits [B, T, P].

        With `at` [B, S] (positions per example, e.g. the scored ones): the logits at those
        positions only, [B, S, ...]. The last block then computes its queries, MLP and the heads
        for those S positions instead of all T, which is most of a block when S << T.

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
        if at is not None and cache is not None:
            raise ValueError("outputs at chosen positions are for whole sequences, not incremental decoding")
        for i, block in enumerate(self.blocks):
            last = i == len(self.blocks) - 1
            x = block(x, new_ids, self.pos, bias, None if cache is None else cache[i], at if last else None)
        x = self.ln_f(x)
        return Output(self.head(x), None if self.position_head is None else self.position_head(x))

    @property
    def predicts_positions(self) -> bool:
        return self.position_head is not None

    def new_cache(self) -> list[LayerCache]:
        return [LayerCache() for _ in self.blocks]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
