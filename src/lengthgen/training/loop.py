"""Training one run: AdamW, warm-up then decay, clipping, on-the-fly data, checkpoints and resume.

A run is identified by its config key. Checkpoints are written atomically by the store;
rerunning the same config resumes from the latest one and, on CPU, ends with exactly the numbers
of an uninterrupted run (batches depend only on seed and step). The finished run goes to the
results store in one transaction, and its weights to the store's model file (lifecycle.finish).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..data import Batch, TrainBatches, length_buckets
from ..hardware import warn_if_slow_bf16
from ..model import Transformer
from ..model.penalty import positional_attention_penalty
from ..progress import Progress, Snapshot, eta_s
from ..records import Run as StoredRun
from ..store import ResultsStore
from ..tasks import Task
from .build import (build_model, loss_on, make_optimizer, make_schedule, offset_length, resolve_device, run_record,
                    train_position_sampler)
from .distributed import DataParallel
from .lifecycle import (RunState, abandon, begin, claim, diverge, finish, is_done, latest_id_accuracy, load_checkpoint,
                        log_step, save_checkpoint, stops_early)
from .tracking import Tracker


@dataclass
class Run:
    """A run being trained: its config, task, model, optimizer, schedule and state."""

    cfg: RunConfig
    task: Task
    model: Transformer
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    state: RunState
    device: torch.device
    tracker: Tracker | None  # the main process's: other data-parallel ranks track nothing

    @property
    def key(self) -> str:
        return self.cfg.key()


def start_run(cfg: RunConfig, store: ResultsStore, device, force: bool, tracker: Tracker | None) -> Run:
    """The run built from its seed, then resumed from its checkpoint when it has one (unless `force`)."""
    warn_if_slow_bf16(cfg.train.bf16, device)
    torch.manual_seed(cfg.seed)
    task = cfg.task.build(store.cache_dir())
    model = build_model(cfg, task).to(device)
    opt = make_optimizer(model, cfg)
    sched = make_schedule(opt, cfg)
    state = RunState()
    resumed = None if force else load_checkpoint(store, cfg, model, device)
    if resumed is not None:
        ck, state = resumed
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
    return Run(cfg, task, model, opt, sched, state, device, tracker)


def train_step(run: Run, net, batch: Batch, share, dp: DataParallel) -> torch.Tensor:
    """One optimizer step on the step's batch (gradient accumulation over length buckets, the
    positional penalty); returns the step's loss, averaged over data-parallel ranks. A step whose
    loss is not finite changes no weight."""
    t = run.cfg.train
    run.model.train()
    run.opt.zero_grad(set_to_none=True)
    loss = torch.zeros((), device=run.device)
    scored_only = not run.model.predicts_positions  # the position head's loss needs every position
    for part, part_share in length_buckets(batch, t.length_buckets):
        part_loss = share * part_share.to(run.device) * loss_on(net, part.to(run.device), t.bf16, run.device,
                                                                t.position_loss_weight, scored_only)
        part_loss.backward()
        loss += part_loss.detach()
    if t.positional_reg:
        penalty = t.positional_reg * positional_attention_penalty(run.model)
        penalty.backward()
        loss += penalty.detach()
    whole = dp.average(loss)  # = loss in one process; all ranks see the same value
    if torch.isfinite(whole):
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), t.grad_clip)
        run.opt.step()
        run.sched.step()
    return whole


def train_run(cfg: RunConfig, store: ResultsStore, progress: Progress | None = None, force: bool = False,
              tracker: Tracker | None = None) -> StoredRun:
    """Train and evaluate one run (resuming from its checkpoint); returns the stored run. Its curves
    also go to `tracker` as they are recorded."""
    key = cfg.key()
    if not force and is_done(store, key):
        return store.get_run(key)
    dp = DataParallel()  # several processes under torchrun (distributed.py), else a no-op
    if dp.is_main:
        claim(store, key)  # before its checkpoint is read: another live process may own it
    run = start_run(cfg, store, dp.start(resolve_device(cfg.device), cfg.train.batch_size), force,
                    tracker if dp.is_main else None)
    config = run_record(cfg, run.model)
    if dp.is_main:
        begin(store, cfg, config, run.device, run.tracker)
    started = time.perf_counter() - run.state.wall
    bar = progress.start_run(cfg.name or key, cfg.train.steps, run.state.step) \
        if progress is not None and dp.is_main else None
    try:
        train_steps(run, store, dp, started, progress, bar)
        if dp.is_main:
            status = finish(cfg, store, run.model, run.task, run.state, config, time.perf_counter() - started,
                            run.device, run.tracker)
            if bar is not None:
                progress.end_run(bar, status, run.state.step, cfg.train.steps)
    except BaseException as err:
        if dp.is_main:
            abandon(store, key, err, run.state.step, run.tracker)
        raise
    dp.wait_for_main()
    dp.close()
    return store.get_run(key)


def train_steps(run: Run, store: ResultsStore, dp: DataParallel, started: float, progress: Progress | None,
                bar: int | None) -> None:
    """Steps until the run is done, diverged or stopped early; checkpoints on the way."""
    cfg, state, t = run.cfg, run.state, run.cfg.train
    net = dp.wrap(run.model)
    # for the reported tokens per second and time left
    tokens, session_start, first_step = 0, time.perf_counter(), state.step
    with TrainBatches(run.task, t.batch_size, cfg.task.train_lengths, offset_length(cfg),
                      train_position_sampler(cfg, run.model), workers=cfg.data_workers, stop=t.steps,
                      dataset_size=t.dataset_size) as draw:
        while state.step < t.steps and state.running:
            batch, share = dp.shard(draw(cfg.seed, state.step))
            loss = train_step(run, net, batch, share, dp)
            tokens += batch.inputs.numel()
            if not torch.isfinite(loss):
                diverge(state)
                break
            state.step += 1
            lr = run.sched.get_last_lr()[0]
            log_step(state, cfg, loss.item(), lr, run.tracker)
            if dp.agree(dp.is_main and stops_early(run.model, run.task, cfg, run.device, state, run.tracker)):
                state.stopped_early_at = state.step
                break
            if state.step % t.checkpoint_every == 0 and dp.is_main:
                state.wall = time.perf_counter() - started
                save_checkpoint(store, run.key, run.model, run.opt, run.sched, state)
            if bar is not None and progress.due(bar):
                elapsed = max(time.perf_counter() - session_start, 1e-9)
                progress.show(bar, Snapshot(state.step, t.steps, loss.item(), lr, latest_id_accuracy(state),
                                            tokens / elapsed, eta_s(state.step, t.steps, first_step, elapsed)))
