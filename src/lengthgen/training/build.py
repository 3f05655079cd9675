"""What a run is built from: its device, model, optimizer, schedule and loss."""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from ..config import RunConfig, load_run_config
from ..data import IGNORE, Batch, TrainingSet
from ..errors import InputError
from ..evaluate import autocast
from ..model import Output, Transformer
from ..positions import PositionSampler, pose_position_ids, table_size, uses_offsets
from ..ppc import position_loss
from ..store import load_torch
from ..tasks import Task


def resolve_device(name: str) -> torch.device:
    """The torch device a config or `--device` names; one this machine lacks is a ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s) usable by "
                         f"torch {torch.__version__}; use device cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r}: MPS is not available on this machine; use device cpu or auto")
    return device


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
    frac = min(1.0, (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps))
    decay = 1.0 - frac if t.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))
    return t.min_lr_ratio + (1.0 - t.min_lr_ratio) * decay


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


def loss_on(model, batch: Batch, bf16: bool, device, position_loss_weight: float = 0.0,
            scored_only: bool = False) -> torch.Tensor:
    """Next-token cross-entropy, plus the weighted PPC position-ID loss for a model with a position head.
    `scored_only` (a model without a position head): the logits at the scored positions only, the
    same loss with less compute where few targets are scored."""
    at = scored_positions(batch.targets) if scored_only else None
    with autocast(device, bf16):
        out = model(batch.inputs, batch.position_ids, at=at)
    if at is not None:  # the logits are the chosen positions': so are the targets
        batch = dataclasses.replace(batch, targets=batch.targets.gather(1, at))
    return output_loss(out, batch, position_loss_weight)


def scored_positions(targets: torch.Tensor) -> torch.Tensor:
    """[B, S] per example its scored positions in order, then unscored ones (targets IGNORE) up to
    S = the most scored positions of any example."""
    scored = targets != IGNORE
    most = max(int(scored.sum(1).max()), 1)
    return torch.argsort((~scored).to(torch.int8), dim=1, stable=True)[:, :most]


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


def check_tensors(found, expected: dict, what: str) -> None:
    """`found` must be a state dict like `expected`: the same names, shapes and dtypes, tensors only."""
    if not isinstance(found, dict):
        raise InputError(f"{what}: expected a state dict, got {type(found).__name__}")
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys(), key=str)
    if missing or extra:
        raise InputError(f"{what}: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, want in expected.items():
        got = found[name]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            shown = f"{tuple(got.shape)} {got.dtype}" if isinstance(got, torch.Tensor) else type(got).__name__
            raise InputError(f"{what}: {name} is {shown}, expected {tuple(want.shape)} {want.dtype}")


def read_model_file(path, device="cpu") -> tuple[RunConfig, dict]:
    """A model file's config (with its position-table size) and weights, each checked against what
    `lifecycle.finish` writes; anything else is a ValueError naming the file."""
    try:
        ck = load_torch(path, device)
        if not isinstance(ck, dict) or set(ck) != {"config", "model", "version"}:
            raise InputError(f"keys {sorted(ck, key=str) if isinstance(ck, dict) else type(ck).__name__}, expected "
                             "config, model, version")
        config = dict(ck["config"])
        size = dict(config.pop("resolved"))["max_positions"]
        cfg = load_run_config(config)
        # Through the config's own bounds: a crafted table size must not allocate gigabytes.
        model_cfg = type(cfg.model).model_validate({**cfg.model.model_dump(), "max_positions": size})
        cfg = cfg.model_copy(update={"model": model_cfg})
        task = cfg.task.build()
        with torch.device("meta"):  # the shapes the weights must have, without allocating them
            check_tensors(ck["model"], build_model(cfg, task).state_dict(), "weights")
    except Exception as err:  # unreadable, truncated, not a torch file, or not one of ours
        raise InputError(f"{path} is not a readable lengthgen model file ({type(err).__name__}: {err})") from None
    return cfg, ck["model"]


def load_model(path, device="cpu", cache_dir=None) -> tuple[Transformer, RunConfig]:
    """A finished run's model and config from its model file (`ResultsStore.model_path`);
    `cache_dir`: where its task finds what it derived before (`ResultsStore.cache_dir`)."""
    cfg, weights = read_model_file(path, device)
    model = build_model(cfg, cfg.task.build(cache_dir))
    model.load_state_dict(weights)
    return model.to(device), cfg
