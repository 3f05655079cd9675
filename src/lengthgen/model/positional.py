"""Positional schemes, each a small module chosen by name from `SCHEMES`.

Position IDs are data: every scheme receives explicit `position_ids` [B, T] and the model never
branches on the scheme. A scheme acts through up to three hooks, each a no-op by default:

- `embed(position_ids)`: a [B, T, D] tensor added to the token embeddings (APE, sinusoidal);
- `rotate(q, k, position_ids)`: transforms queries and keys [B, H, T, Dh] (RoPE);
- `bias(position_ids)`: an additive attention bias [B, H, T, T] (ALiBi).
"""

from __future__ import annotations

import math

import torch
from torch import nn

SCHEMES: dict[str, type["PositionalScheme"]] = {}


def register_scheme(name: str):
    def add(cls):
        cls.name = name
        SCHEMES[name] = cls
        return cls

    return add


def make_scheme(name: str, d_model: int, n_heads: int, max_positions: int, **params) -> "PositionalScheme":
    if name not in SCHEMES:
        raise ValueError(f"unknown positional scheme {name!r}; choose one of: {', '.join(sorted(SCHEMES))}")
    try:
        return SCHEMES[name](d_model=d_model, n_heads=n_heads, max_positions=max_positions, **params)
    except TypeError as err:
        raise ValueError(f"bad parameters for positional scheme {name!r}: {err}") from None


class PositionalScheme(nn.Module):
    name: str
    # True when positions index a finite trained table: such schemes need random offsets in
    # training so that every entry is trained, and refuse positions beyond the table.
    has_table = False

    def __init__(self, d_model: int, n_heads: int, max_positions: int):
        super().__init__()
        self.max_positions = max_positions

    def embed(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        return None

    def rotate(self, q: torch.Tensor, k: torch.Tensor, position_ids: torch.Tensor):
        return q, k

    def bias(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        return None


@register_scheme("nope")
class NoPE(PositionalScheme):
    """No positional information: the causal mask alone breaks symmetry."""


@register_scheme("ape")
class LearnedAbsolute(PositionalScheme):
    """Learned absolute position embeddings (GPT-2)."""

    has_table = True

    def __init__(self, d_model, n_heads, max_positions):
        super().__init__(d_model, n_heads, max_positions)
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def embed(self, position_ids):
        top = int(position_ids.max())
        if top >= self.max_positions:
            raise ValueError(f"position id {top} is beyond the learned position table (ids 0..{self.max_positions - 1}); "
                             "raise model.max_positions or evaluate shorter lengths")
        return self.table(position_ids)


@register_scheme("sinusoidal")
class Sinusoidal(PositionalScheme):
    """Fixed sin/cos features of the position (Vaswani et al. 2017), computed for any ID."""

    def __init__(self, d_model, n_heads, max_positions, base: float = 10000.0):
        super().__init__(d_model, n_heads, max_positions)
        half = (d_model + 1) // 2
        self.register_buffer("freq", base ** (-torch.arange(half, dtype=torch.float32) / half), persistent=False)
        self.d_model = d_model

    def embed(self, position_ids):
        angle = position_ids.float()[..., None] * self.freq
        return torch.cat([angle.sin(), angle.cos()], dim=-1)[..., : self.d_model]


@register_scheme("rope")
class Rotary(PositionalScheme):
    """Rotary embeddings (Su et al. 2021): rotate query/key pairs by position-dependent angles."""

    def __init__(self, d_model, n_heads, max_positions, base: float = 10000.0):
        super().__init__(d_model, n_heads, max_positions)
        head_dim = d_model // n_heads
        if head_dim % 2:
            raise ValueError(f"rope needs an even head dimension, got d_model/n_heads = {head_dim}")
        inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv, persistent=False)

    def rotate(self, q, k, position_ids):
        angle = position_ids.float()[:, None, :, None] * self.inv_freq  # [B, 1, T, Dh/2]
        cos, sin = angle.cos(), angle.sin()

        def turn(x):
            x1, x2 = x[..., 0::2], x[..., 1::2]
            return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)

        return turn(q), turn(k)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Geometric slopes 2^(-8h/H) of Press et al. (2022), extended to any head count."""
    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = [2 ** (-8 * (h + 1) / closest) for h in range(closest)]
    if closest < n_heads:  # interleave the slopes of 2*closest heads, as in the paper
        extra = [2 ** (-4 * (h + 1) / closest) for h in range(2 * closest)][0::2]
        slopes += extra[: n_heads - closest]
    return torch.tensor(slopes)


@register_scheme("alibi")
class ALiBi(PositionalScheme):
    """Linear attention bias -m_h * (i - j) on the distance between position IDs."""

    def __init__(self, d_model, n_heads, max_positions):
        super().__init__(d_model, n_heads, max_positions)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def bias(self, position_ids):
        dist = (position_ids[:, :, None] - position_ids[:, None, :]).float()  # [B, Tq, Tk]
        return -self.slopes[None, :, None, None] * dist[:, None]
