"""One run's life, the same for a run trained alone and an ensemble member: its start, its state,
the bookkeeping after each step (curves, divergence, early stop), its checkpoint, and its end
(evaluate, save the model, record the run in the store, drop the checkpoint). A tracker, when one
is given, sees the start, each curve point as it is recorded, and the end (tracking.py)."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, field, fields

import torch

from ..version import __version__
from ..config import RunConfig
from ..errors import InputError
from ..evaluate import curve_points, evaluate, in_distribution_accuracy
from ..store import ResultsStore
from ..tasks import Task
from .build import check_tensors, make_optimizer, make_schedule
from .tracking import Tracker

CHECKPOINT_KEYS = {"model", "opt", "sched", "state"}


@dataclass
class RunState:
    """Everything about a run's progress that a checkpoint must carry besides the weights."""

    step: int = 0
    curves: list[dict] = field(default_factory=list)  # {"step", "name", "value"} points
    wall: float = 0.0  # seconds trained before the last checkpoint
    status: str = "running"  # running | diverged (finished is decided at the end)
    stopped_early_at: int | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


def claim(store: ResultsStore, key: str) -> None:
    """Make sure no other live process trains run `key`; one left `running` by a process that is
    gone is taken over (it resumes from its checkpoint)."""
    owner = store.live_owner(key)
    if owner is not None:
        raise InputError(f"run {key} is being trained by process {owner.pid} on {owner.host} (last heartbeat "
                         f"{owner.heartbeat}); wait for it to finish, or stop it and rerun")
    run = store.get_run(key)
    if run is not None and run.status == "running" and run.pid != os.getpid():
        warnings.warn(f"run {key} was left running by process {run.pid} on {run.host}, which is gone; "
                      "taking it over", stacklevel=2)


def begin(store: ResultsStore, cfg: RunConfig, config: dict, device, tracker: Tracker | None) -> None:
    """Record the run as running (in the store, and in the tracker)."""
    store.start_run(cfg.key(), config, name=cfg.name, experiment=cfg.experiment, device=str(device))
    if tracker is not None:
        tracker.start(cfg.key(), cfg.name, config)


def abandon(store: ResultsStore, key: str, err: BaseException, step: int, tracker: Tracker | None) -> None:
    """Record run `key` as failed when this process stops training it on an error or an interrupt
    (at `step`); the tracker keeps what it was sent."""
    reason = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"
    try:
        store.mark_failed(key, reason)
    except (ValueError, OSError):  # the store itself is what failed: the error above says so
        pass
    if tracker is not None:
        tracker.end(key, "failed", step, [])


def is_done(store: ResultsStore, key: str) -> bool:
    """Whether a run is finished. A process killed after recording its run but before deleting the
    checkpoint leaves a stale one behind; it is dropped here, where it can no longer be used."""
    if not store.is_finished(key):
        return False
    store.drop_checkpoint(key)
    return True


def save_checkpoint(store: ResultsStore, key: str, model, opt, sched, state: RunState) -> None:
    store.save_checkpoint(key, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                                "state": asdict(state)})
    store.heartbeat(key)


def load_checkpoint(store: ResultsStore, cfg: RunConfig, model, device) -> tuple[dict, RunState] | None:
    """The run's checkpoint (model, opt and sched state dicts) and its state, or None to start afresh.
    Everything in it is checked against what `save_checkpoint` writes for this config and model
    before any of it is used; a checkpoint that fails is moved aside by the store."""
    return store.load_checkpoint(cfg.key(), lambda ck: (ck, checked_checkpoint(ck, cfg, model)), device)


def checked_checkpoint(ck, cfg: RunConfig, model) -> RunState:
    """The run state of a checkpoint whose every part has the keys, shapes, types and bounds that
    `save_checkpoint` gives it; a ValueError naming the first part that does not."""
    if not isinstance(ck, dict) or set(ck) != CHECKPOINT_KEYS:
        raise InputError(f"keys {sorted(ck, key=str) if isinstance(ck, dict) else type(ck).__name__}, expected "
                         f"{sorted(CHECKPOINT_KEYS)}")
    check_tensors(ck["model"], model.state_dict(), "model")
    opt = make_optimizer(model, cfg)
    check_optimizer_state(ck["opt"], opt)
    sched = make_schedule(opt, cfg).state_dict()
    if not isinstance(ck["sched"], dict) or set(ck["sched"]) != set(sched):
        raise InputError("sched: not a learning-rate schedule state of this run")
    _whole(ck["sched"].get("last_epoch"), 0, cfg.train.steps, "sched.last_epoch")
    return checked_state(ck["state"], cfg)


def check_optimizer_state(found, opt) -> None:
    """AdamW state of `opt`'s parameter groups, each moment shaped like its parameter."""
    ref = opt.state_dict()
    if not isinstance(found, dict) or set(found) != set(ref) or not isinstance(found["state"], dict):
        raise InputError("opt: not an optimizer state")
    groups = found["param_groups"]
    if not isinstance(groups, list) or [g.get("params") if isinstance(g, dict) else None for g in groups] != \
            [g["params"] for g in ref["param_groups"]]:
        raise InputError("opt: parameter groups differ from this run's")
    params = dict(zip((i for g in ref["param_groups"] for i in g["params"]),
                      (p for g in opt.param_groups for p in g["params"])))
    for index, moments in found["state"].items():
        if index not in params or not isinstance(moments, dict):
            raise InputError(f"opt: state for unknown parameter {index!r}")
        for name, value in moments.items():
            shape = () if name == "step" else params[index].shape
            if not isinstance(value, torch.Tensor) or value.shape != shape or not value.is_floating_point():
                raise InputError(f"opt: {name} of parameter {index} is not a float tensor of shape {tuple(shape)}")


def checked_state(data, cfg: RunConfig) -> RunState:
    names = {f.name for f in fields(RunState)}
    if not isinstance(data, dict) or set(data) != names:
        raise InputError(f"state: expected the fields {sorted(names)}")
    steps = cfg.train.steps
    _whole(data["step"], 0, steps, "state.step")
    if data["status"] not in ("running", "diverged"):
        raise InputError(f"state.status {data['status']!r}: a checkpoint is running or diverged")
    if isinstance(data["wall"], bool) or not isinstance(data["wall"], (int, float)) or not 0 <= data["wall"] < math.inf:
        raise InputError(f"state.wall {data['wall']!r}: expected seconds >= 0")
    if data["stopped_early_at"] is not None:
        _whole(data["stopped_early_at"], 0, steps, "state.stopped_early_at")
    curves = data["curves"]
    if not isinstance(curves, list) or len(curves) > 4 * steps + 1000:
        raise InputError("state.curves: expected a list of at most a few points per step")
    for point in curves:
        if not (isinstance(point, dict) and set(point) == {"step", "name", "value"} and isinstance(point["name"], str)
                and isinstance(point["value"], (int, float)) and not isinstance(point["value"], bool)):
            raise InputError(f"state.curves: bad point {point!r}")
        _whole(point["step"], 0, steps, "state.curves step")
    return RunState(**data)


def _whole(value, lo: int, hi: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f"{what} {value!r}: expected a whole number in [{lo}, {hi}]")


def log_step(state: RunState, cfg: RunConfig, loss: float, next_lr: float, tracker: Tracker | None) -> None:
    """Record loss and learning rate in the curves after step `state.step` (about 200 points a run)."""
    step = state.step
    if step % max(1, cfg.train.steps // 200) == 0 or step == cfg.train.steps:
        points = [{"step": step, "name": "loss", "value": loss}, {"step": step, "name": "lr", "value": next_lr}]
        state.curves += points
        if tracker is not None:
            tracker.log(cfg.key(), points)


def diverge(state: RunState) -> None:
    """The loss of step `state.step` is not finite: the run ends as diverged."""
    state.status = "diverged"
    state.curves.append({"step": state.step, "name": "loss", "value": math.nan})


def latest_id_accuracy(state: RunState) -> float | None:
    """The accuracy of the run's latest in-distribution check, None before the first."""
    return next((p["value"] for p in reversed(state.curves) if p["name"] == "id_exact_match"), None)


def id_check_due(step: int, cfg: RunConfig) -> bool:
    return step % cfg.train.eval_every == 0 or step == cfg.train.steps


def stops_early(model, task: Task, cfg: RunConfig, device, state: RunState, tracker: Tracker | None) -> bool:
    """After step `state.step`: check in-distribution accuracy when due and record it (with the
    learning curves per bin where `train.curve_bins` asks for them); True when
    it reached `train.early_stop_acc` (the step is then noted as `stopped_early_at`)."""
    step, t = state.step, cfg.train
    if not id_check_due(step, cfg):
        return False
    if t.early_stop_on == "eval_bins":  # the reported in-distribution set (Huang et al.)
        acc = in_distribution_accuracy(model, task, cfg.task.eval_bins[0], cfg.eval.examples_per_bin,
                                       cfg.eval.batch_size, device, t.bf16, tag=0)
    else:
        acc = in_distribution_accuracy(model, task, cfg.task.train_lengths, t.eval_examples, cfg.eval.batch_size,
                                       device, t.bf16)
    points = [{"step": step, "name": "id_exact_match", "value": acc}]
    if cfg.train.curve_bins:
        per_bin = curve_points(model, task, cfg.curve_bins(), t.curve_examples, cfg.eval.batch_size, device, t.bf16,
                               cfg.eval.greedy)
        points += [{"step": step, "name": name, "value": value} for name, value in per_bin.items()]
    state.curves += points
    if tracker is not None:
        tracker.log(cfg.key(), points)
    if t.early_stop_acc is not None and acc >= t.early_stop_acc:
        state.stopped_early_at = step
        return True
    return False


def final_metrics(cfg: RunConfig, model, task: Task, device) -> list[dict]:
    return evaluate(model, task, cfg.task.eval_bins, cfg.eval.examples_per_bin, cfg.eval.batch_size, device,
                    cfg.train.bf16, cfg.eval.greedy, train_length=cfg.task.train_lengths[1],
                    validation=(cfg.task.judged(), cfg.eval.validation_examples) if cfg.eval.validation_examples else None)


def finish(cfg: RunConfig, store: ResultsStore, model, task: Task, state: RunState, config: dict, wall: float,
           device, tracker: Tracker | None, extra: dict | None = None) -> str:
    """End a run: a run that did not diverge is evaluated and its model saved; then the run is
    recorded as finished (or diverged) in one transaction, its checkpoint dropped, and the tracker
    told. Returns the final status. `extra` adds to the stored `extra`."""
    key = cfg.key()
    status = "finished" if state.running else state.status
    metrics = []
    if status == "finished":
        metrics = final_metrics(cfg, model, task, device)
        try:
            store.save_model(key, {"config": config, "model": model.state_dict(), "version": __version__})
        except OSError as err:  # a full disk: the checkpoint stays, and so does the run
            raise InputError(f"could not write the model of run {key} to {store.model_path(key)} "
                             f"({err.strerror or err}); free some space and rerun the same command: the run resumes "
                             "from its last checkpoint") from None
    store.finish_run(key, status=status, metrics=metrics, curves=state.curves, wall_time=wall, steps_done=state.step,
                     extra={"stopped_early_at": state.stopped_early_at, **task.provenance(), **(extra or {})})
    store.drop_checkpoint(key)
    if tracker is not None:
        tracker.end(key, status, state.step, metrics)
    return status
