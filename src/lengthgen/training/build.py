"""What a run is built from: its device, model, optimizer, schedule and loss."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..config import RunConfig, load_run_config
from ..data import IGNORE, Batch, TrainingSet
from ..evaluate import autocast
from ..model import Output, Transformer
from ..positions import PositionSampler, pose_position_ids, table_size, uses_offsets
from ..ppc import position_loss
from ..store import load_torch
from ..tasks import Task


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def longest_length(cfg: RunConfig) -> int:
    return max([cfg.task.train_lengths[1]] + [hi for _, hi in cfg.task.eval_bins])


def trains_with_offsets(cfg: RunConfig) -> bool:
    """Whether the run shifts its training examples by random offsets (`positions.uses_offsets`)."""
    from ..model.positional import SCHEMES

    return uses_offsets(cfg.train.position_offset, SCHEMES[cfg.model.positional].has_table,
                        cfg.model.predict_positions)


def offset_length(cfg: RunConfig) -> int | None:
    """The length training offsets serve (`data.train_batch`'s offset_max_length), None without offsets."""
    return longest_length(cfg) if trains_with_offsets(cfg) else None


def build_model(cfg: RunConfig, task: Task) -> Transformer:
    m = cfg.model
    size = m.max_positions or max(table_size(task, cfg.task.train_lengths, longest_length(cfg),
                                             cfg.train.position_offset != "none"), cfg.train.pose_window or 0)
    return Transformer(m, vocab_size=len(task.vocab), max_positions=size)


def train_position_sampler(cfg: RunConfig, model: Transformer) -> PositionSampler | None:
    """The transform redrawing each training example's IDs: PoSE when `train.pose_window` is set,
    else the scheme's own (randomized positions), else none."""
    if cfg.train.pose_window is not None:
        return functools.partial(pose_position_ids, cfg.train.pose_window, cfg.train.pose_chunks)
    return model.pos.train_position_sampler()


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


def make_schedule(opt: torch.optim.Optimizer, cfg: RunConfig, last_step: int = -1):
    """Warm-up then decay (`lr_factor`); `last_step` starts it after that many steps were taken."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg), last_epoch=last_step)


def loss_on(model, batch: Batch, bf16: bool, device, position_loss_weight: float = 0.0) -> torch.Tensor:
    """Next-token cross-entropy, plus the weighted PPC position-ID loss for a model with a position head."""
    with autocast(device, bf16):
        out = model(batch.inputs, batch.position_ids)
    return output_loss(out, batch, position_loss_weight)


def output_loss(out: Output, batch: Batch, position_loss_weight: float = 0.0) -> torch.Tensor:
    """`loss_on` for a model output already computed."""
    loss = F.cross_entropy(out.logits.float().flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)
    if out.position_logits is not None and position_loss_weight:
        loss = loss + position_loss_weight * position_loss(out.position_logits, batch)
    return loss


def run_record(cfg: RunConfig, model: Transformer) -> dict:
    """The config stored with a run: every field with defaults filled in, plus what was resolved
    from them (table size, vocabulary, parameter count, whether training uses position offsets, and
    how many distinct examples a fixed training set holds)."""
    config = cfg.model_dump(mode="json")
    config["resolved"] = {"max_positions": model.max_positions, "vocab_size": model.vocab_size,
                          "num_params": model.num_params(), "position_offsets": trains_with_offsets(cfg)}
    if cfg.train.dataset_size is not None:
        training_set = TrainingSet(cfg.task.build(), cfg.seed, cfg.train.dataset_size, cfg.task.train_lengths)
        config["resolved"]["training_set_size"] = len(training_set)
    return config


def load_model(path, device="cpu", cache_dir=None) -> tuple[Transformer, RunConfig]:
    """A finished run's model and config from its model file (`ResultsStore.model_path`);
    `cache_dir`: where its task finds what it derived before (`ResultsStore.cache_dir`)."""
    try:
        ck = load_torch(path, device)
        config = dict(ck["config"])
        resolved = config.pop("resolved")
    except Exception as err:  # unreadable, truncated, not a torch file, or not one of ours
        raise ValueError(f"{path} is not a readable lengthgen model file ({type(err).__name__}: {err})") from None
    cfg = load_run_config(config)
    m = cfg.model.model_copy(update={"max_positions": resolved["max_positions"]})
    task = cfg.task.build()
    if cache_dir is not None:
        task.set_cache_dir(cache_dir)
    model = build_model(cfg.model_copy(update={"model": m}), task)
    model.load_state_dict(ck["model"])
    return model.to(device), cfg
