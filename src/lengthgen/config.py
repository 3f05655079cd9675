"""Run configuration: one validated pydantic schema for everything a run needs.

A run is fully described by its `RunConfig`; the results store keeps the resolved config (with
defaults filled in) so that every stored number can be reproduced. Unknown fields and bad values
fail at load time with the field's name and the allowed values.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Evaluation sets are drawn from numpy SeedSequence([EVAL_STREAM, lo, hi, ...]); training
# batches come from SeedSequence([seed, step]), so no training run ever draws an eval set.
EVAL_STREAM = 0x5EED_E7A1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Bin = tuple[int, int]


def _check_bin(b: Bin, what: str) -> Bin:
    lo, hi = b
    if not 0 <= lo <= hi:
        raise ValueError(f"{what} [{lo}, {hi}] must satisfy 0 <= lo <= hi")
    return b


class TaskConfig(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    train_lengths: Bin | None = None  # inclusive; None = the task's default
    eval_bins: list[Bin] | None = None  # inclusive bins; None = the task's default

    @model_validator(mode="after")
    def _task_exists(self):
        from .tasks import make_task

        task = make_task(self.name, **self.params)  # raises with the allowed names/params
        if self.train_lengths is None:
            self.train_lengths = tuple(task.default_train_lengths)
        if self.eval_bins is None:
            self.eval_bins = [tuple(b) for b in task.default_eval_bins]
        for field, b in [("train_lengths", self.train_lengths)] + [("eval_bins", b) for b in self.eval_bins]:
            _check_bin(b, f"{field} range")
            try:
                valid = task.valid_lengths(*b)
            except ValueError as err:
                raise ValueError(f"{field}: {err}") from None
            if not valid:
                raise ValueError(f"{field}: task {self.name!r} has no valid length in {list(b)}")
        return self

    def build(self):
        from .tasks import make_task

        return make_task(self.name, **self.params)


class ModelConfig(Strict):
    positional: str = "ape"
    positional_params: dict[str, Any] = Field(default_factory=dict)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    d_model: int = Field(64, ge=1)
    d_mlp: int | None = None  # None = 4 * d_model
    tie_weights: bool = True
    max_positions: int | None = None  # None = enough for the longest evaluation bin
    # PPC: a second head predicts the next token's position ID, and greedy decoding feeds the
    # predicted IDs back (ppc.py). Needs a task that provides position IDs.
    predict_positions: bool = False

    @field_validator("positional")
    @classmethod
    def _known_scheme(cls, v):
        from .model.positional import SCHEMES

        if v not in SCHEMES:
            raise ValueError(f"unknown positional scheme {v!r}; choose one of: {', '.join(sorted(SCHEMES))}")
        return v

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        return self


class TrainConfig(Strict):
    steps: int = Field(2000, ge=0)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    grad_clip: float | None = Field(1.0, gt=0)
    # "auto": random offsets when the scheme has a finite position table (APE), else none.
    position_offset: Literal["auto", "random", "none"] = "auto"
    bf16: bool = False
    # Sorted sub-batches per step, each padded only to its own longest example (gradient
    # accumulation; same gradient up to summation order). 1 = one padded batch.
    length_buckets: int = Field(1, ge=1)
    eval_every: int = Field(250, ge=1)
    eval_examples: int = Field(256, ge=1)  # in-distribution check examples
    early_stop_acc: float | None = Field(1.0, ge=0, le=1)
    checkpoint_every: int = Field(500, ge=1)
    positional_reg: float = Field(0.0, ge=0)  # coefficient of the positional-attention penalty
    position_loss_weight: float = Field(1.0, ge=0)  # weight of the PPC position-ID loss
    # PoSE (positions.pose_position_ids): each training example's IDs skip-wise spread over a
    # target window of this many positions, in `pose_chunks` chunks. None = plain IDs.
    pose_window: int | None = Field(None, ge=1)
    pose_chunks: int = Field(2, ge=1)


class EvalConfig(Strict):
    examples_per_bin: int = Field(500, ge=1)
    batch_size: int = Field(256, ge=1)
    greedy: bool = True


KEY_NEUTRAL_DEFAULTS = [("model", "predict_positions", False), ("train", "position_loss_weight", 1.0),
                        ("train", "length_buckets", 1), ("train", "pose_window", None), ("train", "pose_chunks", 2)]


class RunConfig(Strict):
    name: str | None = None
    experiment: str | None = None
    seed: int = Field(0, ge=0)
    device: str = "auto"  # auto = cuda when available, else cpu
    # Processes drawing training batches ahead of the step that needs them (0 = draw in the run's
    # own process). Worth it on a GPU, where tiny models train faster than Python samples.
    data_workers: int = Field(0, ge=0)
    task: TaskConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _ppc_needs_task_ids(self):
        if self.model.predict_positions:
            import numpy as np

            task = self.task.build()
            n = task.valid_lengths(*self.task.train_lengths)[0]
            if task.sample(np.random.default_rng(0), n).position_ids is None:
                raise ValueError(f"model.predict_positions: task {self.task.name!r} with params {task.params()} "
                                 "gives no position IDs (sequential positions), so there are none to predict; use "
                                 "a coupled task (e.g. sparse_parity_scratchpad, var_chain with positions: coupled)")
        return self

    @model_validator(mode="after")
    def _pose_fits(self):
        window = self.train.pose_window
        if window is not None:
            if self.model.positional == "randomized":
                raise ValueError("train.pose_window: PoSE and randomized positions both redraw position IDs; use one")
            need = self.task.build().seq_len(self.task.train_lengths[1])
            if window < need:
                raise ValueError(f"train.pose_window={window} is shorter than the longest training example ({need} tokens)")
        return self

    def key(self) -> str:
        """Deterministic identity of a run: a hash of everything that affects its results."""
        d = self.model_dump(mode="json", exclude={"name", "experiment", "device", "data_workers"})
        # Fields added after runs were stored leave the hash alone at their defaults, so those
        # runs keep their keys (and resume/skip as before).
        for section, field, default in KEY_NEUTRAL_DEFAULTS:
            if d[section][field] == default:
                del d[section][field]
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(config)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e.get('input')!r})"
        lines.append(f"  {loc}: {msg}")
    return "invalid config:\n" + "\n".join(lines)


class ConfigError(ValueError):
    pass


def load_run_config(data: dict) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def set_dotted(d: dict, dotted: str, value) -> None:
    """Set `a.b.c` in nested dicts, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a section")
    d[leaf] = value


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def merged(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        set_dotted(out, k, copy.deepcopy(v))
    return out
