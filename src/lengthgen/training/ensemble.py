"""Ensembles: E runs of one architecture trained as one batched model (one forward and backward).

Members may differ only in `seed` and `train.lr`. Each member is an ordinary run: it starts from
the weights `train_run` would build for its seed, sees exactly the batches `train_batch(task,
seed, step, ...)` it would see alone, gets its own learning rate, gradient clipping, AdamW state,
early stopping, checkpoints and results, and lands in the results store under its own config key
(only `extra.ensemble` tells it was trained in an ensemble).

The batched model is made of stacked layers (model/stacked.py). Every member goes through the same
lifecycle as a run trained alone (lifecycle.py): its state, checkpoints (the same files, so a member
can resume alone, in another ensemble, or from a checkpoint written by a run trained alone),
divergence, early stop and finish.
A member that stops (steps done, early stop, divergence) is finished and leaves the batch: its
parameters and optimizer state no longer change.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from ..config import ConfigError, RunConfig, flat_fields
from ..data import Batch, TrainBatches
from ..evaluate import autocast
from ..hardware import warn_if_slow_bf16
from ..model import Transformer
from ..model.penalty import positional_attention_penalty
from ..model.stacked import StackedAdamW, clip_member_grads, select_members, stack_models
from ..progress import Progress, Snapshot, eta_s
from ..records import Run
from ..store import ResultsStore
from ..tasks import Task
from .build import (build_model, lr_factor, make_optimizer, make_schedule, offset_length, output_loss,
                    resolve_device, run_record, train_position_sampler)
from .lifecycle import (RunState, abandon, begin, claim, diverge, finish, id_check_due, latest_id_accuracy,
                        load_checkpoint, log_step, save_checkpoint, stops_early)
from .tracking import Tracker

FREE_FIELDS = ("seed", "train.lr")  # what ensemble members may differ in


def shared_fields(cfg: RunConfig) -> dict:
    """Every config field that ensemble members must share (all but name, experiment, seed, lr)."""
    fields = flat_fields(cfg.model_dump(mode="json", exclude={"name", "experiment"}))
    for free in FREE_FIELDS:
        fields.pop(free)
    return fields


def check_members(configs: list[RunConfig]) -> None:
    """Fail unless the configs can train as one ensemble: same everything but seed and train.lr."""
    if not configs:
        raise ConfigError("an ensemble needs at least one run config")
    if configs[0].train.length_buckets not in (1, "auto"):  # auto: one padded batch, the same run
        raise ConfigError("ensembles train every member on one padded batch: set train.length_buckets to 1 or auto "
                          f"(got {configs[0].train.length_buckets!r})")
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


class _Penalty(nn.Module):
    """Lets `functional_call` evaluate the positional penalty with one member's weights."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self):
        return positional_attention_penalty(self.model)


@dataclass
class Member:
    cfg: RunConfig
    index: int  # its place among the configs of the ensemble
    state: RunState
    config: dict  # the stored run record
    wall: float  # seconds trained before this process took it over
    bar: int | None = None  # its handle in the Progress
    first_step: int = 0  # the step this process took it over at, for the time left


def load_member(cfg: RunConfig, task: Task, store: ResultsStore, device, force: bool):
    """A member's model, per-parameter AdamW state and run state: from its checkpoint (written by
    `train_run` or an ensemble) unless `force`, else fresh from its seed as `train_run` builds it."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, task).to(device)
    state = RunState()
    moments = {n: {"step": torch.zeros((), device=device), "exp_avg": torch.zeros_like(p),
                   "exp_avg_sq": torch.zeros_like(p)} for n, p in model.named_parameters()}
    resumed = None if force else load_checkpoint(store, cfg, model, device)
    if resumed is not None:
        ck, state = resumed
        model.load_state_dict(ck["model"])
        opt = make_optimizer(model, cfg)
        opt.load_state_dict(ck["opt"])
        for n, p in model.named_parameters():
            moments[n].update({k: v.to(device).float() for k, v in opt.state.get(p, {}).items()})
    return model, moments, state


class Ensemble:
    """The live members as one batched model with one optimizer; members leave it as they end."""

    def __init__(self, members: list[Member], models: list[Transformer], moments: list[dict], task: Task,
                 store: ResultsStore, device, group: dict, progress: Progress | None, tracker: Tracker | None):
        self.members, self.task, self.store, self.device, self.group = members, task, store, device, group
        self.progress, self.tracker = progress, tracker
        self.train = members[0].cfg.train
        self.shell = models[0]  # holds one member's weights at a time, to evaluate or checkpoint it
        self.batched = stack_models(models, self.train.batch_size)
        self.params = dict(self.batched.named_parameters())
        self.opt = StackedAdamW(self.params, self.train.weight_decay, self.train.betas, moments)
        self.penalty = _Penalty(self.shell) if self.train.positional_reg else None
        self.started = time.perf_counter()

    def wall(self, m: int) -> float:
        return self.members[m].wall + time.perf_counter() - self.started

    def member_model(self, m: int) -> Transformer:
        """The shell model holding member m's current weights."""
        sd = self.batched.state_dict()
        stacked = {n for n, _ in self.batched.named_parameters(remove_duplicate=False)}
        self.shell.load_state_dict({k: (v[m] if k in stacked else v) for k, v in sd.items()})
        return self.shell

    def checkpoint(self, m: int) -> None:
        """Member m's checkpoint, in the format `train_run` writes (torch AdamW and schedule state)."""
        mb = self.members[m]
        mb.state.wall = self.wall(m)
        model = self.member_model(m)
        single = make_optimizer(model, mb.cfg)
        for n, p in model.named_parameters():
            single.state[p] = self.opt.member_state(n, m)
        for g in single.param_groups:
            g["initial_lr"] = mb.cfg.train.lr  # lets the schedule start at this step, as if it had run
        save_checkpoint(self.store, mb.cfg.key(), model, single, make_schedule(single, mb.cfg, mb.state.step - 1),
                        mb.state)

    def retire(self, done: list[int]) -> None:
        """Finish members `done` (lifecycle.finish) and take them out of the batch."""
        for m in done:
            mb = self.members[m]
            status = finish(mb.cfg, self.store, self.member_model(m), self.task, mb.state, mb.config, self.wall(m),
                            self.device, self.tracker, extra={"ensemble": {**self.group, "index": mb.index}})
            if mb.bar is not None:
                self.progress.end_run(mb.bar, status, mb.state.step, self.train.steps)
        if not done:
            return
        keep = [m for m in range(len(self.members)) if m not in done]
        self.members = [self.members[m] for m in keep]
        if self.members:
            select_members(self.batched, keep)
            self.params = dict(self.batched.named_parameters())
            self.opt.select(keep, self.params)

    def losses(self, drawn: list[Batch]) -> torch.Tensor:
        """[E] each member's loss on its own batch, exactly as `loss_on` computes it alone."""
        t, E = self.train, len(self.members)
        T = max(b.inputs.shape[1] for b in drawn)
        full = [b.padded_to(T) for b in drawn]
        # one host-to-device copy per tensor for the whole ensemble, not one per member
        inputs, targets, position_ids = (torch.cat(parts).to(self.device) for parts in
                                         zip(*((b.inputs, b.targets, b.position_ids) for b in full)))
        self.batched.train()
        with autocast(self.device, t.bf16):
            out = self.batched(inputs, position_ids)
        logits = out.logits.view(E, t.batch_size, T, -1)
        position_logits = None if out.position_logits is None else out.position_logits.view(E, t.batch_size, T, -1)
        losses = []
        for m, b in enumerate(drawn):
            n, rows = b.inputs.shape[1], slice(m * t.batch_size, (m + 1) * t.batch_size)
            own = type(out)(logits[m, :, :n], None if position_logits is None else position_logits[m, :, :n])
            mine = Batch(inputs[rows, :n], targets[rows, :n], position_ids[rows, :n], b.examples)
            losses.append(output_loss(own, mine, t.position_loss_weight))
        losses = torch.stack(losses)
        if self.penalty is not None:
            reg = [functional_call(self.penalty, {f"model.{n}": p[m] for n, p in self.params.items()}, ())
                   for m in range(E)]
            losses = losses + t.positional_reg * torch.stack(reg)
        return losses

    def step(self, drawn: list[Batch]) -> list[float]:
        """One update of every member whose loss is finite; returns the members' losses."""
        losses = self.losses(drawn)
        values = losses.tolist()  # the step's one device sync
        finite = [math.isfinite(v) for v in values]
        for p in self.params.values():
            p.grad = None
        if any(finite):
            losses[torch.tensor(finite, device=self.device)].sum().backward()  # members share no weights
            if self.train.grad_clip:
                clip_member_grads(self.params, self.train.grad_clip)
            self.opt.step([mb.cfg.train.lr * lr_factor(mb.state.step, mb.cfg) for mb in self.members])
        return values

    def show(self, mb: Member, loss: float) -> None:
        state, total = mb.state, self.train.steps
        elapsed = time.perf_counter() - self.started
        lr = mb.cfg.train.lr * lr_factor(state.step, mb.cfg)
        self.progress.show(mb.bar, Snapshot(state.step, total, loss, lr, latest_id_accuracy(state), None,
                                            eta_s(state.step, total, mb.first_step, elapsed)))

    def after_step(self, values: list[float]) -> list[int]:
        """Each member's bookkeeping after a step (lifecycle); returns the members that ended."""
        done = []
        for m, (mb, value) in enumerate(zip(self.members, values)):
            cfg, state = mb.cfg, mb.state
            if not math.isfinite(value):
                diverge(state)
                done.append(m)
                continue
            state.step += 1
            log_step(state, cfg, value, cfg.train.lr * lr_factor(state.step, cfg), self.tracker)
            if (id_check_due(state.step, cfg)
                    and stops_early(self.member_model(m), self.task, cfg, self.device, state, self.tracker)) \
                    or state.step == self.train.steps:
                done.append(m)
            elif state.step % self.train.checkpoint_every == 0:
                self.checkpoint(m)
            if mb.bar is not None and self.progress.due(mb.bar):
                self.show(mb, value)
        return done


def train_members(ensemble: Ensemble, cfg0: RunConfig, task: Task) -> None:
    """Steps until every member has ended (finished, diverged or stopped early)."""
    t, workers = cfg0.train, cfg0.data_workers
    with TrainBatches(task, t.batch_size, cfg0.task.train_lengths, offset_length(cfg0),
                      train_position_sampler(cfg0, ensemble.shell), workers=workers, stop=t.steps,
                      lookahead=max(1, 2 * workers // len(ensemble.members)), dataset_size=t.dataset_size) as draw:
        while ensemble.members:
            values = ensemble.step([draw(mb.cfg.seed, mb.state.step) for mb in ensemble.members])
            ensemble.retire(ensemble.after_step(values))


def train_ensemble(configs: list[RunConfig], store: ResultsStore, progress: Progress | None = None, force: bool = False,
                   tracker: Tracker | None = None) -> list[Run]:
    """Train runs that differ only in seed / train.lr as one batched model; returns the stored runs
    in the order of `configs`. Finished runs are skipped (unless `force`), unfinished ones resume.
    Each member's curves also go to `tracker`."""
    check_members(configs)
    todo = [(i, cfg) for i, cfg in enumerate(configs) if force or not store.is_finished(cfg.key())]
    if not todo:
        return [store.get_run(c.key()) for c in configs]
    cfg0 = todo[0][1]
    t, device, task = cfg0.train, resolve_device(cfg0.device), cfg0.task.build(store.cache_dir())
    warn_if_slow_bf16(t.bf16, device)
    members, models, moments = [], [], []
    for index, cfg in todo:
        model, member_moments, state = load_member(cfg, task, store, device, force)
        config = run_record(cfg, model)
        claim(store, cfg.key())
        begin(store, cfg, config, device, tracker)
        bar = progress.start_run(cfg.name or cfg.key(), t.steps, state.step) if progress is not None else None
        members.append(Member(cfg, index, state, config, state.wall, bar, state.step))
        models.append(model)
        moments.append(member_moments)
    ensemble = Ensemble(members, models, moments, task, store, device,
                        {"size": len(configs), "members": [c.key() for c in configs]}, progress, tracker)
    # A checkpoint can hold a run that ended but was not yet recorded (killed in between).
    ensemble.retire([m for m, mb in enumerate(members) if mb.state.step >= t.steps or not mb.state.running])
    try:
        train_members(ensemble, cfg0, task)
    except BaseException as err:
        for mb in ensemble.members:
            abandon(store, mb.cfg.key(), err, mb.state.step, tracker)
        raise
    return [store.get_run(c.key()) for c in configs]
