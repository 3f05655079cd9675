"""Run configuration: one validated pydantic schema for everything a run needs.

A run is fully described by its `RunConfig`; the results store keeps the resolved config (with
defaults filled in) so that every stored number can be reproduced. Unknown fields and bad values
fail at load time with the field's name and the allowed values.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from .errors import InputError
from .evaluation_modes import evaluation_mode


class Strict(BaseModel):
    # allow_inf_nan=False: an infinite or NaN lr, weight decay or coefficient is never meant.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _not_a_boolean(value):
    # YAML's `true` is a bool, and a bool is an int to pydantic: `steps: true` ran one step.
    if isinstance(value, bool):
        raise InputError(f"expected a number, got the boolean {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_a_boolean)]
Float = Annotated[float, BeforeValidator(_not_a_boolean)]
Bin = tuple[Int, Int]

DEVICES = "auto, cpu, cuda, cuda:N, mps"
# Bounds far above anything trained here on sizes that input can make large: a typo must be an
# error, not hours of silent work or an allocation that takes the machine down.
MAX_LENGTH = 1 << 16  # task lengths (train_lengths, eval_bins); the presets reach 4,096
MAX_EXAMPLES = 100_000  # evaluation examples per bin or check; the presets use at most 2,000
MAX_BATCH = 1 << 16
MAX_DATA_WORKERS = 64
MAX_SEED = 2 ** 63  # exclusive: seeds are stored as SQLite's signed 64-bit integers


def check_device(name: str) -> str:
    """A device name torch understands and lengthgen supports; anything else fails with the choices."""
    if not (isinstance(name, str) and re.fullmatch(r"auto|cpu|cuda|cuda:\d+|mps", name)):
        raise InputError(f"unknown device {name!r}; allowed: {DEVICES}")
    return name


def _check_bin(b: Bin, what: str) -> Bin:
    lo, hi = b
    if not 0 <= lo <= hi <= MAX_LENGTH:
        raise InputError(f"{what} [{lo}, {hi}] must satisfy 0 <= lo <= hi <= {MAX_LENGTH:,}")
    return b


def judged_bin(eval_bins, judged=None) -> Bin:
    """The bin a run's verdict judges: `judged` where a config names one, else the longest bin."""
    return tuple(judged) if judged is not None else tuple(max(eval_bins, key=lambda b: (b[1], b[0])))


class TaskConfig(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    train_lengths: Bin | None = None  # inclusive; None = the task's default
    eval_bins: list[Bin] | None = None  # inclusive bins; None = the task's default
    # The bin that verdicts judge and that validation draws come from: a paper's own test bin when
    # longer bins are a secondary view. None = the longest evaluation bin.
    judged_bin: Bin | None = None

    @field_validator("eval_bins")
    @classmethod
    def _bins_once(cls, bins):
        # The store keys metrics by bin: a repeated bin would fail only after training.
        repeated = sorted({b for b in bins or [] if bins.count(b) > 1})
        if repeated:
            raise InputError(f"bin(s) {[list(b) for b in repeated]} given twice; give each bin once")
        return bins

    @model_validator(mode="after")
    def _task_exists(self):
        from .tasks import available_tasks, make_task

        try:
            task = make_task(self.name, **self.params)  # raises with the allowed names/params
        except ValueError as err:
            raise InputError(f"{'params' if self.name in available_tasks() else 'name'}: {err}") from None
        except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as err:
            # A task checks the values it expects; one of another type can still trip it up
            # (None.startswith): the params are at fault, so say that instead of a traceback.
            raise InputError(f"params {self.params}: task {self.name!r} cannot be built from them "
                             f"({type(err).__name__}: {err})") from None
        if self.train_lengths is None:
            self.train_lengths = tuple(task.default_train_lengths)
        if self.eval_bins is None:
            self.eval_bins = [tuple(b) for b in task.default_eval_bins]
        if self.judged_bin is not None and tuple(self.judged_bin) not in {tuple(b) for b in self.eval_bins}:
            raise InputError(f"judged_bin {list(self.judged_bin)} is not one of the eval_bins "
                             f"{[list(b) for b in self.eval_bins]}")
        for field, b in [("train_lengths", self.train_lengths)] + [("eval_bins", b) for b in self.eval_bins]:
            _check_bin(b, f"{field} range")
            try:
                task.valid_lengths(*b)
            except ValueError as err:
                raise InputError(f"{field}: {err}") from None
        return self

    def judged(self) -> Bin:
        """The bin verdicts judge: `judged_bin`, else the longest evaluation bin."""
        return judged_bin(self.eval_bins, self.judged_bin)

    def build(self, cache_dir: Path | None = None):
        """The task; `cache_dir` (`ResultsStore.cache_dir`) is where a task that keeps what it derives
        (`tasks.UsesCache`) keeps it."""
        from .tasks import UsesCache, make_task

        task = make_task(self.name, **self.params)
        if cache_dir is not None and isinstance(task, UsesCache):
            task.set_cache_dir(cache_dir)
        return task


class ModelConfig(Strict):
    positional: str = "ape"
    positional_params: dict[str, Any] = Field(default_factory=dict)
    # Upper bounds far above anything trained here turn a typo (d_model: 10000000000) into an
    # error instead of an allocation that takes the machine down.
    n_layers: Int = Field(2, ge=1, le=1024)
    n_heads: Int = Field(2, ge=1)
    d_model: Int = Field(64, ge=1, le=65536)
    d_mlp: Int | None = Field(None, ge=1, le=1 << 20)  # None = 4 * d_model
    tie_weights: bool = True
    # Std of the normal init of token and position embeddings. 0.02 is GPT-2's; Cho et al.'s T5
    # decoder draws both from N(0, 1) (Mesh-TF init), which keeps the position vectors of a wide
    # model nearly orthogonal however little training touches them.
    embedding_init_std: Float = Field(0.02, gt=0, le=10)
    max_positions: Int | None = Field(None, ge=1, le=1 << 24)  # None = enough for the longest evaluation bin
    # PPC: a second head predicts the next token's position ID, and greedy decoding feeds the
    # predicted IDs back (ppc.py). Needs a task that provides position IDs.
    predict_positions: bool = False
    # "log_length": Scalable-Softmax (Nakanishi 2025): each query's attention logits times s_h·ln(keys
    # it sees), s_h learned per head; "none": plain softmax attention (every paper reproduced here).
    attention_scale: Literal["none", "log_length"] = "none"

    @field_validator("positional")
    @classmethod
    def _known_scheme(cls, v):
        from .model.positional import SCHEMES

        if v not in SCHEMES:
            raise InputError(f"unknown positional scheme {v!r}; choose one of: {', '.join(sorted(SCHEMES))}")
        return v

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.d_model % self.n_heads:
            raise InputError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        return self

    @model_validator(mode="after")
    def _scheme_accepts_params(self):
        # Build the scheme once, with a one-entry table, so that a bad parameter fails with the
        # config and not after the run's row exists.
        from .model.positional import make_scheme

        try:
            make_scheme(self.positional, self.d_model, self.n_heads, 1, **self.positional_params)
        except ValueError as err:
            raise InputError(f"positional {self.positional!r} with positional_params {self.positional_params}: "
                             f"{err}") from None
        return self


class TrainConfig(Strict):
    steps: Int = Field(2000, ge=0)
    batch_size: Int = Field(64, ge=1, le=MAX_BATCH)
    lr: Float = Field(1e-3, gt=0)
    weight_decay: Float = Field(0.01, ge=0)
    betas: tuple[Annotated[Float, Field(ge=0, lt=1)], Annotated[Float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    warmup_steps: Int = Field(0, ge=0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    # The decay ends at this fraction of lr instead of 0 (Cho et al.: cosine down to 0.1x).
    min_lr_ratio: Float = Field(0.0, ge=0, le=1)
    grad_clip: Float | None = Field(1.0, gt=0)
    # "auto": random offsets when the scheme has a finite position table (APE), else none.
    position_offset: Literal["auto", "random", "none"] = "auto"
    bf16: bool = False
    # Sorted sub-batches per step, each padded only to its own longest example (gradient
    # accumulation; same gradient up to summation order). 1 = one padded batch; "auto" = per step,
    # as many as compute the fewest tokens (data.auto_parts; 1 when the lengths are equal).
    length_buckets: Annotated[Int, Field(ge=1)] | Literal["auto"] = "auto"
    # A fixed training set of this many distinct examples, drawn once from the run's seed and
    # iterated in shuffled epochs (data.TrainingSet); None = fresh examples at every step.
    dataset_size: Int | None = Field(None, ge=1, le=10_000_000)
    eval_every: Int = Field(250, ge=1)
    # Learning curves per length bin: at every in-distribution check, the reported metric on a
    # fixed set of `curve_examples` per bin (a draw no reported set uses), stored as curves named
    # "<metric>@<lo>-<hi>". "eval" = the evaluation bins; None = off.
    curve_bins: list[Bin] | Literal["eval"] | None = None
    curve_examples: Int = Field(64, ge=1, le=MAX_EXAMPLES)
    eval_examples: Int = Field(256, ge=1, le=MAX_EXAMPLES)  # in-distribution check examples
    early_stop_acc: Float | None = Field(1.0, ge=0, le=1)
    # What the early-stop check measures: "held_out", a set of eval_examples from the training
    # lengths (ours); "eval_bins", the reported set of the first evaluation bin (examples_per_bin
    # examples), as Huang et al.'s code does. Either way the LR schedule keeps its horizon (steps).
    early_stop_on: Literal["held_out", "eval_bins"] = "held_out"
    checkpoint_every: Int = Field(500, ge=1)
    positional_reg: Float = Field(0.0, ge=0)  # coefficient of the positional-attention penalty
    position_loss_weight: Float = Field(1.0, ge=0)  # weight of the PPC position-ID loss
    # PoSE (positions.pose_position_ids): each training example's IDs skip-wise spread over a
    # target window of this many positions, in `pose_chunks` chunks. None = plain IDs.
    pose_window: Int | None = Field(None, ge=1)
    pose_chunks: Int = Field(2, ge=1)


class EvalConfig(Strict):
    examples_per_bin: Int = Field(500, ge=1, le=MAX_EXAMPLES)
    # A validation draw of the judged bin (fresh examples from a stream no reported set uses),
    # stored under the group "validation", for choosing among configurations without the test draw.
    validation_examples: Int = Field(0, ge=0, le=MAX_EXAMPLES)
    batch_size: Int = Field(256, ge=1, le=MAX_BATCH)
    greedy: bool = True


class RunConfig(Strict):
    name: str | None = None
    experiment: str | None = None
    seed: Int = Field(0, ge=0, lt=MAX_SEED)
    device: str = "auto"  # auto = cuda when available, else cpu
    # Processes drawing training batches ahead of the step that needs them (0 = draw in the run's
    # own process). Worth it on a GPU, where tiny models train faster than Python samples.
    data_workers: Int = Field(0, ge=0, le=MAX_DATA_WORKERS)
    task: TaskConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("device")
    @classmethod
    def _known_device(cls, v):
        return check_device(v)

    @model_validator(mode="after")
    def _ppc_needs_task_ids(self):
        if self.model.predict_positions:
            import numpy as np

            task = self.task.build()
            n = task.valid_lengths(*self.task.train_lengths)[0]
            if task.sample(np.random.default_rng(0), n).position_ids is None:
                raise InputError(f"model.predict_positions: task {self.task.name!r} with params {task.params()} "
                                 "gives no position IDs (sequential positions), so there are none to predict; use "
                                 "a coupled task (e.g. sparse_parity_scratchpad, var_chain with positions: coupled)")
        return self

    @model_validator(mode="after")
    def _curve_bins_valid(self):
        if self.train.curve_bins is not None and not evaluation_mode(self.task.build().evaluation).per_length_bin:
            raise InputError(f"train.curve_bins: task {self.task.name!r} is scored by context buckets, not exact match "
                             "per bin; leave curve_bins unset")
        if isinstance(self.train.curve_bins, list):
            task = self.task.build()
            for b in self.train.curve_bins:
                _check_bin(b, "train.curve_bins range")
                try:
                    task.valid_lengths(*b)
                except ValueError as err:
                    raise InputError(f"train.curve_bins: {err}") from None
        return self

    def curve_bins(self) -> list[Bin]:
        """The bins of the learning curves (`train.curve_bins` resolved; empty when off)."""
        bins = self.train.curve_bins
        return [tuple(b) for b in (self.task.eval_bins if bins == "eval" else bins or [])]

    @model_validator(mode="after")
    def _pose_fits(self):
        window = self.train.pose_window
        if window is not None:
            if self.model.positional == "randomized":
                raise InputError("train.pose_window: PoSE and randomized positions both redraw position IDs; use one")
            need = self.task.build().seq_len(self.task.train_lengths[1])
            if window < need:
                raise InputError(f"train.pose_window={window} is shorter than the longest training example ({need} tokens)")
        return self

    def reported_metric(self) -> str:
        """What `lengthgen run` reports: the task's metric, teacher-forced where greedy decoding is
        off (`eval.greedy: false` stores no greedy results)."""
        return evaluation_mode(self.task.build().evaluation).reported_metric(self.eval.greedy)

    def key(self) -> str:
        """Deterministic identity of a run: a hash of everything that affects its results."""
        d = self.model_dump(mode="json", exclude={"name", "experiment", "device", "data_workers"})
        # Automatic sub-batches compute the one padded batch's gradient up to summation order: like
        # the device, how a step is computed, not which run it is (the same key as one batch).
        if d["train"]["length_buckets"] == "auto":
            d["train"]["length_buckets"] = 1
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


class ConfigError(InputError):
    """A config, flag or experiment file that cannot be used."""


def load_run_config(data: dict) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None


def flat_fields(d: dict, prefix: str = "") -> dict:
    """Nested config sections as one level of dotted fields: {"model": {"n_layers": 2}} -> {"model.n_layers": 2}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat_fields(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def set_dotted(d: dict, dotted: str, value) -> None:
    """Set `a.b.c` in nested dicts, creating levels as needed."""
    if not isinstance(dotted, str):
        raise ConfigError(f"config keys are field names (dotted for nested fields), got {dotted!r}")
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"cannot set {dotted!r}: {p!r} is not a section")
    d[leaf] = value


# --- reading YAML ----------------------------------------------------------------------------
# Config files come from anywhere (a colleague, a paper's repository), so the reader builds plain
# data only and bounds its work: a tag could name a Python constructor, and a few hundred bytes of
# nested aliases expand to billions of values once anything walks the result (the "billion laughs").

MAX_YAML_NODES = 100_000  # values in the document once every alias is expanded; presets hold ~1,200
MAX_YAML_DEPTH = 64  # nesting levels; configs use about 5
PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class _PlainDataLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses explicit tags beyond the plain types, and documents whose
    aliases expand beyond MAX_YAML_NODES values or nest beyond MAX_YAML_DEPTH levels."""

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self.name = source  # error marks say where: "in <source>, line 3, column 7"
        self.expanded: dict[int, int] = {}  # id(node) -> values in it, aliases expanded
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)) and event.tag not in (None, "!"):
            if event.tag not in PLAIN_TAGS:
                tag = event.tag.replace("tag:yaml.org,2002:", "!!")
                raise ConfigError(f"{self.name}, line {event.start_mark.line + 1}: YAML tag {tag} refused: a config "
                                  "holds plain data only (mappings, lists, strings, numbers, booleans, null)")
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{self.name}, line {event.start_mark.line + 1}: nested too deep (more than "
                              f"{MAX_YAML_DEPTH} levels)")
        node = super().compose_node(parent, index)
        self.depth -= 1
        if id(node) not in self.expanded:
            if isinstance(event, yaml.AliasEvent):  # an alias to a node still being composed
                raise ConfigError(f"{self.name}, line {event.start_mark.line + 1}: alias *{event.anchor} refers to "
                                  "itself (a recursive structure)")
            self.expanded[id(node)] = 1 + sum(self.expanded[id(child)] for child in _children(node))
        if self.expanded[id(node)] > MAX_YAML_NODES:
            raise ConfigError(f"{self.name}, line {event.start_mark.line + 1}: aliases expand to more than "
                              f"{MAX_YAML_NODES:,} values; refusing the document (an alias bomb?)")
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except ConfigError:
            raise
        except (ValueError, IndexError, KeyError):  # PyYAML's own on `!!int ""` or a date like 2024-13-45
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"{self.name}, line {node.start_mark.line + 1}: {node.value!r} is not a valid "
                              f"{tag}") from None


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, source: str):
    """`yaml.safe_load(text)` with tags, alias bombs and deep nesting refused; any problem is a
    ConfigError that names `source` and the line."""
    try:
        loader = _PlainDataLoader(text, source)  # already reads, and refuses control characters
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file; give a YAML config") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def merged(base: dict, overrides: dict) -> dict:
    """`base` with each dotted key of `overrides` set (an experiment's base, runs and grid points)."""
    if not isinstance(base, dict):
        raise ConfigError(f"the base config must be a mapping of config fields, got {base!r}")
    if not isinstance(overrides, dict):
        raise ConfigError(f"overrides must map dotted config fields to values, got {overrides!r}")
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        set_dotted(out, k, copy.deepcopy(v))
    return out
