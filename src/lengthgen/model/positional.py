"""Positional schemes, each a small module chosen by name from `SCHEMES`.

Position IDs are data: every scheme receives explicit `position_ids` [B, T] and the model never
branches on the scheme. A scheme acts through up to three hooks, each a no-op by default:

- `embed(position_ids)`: a [B, T, D] tensor added to the token embeddings (APE, sinusoidal);
- `rotate(q, k, position_ids)`: transforms queries and keys [B, H, T, Dh] (RoPE);
- `bias(position_ids)`: an additive attention bias [B, H, T, T] (ALiBi).

Besides, a scheme declares what the data and training around it need: `has_table` (a finite
table: random training offsets, IDs beyond it refused), `train_position_sampler` /
`eval_position_sampler` (a data transform redrawing the IDs, `positions.PositionSampler`) and
`position_table` (the table the positional regulariser penalises).
"""

from __future__ import annotations

import functools
import math
import numbers

import torch
from torch import nn

from ..errors import InputError
from ..positions import PositionSampler, subset_positions
from ..tasks.base import same_definition

SCHEMES: dict[str, type["PositionalScheme"]] = {}


def register_scheme(name: str):
    """Add a scheme class under `name`. The same definition again replaces it; another class under
    a taken name is an error."""
    def add(cls):
        old = SCHEMES.get(name)
        if old is not None and not same_definition(old, cls):
            raise InputError(f"positional scheme {name!r} is already registered by {old.__module__}."
                             f"{old.__qualname__}; choose another name for {cls.__module__}.{cls.__qualname__}")
        cls.name = name
        SCHEMES[name] = cls
        return cls

    return add


def make_scheme(name: str, d_model: int, n_heads: int, max_positions: int, **params) -> "PositionalScheme":
    if name not in SCHEMES:
        raise InputError(f"unknown positional scheme {name!r}; choose one of: {', '.join(sorted(SCHEMES))}")
    try:
        return SCHEMES[name](d_model=d_model, n_heads=n_heads, max_positions=max_positions, **params)
    except TypeError as err:
        raise InputError(f"bad parameters for positional scheme {name!r}: {err}") from None


def frequency_base(scheme: str, base) -> float:
    """The base b of the frequencies b^(-2k/d): a finite number > 1, so that they fall with k."""
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not math.isfinite(base) or base <= 1:
        raise InputError(f"{scheme}: base must be a finite number > 1 (frequencies base^(-2k/d) fall with k), "
                         f"got {base!r}")
    return float(base)


class PositionalScheme(nn.Module):
    name: str
    # True when positions index a finite trained table: such schemes need random offsets in
    # training so that every entry is trained, and refuse positions beyond the table.
    has_table = False

    def __init__(self, d_model: int, n_heads: int, max_positions: int):
        super().__init__()
        self.max_positions = max_positions

    def embed(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        return None

    def rotate(self, q: torch.Tensor, k: torch.Tensor, position_ids: torch.Tensor):
        return q, k

    def bias(self, position_ids: torch.Tensor) -> torch.Tensor | None:
        return None

    def train_position_sampler(self) -> PositionSampler | None:
        """A transform applied to every training example's IDs (None: the IDs as they are)."""
        return None

    def eval_position_sampler(self) -> PositionSampler | None:
        """A transform applied to every evaluation example's IDs (None: the IDs as they are)."""
        return None

    def position_table(self) -> nn.Embedding | None:
        """The learned absolute position table P of Huang et al.'s regulariser (None: no such table)."""
        return None


@register_scheme("nope")
class NoPE(PositionalScheme):
    """No positional information: the causal mask alone breaks symmetry."""


@register_scheme("ape")
class LearnedAbsolute(PositionalScheme):
    """Learned absolute position embeddings (GPT-2)."""

    has_table = True

    def __init__(self, d_model, n_heads, max_positions):
        super().__init__(d_model, n_heads, max_positions)
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def embed(self, position_ids):
        top = int(position_ids.max())
        if top >= self.max_positions:
            raise InputError(f"position id {top} is beyond the learned position table (ids 0..{self.max_positions - 1}); "
                             "raise model.max_positions or evaluate shorter lengths")
        return self.table(position_ids)

    def position_table(self):
        return self.table


@register_scheme("sinusoidal")
class Sinusoidal(PositionalScheme):
    """Fixed sin/cos features of the position (Vaswani et al. 2017), computed for any ID."""

    def __init__(self, d_model, n_heads, max_positions, base: float = 10000.0):
        super().__init__(d_model, n_heads, max_positions)
        half = (d_model + 1) // 2
        base = frequency_base("sinusoidal", base)
        self.register_buffer("freq", base ** (-torch.arange(half, dtype=torch.float32) / half), persistent=False)
        self.d_model = d_model

    def embed(self, position_ids):
        angle = position_ids.float()[..., None] * self.freq
        return torch.cat([angle.sin(), angle.cos()], dim=-1)[..., : self.d_model]


@register_scheme("rope")
class Rotary(PositionalScheme):
    """Rotary embeddings (Su et al. 2021): rotate query/key pairs by position-dependent angles.

    Context extension (for a model trained at context L run at αL; usually set at evaluation by
    `set_extension`, lm_eval.py): `scale` = α is position interpolation (Chen et al. 2023),
    every ID divided by α; `ntk_factor` = α is NTK-aware scaling (bloc97 2023), the base raised
    to base·α^(d/(d−2)) for head dimension d. Both default to 1 (plain RoPE).
    """

    def __init__(self, d_model, n_heads, max_positions, base: float = 10000.0, scale: float = 1.0,
                 ntk_factor: float = 1.0):
        super().__init__(d_model, n_heads, max_positions)
        self.head_dim, self.base = d_model // n_heads, frequency_base("rope", base)
        if self.head_dim % 2:
            raise InputError(f"rope needs an even head dimension, got d_model/n_heads = {self.head_dim}")
        self.register_buffer("inv_freq", torch.zeros(self.head_dim // 2), persistent=False)
        self.register_buffer("turns", torch.ones(0, self.head_dim // 2, dtype=torch.complex64), persistent=False)
        self.set_extension(scale, ntk_factor)

    def set_extension(self, scale: float = 1.0, ntk_factor: float = 1.0) -> None:
        if scale <= 0 or ntk_factor < 1:
            raise InputError(f"rope: scale must be > 0 and ntk_factor >= 1, got {scale}, {ntk_factor}")
        if ntk_factor != 1 and self.head_dim < 4:
            raise InputError(f"rope: ntk_factor needs a head dimension >= 4, got {self.head_dim}")
        self.scale, self.ntk_factor = scale, ntk_factor
        base = self.base * ntk_factor ** (self.head_dim / (self.head_dim - 2)) if ntk_factor != 1 else self.base
        dims = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.inv_freq.device)
        self.inv_freq = base ** (-dims / self.head_dim) / scale
        self.turns = self.turns[:0]  # the angles changed: the table is rebuilt when next needed

    def rotations(self, position_ids) -> torch.Tensor:
        """e^(i·id·θ) for each ID [B, T] as [B, 1, T, Dh/2], from a table of IDs 0..n−1 that grows
        (doubling) when a larger ID comes: computed once, not every step. Fractional IDs get their
        angles computed."""
        if position_ids.is_floating_point():
            angle = position_ids[:, None, :, None] * self.inv_freq
            return torch.polar(torch.ones_like(angle), angle)
        low, top = map(int, torch.aminmax(position_ids))
        if low < 0:
            raise ValueError(f"rope: position IDs must be >= 0, got {low}")
        if top >= len(self.turns):
            n = max(top + 1, 2 * len(self.turns), 64)
            angle = torch.arange(n, dtype=torch.float32, device=self.inv_freq.device)[:, None] * self.inv_freq
            self.turns = torch.polar(torch.ones_like(angle), angle)
        return self.turns[position_ids][:, None]

    def rotate(self, q, k, position_ids):
        # Each adjacent pair (x[2i], x[2i+1]) is the complex number x[2i] + i·x[2i+1], turned by
        # the angle id·θ_i: one complex multiply instead of strided slices and a stack.
        turns = self.rotations(position_ids)

        def turn(x):
            pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
            return torch.view_as_real(pairs * turns).flatten(-2).type_as(x)

        return turn(q), turn(k)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Geometric slopes 2^(-8h/H) of Press et al. (2022), extended to any head count."""
    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = [2 ** (-8 * (h + 1) / closest) for h in range(closest)]
    if closest < n_heads:  # interleave the slopes of 2*closest heads, as in the paper
        extra = [2 ** (-4 * (h + 1) / closest) for h in range(2 * closest)][0::2]
        slopes += extra[: n_heads - closest]
    return torch.tensor(slopes)


@register_scheme("alibi")
class ALiBi(PositionalScheme):
    """Linear attention bias -m_h * (i - j) on the distance between position IDs."""

    def __init__(self, d_model, n_heads, max_positions):
        super().__init__(d_model, n_heads, max_positions)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def bias(self, position_ids):
        dist = (position_ids[:, :, None] - position_ids[:, None, :]).float()  # [B, Tq, Tk]
        return -self.slopes[None, :, None, None] * dist[:, None]


def t5_buckets(rel: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's relative-position buckets (Raffel et al. 2020) of `rel` = query ID − key ID.

    Half of the buckets serve rel ≥ 0 (keys at or before the query), half rel < 0, which only
    data-provided IDs (position coupling) produce under a causal mask. Within a half, the first
    quarter of all buckets holds distances exactly; the rest grow logarithmically up to
    `max_distance`, and farther keys share the last bucket.
    """
    half = num_buckets // 2
    exact = max(1, half // 2)
    n = rel.abs()
    log_ratio = torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return torch.where(n < exact, n, far) + (rel < 0).long() * half


@register_scheme("t5")
class T5Bias(PositionalScheme):
    """T5 relative attention bias: a learned scalar per (distance bucket, head)."""

    def __init__(self, d_model, n_heads, max_positions, num_buckets: int = 32, max_distance: int = 128):
        super().__init__(d_model, n_heads, max_positions)
        if num_buckets < 4 or num_buckets % 2:
            raise InputError(f"t5: num_buckets must be an even number >= 4, got {num_buckets}")
        if max_distance <= num_buckets // 4:
            raise InputError(f"t5: max_distance must exceed num_buckets/4 = {num_buckets // 4}, got {max_distance}")
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.table = nn.Embedding(num_buckets, n_heads)
        nn.init.normal_(self.table.weight, std=0.02)

    def bias(self, position_ids):
        rel = position_ids[:, :, None] - position_ids[:, None, :]  # [B, Tq, Tk]
        return self.table(t5_buckets(rel, self.num_buckets, self.max_distance)).permute(0, 3, 1, 2)


@register_scheme("fire")
class FIRE(PositionalScheme):
    """FIRE (Li et al. 2023): attention bias f(ψ(i−j) / ψ(max(L, i))) with ψ(x) = log(c·x + 1).

    f is a learned MLP (1 → `hidden` → one output per head, ReLU); c > 0 and the threshold L > 0
    are learned (initialised to `c` and `threshold`). For query IDs below L the normaliser is
    constant, so the bias depends on the ID distance only; beyond L, distances are measured
    relative to the query's own position, which keeps the MLP's input in [0, 1] at any length.
    A negative distance (a key ID above the query's, possible only with data-provided IDs such
    as position coupling) enters as −ψ(|i−j|).
    """

    def __init__(self, d_model, n_heads, max_positions, hidden: int = 32, c: float = 1.0, threshold: float = 32.0):
        super().__init__(d_model, n_heads, max_positions)
        if hidden < 1 or c <= 0 or threshold <= 0:
            raise InputError(f"fire: hidden >= 1, c > 0 and threshold > 0 required, got {hidden}, {c}, {threshold}")
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, n_heads))
        self.log_c = nn.Parameter(torch.tensor(math.log(c)))  # log-parametrised to stay positive
        self.log_threshold = nn.Parameter(torch.tensor(math.log(threshold)))

    def _ratio(self, query: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        c = self.log_c.exp()
        query, dist = query.float(), dist.float()
        psi = torch.log(c * dist.abs() + 1) * dist.sign()
        return psi / torch.log(c * torch.maximum(query, self.log_threshold.exp()) + 1)

    def normalized_distance(self, position_ids: torch.Tensor) -> torch.Tensor:
        """[B, Tq, Tk] input of the MLP for every query/key pair."""
        query = position_ids[:, :, None]
        return self._ratio(query, query - position_ids[:, None, :])

    def bias(self, position_ids):
        B, T = position_ids.shape
        query = position_ids[:, :, None].expand(B, T, T)
        dist = query - position_ids[:, None, :]
        # Many pairs share (query ID, distance): evaluate the MLP once per distinct pair, then
        # scatter. The pairs are integers, so the dedup stays outside autograd (c, L learn).
        span = 2 * int(dist.abs().max()) + 1
        pairs, where = torch.unique(query * span + dist + span // 2, return_inverse=True)
        uq, ud = pairs.div(span, rounding_mode="floor"), pairs.remainder(span) - span // 2
        return self.mlp(self._ratio(uq, ud)[:, None])[where].permute(0, 3, 1, 2)


@register_scheme("randomized")
class Randomized(PositionalScheme):
    """Randomized positions (Ruoss et al. 2023) over a `base` scheme (default sinusoidal).

    In training, every example's position IDs are replaced by a sorted random subset of
    [0, span): ID v becomes subset[v], which keeps the order and keeps equal IDs equal (so it
    composes with position coupling). The draw is a data transform made by `data.train_batch`
    from the step's seeded generator through `train_position_sampler`, so runs stay reproducible and
    resumable; the model itself only consumes the IDs it is given. `span` defaults to the
    model's `max_positions`, enough for the longest evaluation length; no random offsets are
    needed on top: the subsets already reach every ID.

    Evaluation (`eval_positions`): "random", as Ruoss et al. do, draws a sorted subset for every
    test example too (from a fixed seed, so an evaluation set always gets the same IDs); "plain"
    uses the IDs as they are (0..T-1 or the task's own).
    """

    EVAL_POSITIONS = ("random", "plain")

    def __init__(self, d_model, n_heads, max_positions, base: str = "sinusoidal", span: int | None = None,
                 eval_positions: str = "random"):
        super().__init__(d_model, n_heads, max_positions)
        if base in ("randomized", "abacus"):
            raise InputError(f"randomized: base must be a plain scheme, not {base!r}")
        self.span = span or max_positions
        if self.span < 1:
            raise InputError(f"randomized: span must be >= 1, got {span}")
        if eval_positions not in self.EVAL_POSITIONS:
            raise InputError(f"randomized: eval_positions must be one of {', '.join(self.EVAL_POSITIONS)}, "
                             f"got {eval_positions!r}")
        self.eval_positions = eval_positions
        self.base = make_scheme(base, d_model, n_heads, self.span)

    def train_position_sampler(self):
        # A plain function of `span`, so batch workers in other processes can run it without this module.
        return functools.partial(subset_positions, self.span)

    def eval_position_sampler(self):
        return self.train_position_sampler() if self.eval_positions == "random" else None

    def embed(self, position_ids):
        return self.base.embed(position_ids)

    def rotate(self, q, k, position_ids):
        return self.base.rotate(q, k, position_ids)

    def bias(self, position_ids):
        return self.base.bias(position_ids)


@register_scheme("abacus")
class Abacus(PositionalScheme):
    """Abacus embeddings (McLeish et al. 2024): a learned embedding of each token's digit index
    within its number, taken from the data-provided position IDs, added to the token embedding;
    sequence order comes from a `base` scheme (default NoPE; the paper also pairs it with FIRE)
    applied to the plain sequence index 0..T-1. With the coupled tasks' IDs (e.g.
    coupled_addition: a digit of significance i has ID i+2, + and <sep> 1, <bos> 0) these are the
    Abacus indices up to a constant shift. The table is finite, so training uses random offsets (the random start of
    McLeish et al.), which shift every ID of an example, non-digit tokens included.
    """

    has_table = True

    def __init__(self, d_model, n_heads, max_positions, base: str = "nope"):
        super().__init__(d_model, n_heads, max_positions)
        if base in ("randomized", "abacus"):
            raise InputError(f"abacus: base must be a plain scheme, not {base!r}")
        self.table = nn.Embedding(max_positions, d_model)
        nn.init.normal_(self.table.weight, std=0.02)
        self.base = make_scheme(base, d_model, n_heads, max_positions)

    @staticmethod
    def sequence_index(position_ids):
        T = position_ids.shape[1]
        return torch.arange(T, device=position_ids.device).expand_as(position_ids)

    def embed(self, position_ids):
        top = int(position_ids.max())
        if top >= self.max_positions:
            raise InputError(f"abacus: index {top} is beyond the embedding table (0..{self.max_positions - 1}); "
                             "raise model.max_positions or evaluate shorter lengths")
        out = self.table(position_ids)
        seq = self.base.embed(self.sequence_index(position_ids))
        return out if seq is None else out + seq

    def rotate(self, q, k, position_ids):
        return self.base.rotate(q, k, self.sequence_index(position_ids))

    def bias(self, position_ids):
        return self.base.bias(self.sequence_index(position_ids))
