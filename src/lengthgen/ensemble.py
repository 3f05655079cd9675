"""Ensembles: E runs of one architecture trained as one batched model (one forward and backward).

Members may differ only in `seed` and `train.lr`. Each member is an ordinary run: it starts from
the weights `train_run` would build for its seed, sees exactly the batches `train_batch(task,
seed, step, ...)` it would see alone, gets its own learning rate, gradient clipping, AdamW state,
early stopping, checkpoints and results, and lands in the results store under its own config key
(only `extra.ensemble` tells it was trained in an ensemble).

How the batching works: the model is a copy of a member's `Transformer` whose Linear, LayerNorm
and Embedding layers are replaced by stacked versions holding every member's weights ([E, ...]).
The batch is the members' batches one after another ([E*B, T]), so `Transformer.forward` runs
unchanged and each stacked layer applies member m's weights to rows m*B..(m+1)*B-1 (batched
matrix products). Measured against `torch.vmap(functional_call)` on CPU this was as fast or faster
(vmap has no CPU batching rule for scaled-dot-product attention and loops over members there), and
it keeps the schemes whose bounds checks need concrete tensors (APE, Abacus) working.
Schemes with parameters outside those three layer types (FIRE) are refused.

Checkpoints are the same files `train_run` writes (`<root>/checkpoints/<key>.pt`), so a member
can resume alone, in another ensemble, or from a checkpoint written by a run trained alone.
A member that stops (steps done, early stop, divergence) is finished and leaves the batch: its
parameters and optimizer state no longer change.
"""

from __future__ import annotations

import copy
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .config import ConfigError, RunConfig
from .data import Batch, TrainBatches
from .evaluate import autocast
from .model import Transformer
from .regularizer import positional_attention_penalty
from .store import ResultsStore
from .tasks import PAD
from .train import (build_model, checkpoint_path, finish, id_check_due, log_step, longest_length, lr_factor,
                    make_optimizer, output_loss, resolve_device, run_record, save_atomic, stops_early, uses_offsets)

FREE_FIELDS = ("seed", "train.lr")  # what ensemble members may differ in


# -- configs ----------------------------------------------------------------------------------------


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def shared_fields(cfg: RunConfig) -> dict:
    """Every config field that ensemble members must share (all but name, experiment, seed, lr)."""
    fields = _flat(cfg.model_dump(mode="json", exclude={"name", "experiment"}))
    for free in FREE_FIELDS:
        fields.pop(free)
    return fields


def check_members(configs: list[RunConfig]) -> None:
    """Fail unless the configs can train as one ensemble: same everything but seed and train.lr."""
    if not configs:
        raise ConfigError("an ensemble needs at least one run config")
    if configs[0].train.length_buckets != 1:
        raise ConfigError("ensembles train every member on one padded batch: set train.length_buckets: 1 "
                          f"(got {configs[0].train.length_buckets})")
    first = shared_fields(configs[0])
    seen = {}
    for i, cfg in enumerate(configs):
        label = f"member {i} ({cfg.name or cfg.key()})"
        fields = shared_fields(cfg)
        diff = sorted(k for k in first.keys() | fields.keys() if first.get(k) != fields.get(k))
        if diff:
            shown = ", ".join(f"{k} ({first.get(k)!r} vs {fields.get(k)!r})" for k in diff)
            raise ConfigError(f"ensemble members may differ only in {' and '.join(FREE_FIELDS)}; {label} differs "
                              f"from member 0 in: {shown}")
        if cfg.key() in seen:
            raise ConfigError(f"{label} is the same run as member {seen[cfg.key()]} (same seed and train.lr)")
        seen[cfg.key()] = i


def group_members(configs: list[RunConfig], size: int) -> list[list[RunConfig]]:
    """Split configs into ensembles of at most `size` compatible runs (order kept within a group)."""
    if size < 1:
        raise ConfigError(f"ensemble size must be at least 1, got {size}")
    groups: dict[str, list[RunConfig]] = {}
    for cfg in configs:
        groups.setdefault(json.dumps(shared_fields(cfg), sort_keys=True), []).append(cfg)
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


# -- the stacked model ------------------------------------------------------------------------------


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
            raise ValueError(f"ensembles batch LayerNorm over the last dimension only, got {self.normalized_shape}")
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
            raise ValueError("ensembles support plain embeddings only (no padding_idx, max_norm or sparse)")
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
        raise ValueError(f"positional scheme {models[0].cfg.positional!r} has parameters outside Linear, LayerNorm "
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


# -- optimizer --------------------------------------------------------------------------------------


class StackedAdamW:
    """AdamW over stacked parameters [E, ...], member by member what `torch.optim.AdamW` does with
    the groups of `train.make_optimizer` (weight decay on matrices only), with a learning rate per
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


# -- training ---------------------------------------------------------------------------------------


def _pad_to(batch: Batch, T: int) -> Batch:
    """Right-pad a batch to length T the way `collate` pads (IDs repeat each row's last ID)."""
    extra = T - batch.inputs.shape[1]
    return Batch(F.pad(batch.inputs, (0, extra), value=PAD), F.pad(batch.targets, (0, extra), value=-100),
                 torch.cat([batch.position_ids, batch.position_ids[:, -1:].expand(-1, extra)], dim=1),
                 batch.examples)


class _Penalty(nn.Module):
    """Lets `functional_call` evaluate the positional penalty with one member's weights."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self):
        return positional_attention_penalty(self.model)


def _load_member(cfg: RunConfig, task, device, path):
    """A member's model, per-parameter AdamW state and loop state: from the checkpoint at `path`
    (written by `train_run` or an ensemble) when given, else fresh from its seed as `train_run`
    builds it."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, task).to(device)
    state = {"step": 0, "curves": [], "wall": 0.0, "status": "running", "stopped_early_at": None}
    moments = {n: {"step": torch.zeros((), device=device), "exp_avg": torch.zeros_like(p),
                   "exp_avg_sq": torch.zeros_like(p)} for n, p in model.named_parameters()}
    if path is not None:
        ck = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt = make_optimizer(model, cfg)
        opt.load_state_dict(ck["opt"])
        for n, p in model.named_parameters():
            moments[n].update({k: v.to(device).float() for k, v in opt.state.get(p, {}).items()})
        state = ck["state"]
    return model, moments, state


def train_ensemble(configs: list[RunConfig], store: ResultsStore, progress=None, force: bool = False) -> list[dict]:
    """Train runs that differ only in seed / train.lr as one batched model; returns the stored runs
    in the order of `configs`. Finished runs are skipped (unless `force`), unfinished ones resume."""
    check_members(configs)
    todo = [(i, cfg) for i, cfg in enumerate(configs) if force or not store.is_finished(cfg.key())]
    if not todo:
        return [store.get_run(c.key()) for c in configs]
    cfg0 = todo[0][1]
    t = cfg0.train
    device = resolve_device(cfg0.device)
    task = cfg0.task.build()
    members = []
    for index, cfg in todo:
        path = checkpoint_path(store, cfg.key())
        model, moments, state = _load_member(cfg, task, device, path if path.exists() and not force else None)
        config = run_record(cfg, model)
        store.start_run(cfg.key(), config, name=cfg.name, experiment=cfg.experiment)
        bar = progress.add_task(cfg.name or cfg.key(), total=t.steps, completed=state["step"]) if progress else None
        members.append({"cfg": cfg, "index": index, "model": model, "moments": moments, "state": state,
                        "config": config, "bar": bar})
    shell = members[0]["model"]  # holds one member's weights at a time, to evaluate or checkpoint it
    offset_len = longest_length(cfg0) if uses_offsets(cfg0, shell) else None
    sampler = getattr(shell.pos, "sample_positions", None)
    batched = stack_models([mb["model"] for mb in members], t.batch_size)
    params = dict(batched.named_parameters())
    opt = StackedAdamW(params, t.weight_decay, t.betas, [mb["moments"] for mb in members])
    penalty = _Penalty(shell) if t.positional_reg else None
    group = {"size": len(configs), "members": [c.key() for c in configs]}
    started = time.perf_counter()
    walls = [mb["state"]["wall"] for mb in members]

    def load_shell(m: int):
        sd = batched.state_dict()
        stacked = {n for n, _ in batched.named_parameters(remove_duplicate=False)}
        shell.load_state_dict({k: (v[m] if k in stacked else v) for k, v in sd.items()})
        return shell

    def checkpoint(m: int):
        mb = members[m]
        cfg, state = mb["cfg"], mb["state"]
        state["wall"] = walls[m] + time.perf_counter() - started
        model = load_shell(m)
        single = make_optimizer(model, cfg)
        for n, p in model.named_parameters():
            single.state[p] = opt.member_state(n, m)
        for g in single.param_groups:
            g["initial_lr"] = cfg.train.lr  # lets the schedule start at this step, as if it had run
        sched = torch.optim.lr_scheduler.LambdaLR(single, lambda s: lr_factor(s, cfg), last_epoch=state["step"] - 1)
        save_atomic({"model": model.state_dict(), "opt": single.state_dict(), "sched": sched.state_dict(),
                     "state": state}, checkpoint_path(store, cfg.key()))

    def retire(done: list[int]):
        """Finish members `done` (evaluate, store, drop checkpoint) and take them out of the batch."""
        nonlocal members, walls, params
        for m in done:
            mb = members[m]
            cfg = mb["cfg"]
            ensemble = {"ensemble": {**group, "index": mb["index"]}}
            status = finish(cfg, store, load_shell(m), task, mb["state"], mb["config"],
                            walls[m] + time.perf_counter() - started, device, extra=ensemble)
            if mb["bar"] is not None:
                progress.update(mb["bar"], completed=t.steps, description=f"{cfg.name or cfg.key()} {status}")
        if done:
            keep = [m for m in range(len(members)) if m not in done]
            members = [members[m] for m in keep]
            walls = [walls[m] for m in keep]
            if members:
                select_members(batched, keep)
                params = dict(batched.named_parameters())
                opt.select(keep, params)

    # A checkpoint can hold a run that ended but was not yet recorded (killed in between).
    retire([m for m, mb in enumerate(members) if mb["state"]["step"] >= t.steps or mb["state"]["status"] != "running"])
    workers = cfg0.data_workers
    with TrainBatches(task, t.batch_size, cfg0.task.train_lengths, offset_len, sampler, workers=workers,
                      stop=t.steps, lookahead=max(1, 2 * workers // len(members))) as draw:
        while members:
            E = len(members)
            drawn = [draw(mb["cfg"].seed, mb["state"]["step"]) for mb in members]
            T = max(b.inputs.shape[1] for b in drawn)
            full = [_pad_to(b, T) for b in drawn]
            # one host-to-device copy per tensor for the whole ensemble, not one per member
            inputs, targets, position_ids = (torch.cat([getattr(b, f) for b in full]).to(device)
                                             for f in ("inputs", "targets", "position_ids"))
            batched.train()
            with autocast(device, t.bf16):
                out = batched(inputs, position_ids)
            outs = out if isinstance(out, tuple) else (out,)
            outs = [o.view(E, t.batch_size, T, -1) for o in outs]
            losses = []
            for m, b in enumerate(drawn):  # each member's loss exactly as `loss_on` computes it alone
                n, rows = b.inputs.shape[1], slice(m * t.batch_size, (m + 1) * t.batch_size)
                own = [o[m, :, :n] for o in outs]
                mine = Batch(inputs[rows, :n], targets[rows, :n], position_ids[rows, :n], b.examples)
                losses.append(output_loss(tuple(own) if isinstance(out, tuple) else own[0], mine,
                                          t.position_loss_weight))
            losses = torch.stack(losses)
            if penalty is not None:
                reg = [functional_call(penalty, {f"model.{n}": p[m] for n, p in params.items()}, ()) for m in range(E)]
                losses = losses + t.positional_reg * torch.stack(reg)
            values = losses.tolist()  # the step's one device sync
            finite = [math.isfinite(v) for v in values]
            for p in params.values():
                p.grad = None
            if any(finite):
                losses[torch.tensor(finite, device=device)].sum().backward()  # members share no weights
                if t.grad_clip:
                    clip_member_grads(params, t.grad_clip)
                opt.step([mb["cfg"].train.lr * lr_factor(mb["state"]["step"], mb["cfg"]) for mb in members])
            done = []
            for m, mb in enumerate(members):
                cfg, state = mb["cfg"], mb["state"]
                if not finite[m]:
                    state["status"] = "diverged"
                    state["curves"].append({"step": state["step"], "name": "loss", "value": float("nan")})
                    done.append(m)
                    continue
                state["step"] = step = state["step"] + 1
                log_step(state, cfg, values[m], cfg.train.lr * lr_factor(step, cfg))
                if (id_check_due(step, cfg) and stops_early(load_shell(m), task, cfg, device, state)) or step == t.steps:
                    done.append(m)
                elif step % t.checkpoint_every == 0:
                    checkpoint(m)
                if mb["bar"] is not None:
                    progress.update(mb["bar"], completed=step, description=f"{cfg.name or cfg.key()} loss {values[m]:.3f}")
            retire(done)
    return [store.get_run(c.key()) for c in configs]
