"""Stacked layers: E models of one architecture run as one (ensembles, training/ensemble.py).

The batched model is a copy of a member's `Transformer` whose Linear, LayerNorm and Embedding
layers are replaced by stacked versions holding every member's weights ([E, ...]). The batch is the
members' batches one after another ([E*B, T]), so `Transformer.forward` runs unchanged and each
stacked layer applies member m's weights to rows m*B..(m+1)*B-1 (batched matrix products).
Measured against `torch.vmap(functional_call)` on CPU this was as fast or faster (vmap has no CPU
batching rule for scaled-dot-product attention and loops over members there), and it keeps the
schemes whose bounds checks need concrete tensors (APE, Abacus) working. Schemes with parameters
outside those three layer types (FIRE) are refused. `StackedAdamW` and `clip_member_grads` are
AdamW and gradient clipping member by member.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .transformer import Transformer


class _Stacked(nn.Module):
    """A layer holding E members' weights; its input holds the members' rows one after another."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def members_view(self, x: torch.Tensor, members: int) -> torch.Tensor:
        if x.shape[0] != members * self.batch_size:
            raise ValueError(f"stacked layer got an input with leading size {x.shape[0]}, not members x batch = "
                             f"{members} x {self.batch_size}: this positional scheme applies parameters to "
                             "tensors without a batch dimension, which ensembles cannot batch; train alone")
        return x.reshape(members, -1, *x.shape[1:])


def _stack(params: list[nn.Parameter], shared: dict) -> nn.Parameter:
    """Members' copies of one parameter stacked along a new dim 0; tied parameters stay tied."""
    if id(params[0]) not in shared:
        shared[id(params[0])] = nn.Parameter(torch.stack([p.detach() for p in params]))
    return shared[id(params[0])]


class StackedLinear(_Stacked):
    def __init__(self, layers: list[nn.Linear], batch_size: int, shared: dict):
        super().__init__(batch_size)
        self.weight = _stack([l.weight for l in layers], shared)  # [E, out, in]
        self.bias = None if layers[0].bias is None else _stack([l.bias for l in layers], shared)

    def forward(self, x):
        E = self.weight.shape[0]
        xe = self.members_view(x, E).reshape(E, -1, x.shape[-1])
        w = self.weight.transpose(1, 2)
        y = torch.bmm(xe, w) if self.bias is None else torch.baddbmm(self.bias[:, None], xe, w)
        return y.reshape(*x.shape[:-1], -1)


class StackedLayerNorm(_Stacked):
    def __init__(self, layers: list[nn.LayerNorm], batch_size: int, shared: dict):
        super().__init__(batch_size)
        self.normalized_shape, self.eps = layers[0].normalized_shape, layers[0].eps
        if len(self.normalized_shape) != 1:
            raise InputError(f"ensembles batch LayerNorm over the last dimension only, got {self.normalized_shape}")
        self.weight = None if layers[0].weight is None else _stack([l.weight for l in layers], shared)
        self.bias = None if layers[0].bias is None else _stack([l.bias for l in layers], shared)

    def forward(self, x):
        y = F.layer_norm(x, self.normalized_shape, eps=self.eps)
        if self.weight is None and self.bias is None:
            return y
        E = (self.weight if self.weight is not None else self.bias).shape[0]
        ye = self.members_view(y, E).reshape(E, -1, y.shape[-1])
        if self.weight is not None:
            ye = ye * self.weight[:, None]
        if self.bias is not None:
            ye = ye + self.bias[:, None]
        return ye.reshape(y.shape)


class StackedEmbedding(_Stacked):
    def __init__(self, layers: list[nn.Embedding], batch_size: int, shared: dict):
        super().__init__(batch_size)
        first = layers[0]
        if first.padding_idx is not None or first.max_norm is not None or first.sparse:
            raise InputError("ensembles support plain embeddings only (no padding_idx, max_norm or sparse)")
        self.weight = _stack([l.weight for l in layers], shared)  # [E, rows, dim]

    def forward(self, idx):
        E, V = self.weight.shape[:2]
        member = torch.arange(E, device=idx.device).view(E, *[1] * idx.dim())
        shifted = (self.members_view(idx, E) + member * V).reshape(idx.shape)  # row v of member m: m*V + v
        return F.embedding(shifted, self.weight.flatten(0, 1))


STACKED = {nn.Linear: StackedLinear, nn.LayerNorm: StackedLayerNorm, nn.Embedding: StackedEmbedding}


def stack_models(models: list[Transformer], batch_size: int) -> Transformer:
    """One model running all `models` at once on inputs [E*batch_size, T] (member-major rows)."""
    batched = copy.deepcopy(models[0])
    shared: dict = {}
    for name, module in models[0].named_modules():
        kind = STACKED.get(type(module))
        if kind is None:
            continue
        parent, _, attr = name.rpartition(".")
        setattr(batched.get_submodule(parent), attr,
                kind([m.get_submodule(name) for m in models], batch_size, shared))
    stacked = {id(p) for p in shared.values()}
    loose = [n for n, p in batched.named_parameters() if id(p) not in stacked]
    if loose:
        raise InputError(f"positional scheme {models[0].cfg.positional!r} has parameters outside Linear, LayerNorm "
                         f"and Embedding layers ({', '.join(loose)}); ensembles cannot batch it: "
                         "train these runs alone")
    return batched


def select_members(batched: Transformer, keep: list[int]) -> None:
    """Keep only members `keep` (in that order) in every stacked layer, ties preserved."""
    index = torch.tensor(keep, device=next(batched.parameters()).device)
    fresh: dict = {}
    for module in batched.modules():
        if isinstance(module, _Stacked):
            for pname, p in list(module.named_parameters(recurse=False)):
                if id(p) not in fresh:
                    fresh[id(p)] = nn.Parameter(p.detach()[index])
                setattr(module, pname, fresh[id(p)])



class StackedAdamW:
    """AdamW over stacked parameters [E, ...], member by member what `torch.optim.AdamW` does with
    the groups of `training.build.make_optimizer` (weight decay on matrices only), with a learning rate per
    member. State per parameter: step count [E] (on the host: the bias corrections are computed
    there, once per step, instead of as a dozen tiny device kernels per parameter), first and
    second moments [E, ...]. The moment updates run as multi-tensor (foreach) kernels."""

    def __init__(self, params: dict[str, nn.Parameter], weight_decay: float, betas: tuple[float, float],
                 moments: list[dict], eps: float = 1e-8):
        self.params, self.betas, self.eps = params, betas, eps
        self.weight_decay = {n: weight_decay if p.dim() >= 3 else 0.0 for n, p in params.items()}  # member dim + 2
        self.state = {n: {"step": torch.stack([m[n]["step"].detach().cpu().double() for m in moments]),
                          **{key: torch.stack([m[n][key] for m in moments]).to(p.device)
                             for key in ("exp_avg", "exp_avg_sq")}} for n, p in params.items()}

    def member_state(self, name: str, m: int) -> dict:
        """Member m's state as `torch.optim.AdamW` holds it for one parameter."""
        device = self.params[name].device
        return {key: (value[m].to(device, torch.float32) if key == "step" else value[m].clone())
                for key, value in self.state[name].items()}

    def select(self, keep: list[int], params: dict[str, nn.Parameter]) -> None:
        index = torch.tensor(keep)
        device = next(iter(params.values())).device
        self.params = params
        self.state = {n: {k: v[index if k == "step" else index.to(device)] for k, v in s.items()}
                      for n, s in self.state.items()}

    @torch.no_grad()
    def step(self, lr: list[float]) -> None:
        """One update; `lr` holds each member's learning rate for this step."""
        b1, b2 = self.betas
        lr = torch.tensor(lr, dtype=torch.float64)
        # torch skips a parameter without a gradient, its step count included
        live = [n for n, p in self.params.items() if p.grad is not None]
        if not live:
            return
        # [3, E] per (step counts, weight decay): decay factor, step size, sqrt of bias correction 2
        factors = {}
        views = []
        for name in live:
            p, s = self.params[name], self.state[name]
            s["step"] += 1
            key = (tuple(s["step"].tolist()), self.weight_decay[name], p.dtype, p.device)
            if key not in factors:
                step = s["step"]
                host = torch.stack([1 - lr * self.weight_decay[name], lr / (1 - b1 ** step), (1 - b2 ** step).sqrt()])
                factors[key] = host.to(p.dtype).to(p.device)
            shape = (3, -1) + (1,) * (p.dim() - 1)
            views.append(factors[key].view(shape))
        params = [self.params[n] for n in live]
        grads = [p.grad for p in params]
        exp_avgs = [self.state[n]["exp_avg"] for n in live]
        exp_avg_sqs = [self.state[n]["exp_avg_sq"] for n in live]
        for name, p, f in zip(live, params, views):
            if self.weight_decay[name]:
                p.mul_(f[0])
        torch._foreach_lerp_(exp_avgs, grads, 1 - b1)
        torch._foreach_mul_(exp_avg_sqs, b2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - b2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        for p, m, d, f in zip(params, exp_avgs, denoms, views):
            p.sub_(m / d.div_(f[2]).add_(self.eps) * f[1])


def clip_member_grads(params: dict[str, nn.Parameter], max_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_` applied to each member's gradients separately."""
    grads = [p.grad for p in params.values() if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # [params, E]
    coef = (max_norm / (torch.linalg.vector_norm(norms, dim=0) + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))
