"""Training loop: AdamW, warm-up then decay, clipping, on-the-fly data, checkpoints and resume.

A run is identified by its config key. Checkpoints are written atomically to
`<root>/checkpoints/<key>.pt`; rerunning the same config resumes from the latest one and, on
CPU, ends with exactly the numbers of an uninterrupted run (batches depend only on seed and
step). The finished run goes to the results store in one transaction, and its weights to
`<root>/models/<key>.pt`.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__
from .config import RunConfig
from .data import IGNORE, TrainBatches, length_buckets
from .distributed import DataParallel
from .evaluate import autocast, evaluate, in_distribution_accuracy
from .model import Transformer, TransformerConfig
from .ppc import position_loss
from .regularizer import positional_attention_penalty
from .store import ResultsStore
from .tasks import Task


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def longest_length(cfg: RunConfig) -> int:
    return max([cfg.task.train_lengths[1]] + [hi for _, hi in cfg.task.eval_bins])


def uses_offsets(cfg: RunConfig, model: Transformer) -> bool:
    mode = cfg.train.position_offset
    # A PPC head classifies absolute IDs, so like a position table it must see every ID in training.
    return mode == "random" or (mode == "auto" and (model.pos.has_table or model.position_head is not None))


def positions_needed(cfg: RunConfig, task: Task) -> int:
    """Size of a position table that serves every evaluation length and every training offset."""
    longest = longest_length(cfg)
    need = task.seq_len(longest)
    lo, hi = cfg.task.train_lengths
    if cfg.train.position_offset != "none":
        need = max([need] + [task.seq_len(n) + task.max_offset(n, longest) for n in range(lo, hi + 1)])
    return need


def build_model(cfg: RunConfig, task: Task) -> Transformer:
    m = cfg.model
    max_positions = m.max_positions or positions_needed(cfg, task)
    return Transformer(TransformerConfig(
        vocab_size=len(task.vocab), max_positions=max_positions, n_layers=m.n_layers, n_heads=m.n_heads,
        d_model=m.d_model, d_mlp=m.d_mlp, tie_weights=m.tie_weights, positional=m.positional,
        positional_params=dict(m.positional_params), position_vocab=max_positions if m.predict_positions else 0))


def lr_factor(step: int, cfg: RunConfig) -> float:
    t = cfg.train
    if step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.schedule == "constant":
        return 1.0
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    if t.schedule == "linear":
        return max(0.0, 1.0 - frac)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))


def make_optimizer(model: Transformer, cfg: RunConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, LayerNorm gains (1-D parameters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates all parameters in one call: on CPU 4-30x faster than the default
    # per-parameter loop for our model sizes (benchmarks/README.md). Only cpu/cuda have it.
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=cfg.train.betas, fused=fused)


def loss_on(model, batch, bf16: bool, device, position_loss_weight: float = 0.0) -> torch.Tensor:
    """Next-token cross-entropy, plus the weighted PPC position-ID loss for a model with a position head."""
    with autocast(device, bf16):
        out = model(batch.inputs, batch.position_ids)
    return output_loss(out, batch, position_loss_weight)


def output_loss(out, batch, position_loss_weight: float = 0.0) -> torch.Tensor:
    """`loss_on` for a model output already computed: logits, or (logits, position-ID logits)."""
    logits = out[0] if isinstance(out, tuple) else out
    loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)
    if isinstance(out, tuple) and position_loss_weight:
        loss = loss + position_loss_weight * position_loss(out[1], batch)
    return loss


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def checkpoint_path(store: ResultsStore, key: str) -> Path:
    return Path(store.root) / "checkpoints" / f"{key}.pt"


def run_record(cfg: RunConfig, model: Transformer) -> dict:
    """The config stored with a run: every field with defaults filled in, plus what was resolved
    from them (table size, vocabulary, parameter count, whether training uses position offsets)."""
    config = cfg.model_dump(mode="json")
    config["resolved"] = {"max_positions": model.cfg.max_positions, "vocab_size": model.cfg.vocab_size,
                          "num_params": model.num_params(), "position_offsets": uses_offsets(cfg, model)}
    return config


def log_step(state: dict, cfg: RunConfig, loss: float, next_lr: float) -> None:
    """Record loss and learning rate in the curves after step `state["step"]` (about 200 points a run)."""
    step = state["step"]
    if step % max(1, cfg.train.steps // 200) == 0 or step == cfg.train.steps:
        state["curves"] += [{"step": step, "name": "loss", "value": loss},
                            {"step": step, "name": "lr", "value": next_lr}]


def id_check_due(step: int, cfg: RunConfig) -> bool:
    return step % cfg.train.eval_every == 0 or step == cfg.train.steps


def stops_early(model: Transformer, task: Task, cfg: RunConfig, device, state: dict) -> bool:
    """After step `state["step"]`: check in-distribution accuracy when due and record it; True when
    it reached `train.early_stop_acc` (the step is then noted as `stopped_early_at`)."""
    step, t = state["step"], cfg.train
    if not id_check_due(step, cfg):
        return False
    acc = in_distribution_accuracy(model, task, cfg.task.train_lengths, t.eval_examples, cfg.eval.batch_size,
                                   device, t.bf16)
    state["curves"].append({"step": step, "name": "id_exact_match", "value": acc})
    if t.early_stop_acc is not None and acc >= t.early_stop_acc:
        state["stopped_early_at"] = step
        return True
    return False


def is_done(store: ResultsStore, key: str) -> bool:
    """Whether a run is finished. A process killed after recording its run but before deleting the
    checkpoint leaves a stale one behind; it is dropped here, where it can no longer be used."""
    if not store.is_finished(key):
        return False
    checkpoint_path(store, key).unlink(missing_ok=True)
    return True


def train_run(cfg: RunConfig, store: ResultsStore, progress=None, force: bool = False) -> dict:
    """Train and evaluate one run (resuming from its checkpoint); returns the stored run."""
    key = cfg.key()
    if not force and is_done(store, key):
        return store.get_run(key)
    ckpt_path = checkpoint_path(store, key)
    dp = DataParallel()  # several processes under torchrun (distributed.py), else a no-op
    device = dp.start(resolve_device(cfg.device), cfg.train.batch_size)
    torch.manual_seed(cfg.seed)
    task = cfg.task.build()
    model = build_model(cfg, task).to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    t = cfg.train
    state = {"step": 0, "curves": [], "wall": 0.0, "status": "running", "stopped_early_at": None}
    if ckpt_path.exists() and not force:
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
    config = run_record(cfg, model)
    if dp.is_main:
        store.start_run(key, config, name=cfg.name, experiment=cfg.experiment)
    net = dp.wrap(model)
    offset_len = longest_length(cfg) if uses_offsets(cfg, model) else None
    position_sampler = getattr(model.pos, "sample_positions", None)  # randomized positions
    started = time.perf_counter() - state["wall"]
    bar = None
    if progress and dp.is_main:
        bar = progress.add_task(cfg.name or key, total=t.steps, completed=state["step"])

    def checkpoint():
        state["wall"] = time.perf_counter() - started
        save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "state": state}, ckpt_path)

    with TrainBatches(task, t.batch_size, cfg.task.train_lengths, offset_len, position_sampler,
                      workers=cfg.data_workers, stop=t.steps) as draw:
        while state["step"] < t.steps and state["status"] == "running":
            step = state["step"]
            model.train()
            batch, share = dp.shard(draw(cfg.seed, step))
            opt.zero_grad(set_to_none=True)
            loss = torch.zeros((), device=device)
            for part, part_share in length_buckets(batch, t.length_buckets):  # gradient accumulation
                part_loss = share * part_share.to(device) * loss_on(net, part.to(device), t.bf16, device,
                                                                    t.position_loss_weight)
                part_loss.backward()
                loss += part_loss.detach()
            if t.positional_reg:
                penalty = t.positional_reg * positional_attention_penalty(model)
                penalty.backward()
                loss += penalty.detach()
            whole_loss = dp.average(loss)  # = loss in one process; all ranks see the same value
            if not torch.isfinite(whole_loss):
                state["status"] = "diverged"
                state["curves"].append({"step": step, "name": "loss", "value": float("nan")})
                break
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            sched.step()
            state["step"] = step = step + 1
            log_step(state, cfg, whole_loss.item(), sched.get_last_lr()[0])
            if dp.agree(dp.is_main and stops_early(model, task, cfg, device, state)):
                state["stopped_early_at"] = step
                break
            if step % t.checkpoint_every == 0 and dp.is_main:
                checkpoint()
            if bar is not None:
                progress.update(bar, completed=step, description=f"{cfg.name or key} loss {whole_loss.item():.3f}")
    if dp.is_main:
        status = finish(cfg, store, model, task, state, config, time.perf_counter() - started, device)
        if bar is not None:
            progress.update(bar, completed=t.steps, description=f"{cfg.name or key} {status}")
    dp.wait_for_main()
    dp.close()
    return store.get_run(key)


def finish(cfg: RunConfig, store: ResultsStore, model: Transformer, task: Task, state: dict, config: dict,
           wall: float, device, extra: dict | None = None) -> str:
    """Evaluate a run that ended (unless it diverged), save its model, record it as finished in the
    store and drop its checkpoint; returns the final status. `extra` adds to the stored `extra`."""
    key = cfg.key()
    status = "finished" if state["status"] == "running" else state["status"]
    metrics = []
    if status == "finished":
        metrics = evaluate(model, task, cfg.task.eval_bins, cfg.eval.examples_per_bin, cfg.eval.batch_size,
                           device, cfg.train.bf16, cfg.eval.greedy)
        save_atomic({"config": config, "model": model.state_dict(), "version": __version__},
                    Path(store.root) / "models" / f"{key}.pt")
    store.finish_run(key, status=status, metrics=metrics, curves=state["curves"], wall_time=wall,
                     steps_done=state["step"], extra={"stopped_early_at": state["stopped_early_at"], **(extra or {})})
    checkpoint_path(store, key).unlink(missing_ok=True)
    return status


def load_model(path: str | Path, device="cpu") -> tuple[Transformer, RunConfig]:
    """A finished run's model and config from `<root>/models/<key>.pt`."""
    from .config import load_run_config

    ck = torch.load(path, map_location=device, weights_only=False)
    config = dict(ck["config"])
    resolved = config.pop("resolved")
    cfg = load_run_config(config)
    task = cfg.task.build()
    m = cfg.model.model_copy(update={"max_positions": resolved["max_positions"]})
    model = build_model(cfg.model_copy(update={"model": m}), task)
    model.load_state_dict(ck["model"])
    return model.to(device), cfg
