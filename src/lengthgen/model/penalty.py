"""The positional-attention penalty of Huang et al. (docs/design.md §4.2).

For every layer and head, with P the learned position table and M = (P Wq)(P Wk)ᵀ, the penalty
is the mean over key positions j of Σ_{i≥j} M_ij² (only causal query/key pairs count). It pushes
the purely positional part of attention towards zero unless the task needs it.
"""

from __future__ import annotations

import torch

from ..errors import InputError


def positional_attention_penalty(model) -> torch.Tensor:
    table = model.pos.position_table()
    if table is None:
        raise InputError(f"the positional regulariser needs a learned position table of absolute positions; scheme "
                         f"{model.cfg.positional!r} has none (use positional: ape)")
    P = table.weight  # [N, D]
    N, D = P.shape
    H = model.cfg.n_heads
    causal = torch.ones(N, N, dtype=torch.bool, device=P.device).tril()  # i >= j
    total = P.new_zeros(())
    for block in model.blocks:
        Wq, Wk, _ = block.attn.qkv.weight.split(D, dim=0)  # each [D_out, D_in]
        q = (P @ Wq.T).view(N, H, D // H).transpose(0, 1)  # [H, N, Dh]
        k = (P @ Wk.T).view(N, H, D // H).transpose(0, 1)
        M = q @ k.transpose(1, 2)  # [H, N(query i), N(key j)]
        total = total + (M.square() * causal).sum(dim=1).mean(dim=1).sum()
    return total
