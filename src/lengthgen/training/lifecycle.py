"""One run's life, the same for a run trained alone and an ensemble member: its state, the
bookkeeping after each step (curves, divergence, early stop), its checkpoint, and its end
(evaluate, save the model, record the run in the store, drop the checkpoint)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .. import __version__
from ..config import RunConfig
from ..evaluate import evaluate, in_distribution_accuracy
from ..store import ResultsStore
from ..tasks import Task


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


def load_checkpoint(store: ResultsStore, key: str, device) -> tuple[dict, RunState] | None:
    """The run's checkpoint (model, opt and sched state dicts) and its state, or None to start afresh."""
    ck = store.load_checkpoint(key, device)
    return None if ck is None else (ck, RunState(**ck["state"]))


def log_step(state: RunState, cfg: RunConfig, loss: float, next_lr: float) -> None:
    """Record loss and learning rate in the curves after step `state.step` (about 200 points a run)."""
    step = state.step
    if step % max(1, cfg.train.steps // 200) == 0 or step == cfg.train.steps:
        state.curves += [{"step": step, "name": "loss", "value": loss}, {"step": step, "name": "lr", "value": next_lr}]


def diverge(state: RunState) -> None:
    """The loss of step `state.step` is not finite: the run ends as diverged."""
    state.status = "diverged"
    state.curves.append({"step": state.step, "name": "loss", "value": math.nan})


def id_check_due(step: int, cfg: RunConfig) -> bool:
    return step % cfg.train.eval_every == 0 or step == cfg.train.steps


def stops_early(model, task: Task, cfg: RunConfig, device, state: RunState) -> bool:
    """After step `state.step`: check in-distribution accuracy when due and record it; True when
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
    state.curves.append({"step": step, "name": "id_exact_match", "value": acc})
    if t.early_stop_acc is not None and acc >= t.early_stop_acc:
        state.stopped_early_at = step
        return True
    return False


def final_metrics(cfg: RunConfig, model, task: Task, device) -> list[dict]:
    return evaluate(model, task, cfg.task.eval_bins, cfg.eval.examples_per_bin, cfg.eval.batch_size, device,
                    cfg.train.bf16, cfg.eval.greedy, train_length=cfg.task.train_lengths[1],
                    validation=(cfg.task.judged(), cfg.eval.validation_examples) if cfg.eval.validation_examples else None)


def finish(cfg: RunConfig, store: ResultsStore, model, task: Task, state: RunState, config: dict, wall: float,
           device, extra: dict | None = None) -> str:
    """End a run: a run that did not diverge is evaluated and its model saved; then the run is
    recorded as finished (or diverged) in one transaction and its checkpoint dropped. Returns the
    final status. `extra` adds to the stored `extra`."""
    key = cfg.key()
    status = "finished" if state.running else state.status
    metrics = []
    if status == "finished":
        metrics = final_metrics(cfg, model, task, device)
        store.save_model(key, {"config": config, "model": model.state_dict(), "version": __version__})
    store.finish_run(key, status=status, metrics=metrics, curves=state.curves, wall_time=wall, steps_done=state.step,
                     extra={"stopped_early_at": state.stopped_early_at, **(extra or {})})
    store.drop_checkpoint(key)
    return status
