"""The positional-attention penalty (docs/design.md §4.2) against a direct loop, and its effect on gradients."""

import pytest
import torch

from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.model.penalty import positional_attention_penalty

D, H, N = 8, 2, 6


def tiny_model(positional="ape", seed=0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(n_layers=2, n_heads=H, d_model=D,
                                          positional=positional), 5, N)
    with torch.no_grad():  # larger weights than the init's 0.02 so the penalty is far from zero
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


def penalty_by_loops(model) -> float:
    """Σ_layers Σ_heads (1/N) Σ_j Σ_{i≥j} (p_i·Wq_h · p_j·Wk_h)², one scalar at a time in float64."""
    P = model.pos.table.weight.detach().double()
    dh = D // H
    total = 0.0
    for block in model.blocks:
        W = block.attn.qkv.weight.detach().double()  # rows: q (D), then k (D), then v (D)
        for h in range(H):
            Wq = W[h * dh:(h + 1) * dh]  # head h's query rows
            Wk = W[D + h * dh:D + (h + 1) * dh]
            per_key = []
            for j in range(N):
                s = 0.0
                for i in range(j, N):
                    q_i = [float(sum(Wq[r, c] * P[i, c] for c in range(D))) for r in range(dh)]
                    k_j = [float(sum(Wk[r, c] * P[j, c] for c in range(D))) for r in range(dh)]
                    s += sum(a * b for a, b in zip(q_i, k_j)) ** 2
                per_key.append(s)
            total += sum(per_key) / N
    return total


def test_penalty_matches_direct_loop():
    model = tiny_model()
    got = positional_attention_penalty(model).item()
    want = penalty_by_loops(model)
    assert want > 1.0
    assert got == pytest.approx(want, rel=1e-5)


def loss_and_table_grad(coef: float | None) -> torch.Tensor:
    """Gradient of the position table under a task-like loss, plus coef * penalty unless coef is None."""
    model = tiny_model()
    idx = torch.tensor([[1, 2, 3, 4, 0, 1]])
    loss = model(idx).logits.logsumexp(-1).mean()
    if coef is not None:
        loss = loss + coef * positional_attention_penalty(model)
    loss.backward()
    return model.pos.table.weight.grad.clone()


def test_penalty_changes_the_position_table_gradient():
    plain = loss_and_table_grad(None)
    assert torch.equal(loss_and_table_grad(0.0), plain)  # coef 0: no effect at all
    regularised = loss_and_table_grad(1e-3)
    assert not torch.allclose(plain, regularised)
    # The difference is exactly coef times the penalty's own gradient.
    model = tiny_model()
    positional_attention_penalty(model).backward()
    assert torch.allclose(regularised - plain, 1e-3 * model.pos.table.weight.grad, rtol=1e-4, atol=1e-7)


def test_training_adds_the_penalty_when_configured(tmp_path):
    from lengthgen.config import load_run_config
    from lengthgen.store import ResultsStore
    from lengthgen.training import build_model, train_run

    base = {"task": {"name": "bin_majority", "train_lengths": [1, 6], "eval_bins": [[1, 6]]},
            "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
            "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "early_stop_acc": None},
            "eval": {"examples_per_bin": 8, "greedy": False}}
    first_loss = {}
    for coef in (0.0, 1e9):  # the penalty of a freshly initialised model is ~1e-10
        cfg = load_run_config({**base, "train": {**base["train"], "positional_reg": coef}})
        store = ResultsStore(tmp_path / f"c{coef}")
        run = train_run(cfg, store)
        first_loss[coef] = [c.value for c in store.curves(run.key) if c.name == "loss"][0]
    torch.manual_seed(cfg.seed)  # train_run seeds torch the same way before building the model
    initial_penalty = positional_attention_penalty(build_model(cfg, cfg.task.build())).item()
    # Same seed, same batch: the logged step-0 loss grows by exactly coef * penalty.
    assert first_loss[1e9] - first_loss[0.0] == pytest.approx(1e9 * initial_penalty, rel=1e-3)


def test_needs_a_position_table():
    with pytest.raises(ValueError, match="learned position table"):
        positional_attention_penalty(tiny_model("nope"))
