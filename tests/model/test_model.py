"""The transformer and its positional schemes."""

import pytest
import torch

from lengthgen.config import ModelConfig
from lengthgen.model import SCHEMES, Transformer
from lengthgen.model.positional import alibi_slopes


def model_for(scheme, **kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=13, max_positions=40, n_layers=2, n_heads=2, d_model=16, positional=scheme)
    cfg.update(kw)
    vocab_size, max_positions = cfg.pop("vocab_size"), cfg.pop("max_positions")
    return Transformer(ModelConfig(**cfg), vocab_size, max_positions).eval()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_causal_every_scheme(scheme):
    """Changing token t never changes the logits before t."""
    model = model_for(scheme)
    x = torch.randint(4, 13, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1 - 4) % 9 + 4
    with torch.no_grad():
        a, b = model(x).logits, model(y).logits
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_explicit_position_ids(scheme):
    """Default IDs equal arange; shifting every ID by a constant changes only absolute schemes."""
    model = model_for(scheme)
    x = torch.randint(4, 13, (2, 10))
    pos = torch.arange(10).expand(2, 10)
    with torch.no_grad():
        base = model(x).logits
        assert torch.allclose(base, model(x, pos).logits)
        shifted = model(x, pos + 5).logits
    relative = scheme in ("nope", "rope", "alibi", "t5", "fire")  # fire: IDs stay below its threshold
    assert torch.allclose(base, shifted, atol=1e-4) == relative


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_cached_decoding_equals_full_forward(scheme):
    """A prefix in one pass, then one token at a time through the key/value cache, gives the
    logits of one full forward pass, with coupled (repeated, non-monotone) position IDs too."""
    model = model_for(scheme, predict_positions=True)
    x = torch.randint(4, 13, (3, 11))
    pos = torch.tensor([0, 3, 2, 1, 0, 3, 2, 1, 0, 1, 2]).expand(3, 11)
    with torch.no_grad():
        full = model(x, pos)
        cache = model.new_cache()
        parts = [model(x[:, :5], pos[:, :5], cache)]
        parts += [model(x[:, t:t + 1], pos[:, :t + 1], cache) for t in range(5, 9)]
        parts.append(model(x[:, 9:], pos, cache))  # two new tokens at once
    torch.testing.assert_close(torch.cat([p.logits for p in parts], 1), full.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([p.position_logits for p in parts], 1), full.position_logits, rtol=1e-5,
                               atol=1e-5)


def test_cached_decoding_needs_the_position_ids():
    model = model_for("rope")
    with pytest.raises(ValueError, match="position IDs of all tokens"):
        model(torch.randint(4, 13, (1, 3)), cache=model.new_cache())


def test_shared_position_ids_make_tokens_look_alike():
    """Position IDs are data: two tokens with the same ID and token are indistinguishable to the
    first layer under APE, whatever their index."""
    model = model_for("ape")
    x = torch.tensor([[5, 6, 5]])
    emb = model.tok(x) + model.pos.embed(torch.tensor([[3, 4, 3]]))
    assert torch.equal(emb[0, 0], emb[0, 2])


def test_ape_beyond_table_fails_clearly():
    model = model_for("ape", max_positions=8)
    with pytest.raises(ValueError, match=r"position id 9 is beyond the learned position table \(ids 0..7\)"):
        model(torch.randint(4, 13, (1, 10)))


def test_sinusoidal_and_rope_serve_any_length():
    for scheme in ("sinusoidal", "rope", "alibi", "nope"):
        out = model_for(scheme, max_positions=8)(torch.randint(4, 13, (1, 50))).logits
        assert out.shape == (1, 50, 13) and torch.isfinite(out).all()


def test_rope_rotation_preserves_norm_and_relative_scores():
    model = model_for("rope", n_heads=1)
    q, k = torch.randn(1, 1, 6, 16), torch.randn(1, 1, 6, 16)
    pos = torch.arange(6)[None]
    q1, k1 = model.pos.rotate(q, k, pos)
    assert torch.allclose(q1.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    q2, k2 = model.pos.rotate(q, k, pos + 11)
    assert torch.allclose(q1 @ k1.transpose(-1, -2), q2 @ k2.transpose(-1, -2), atol=1e-4)


def strided_rotate(inv_freq, x, position_ids):
    """RoPE as Su et al. write it: pairs (x[2i], x[2i+1]) turned by id * inv_freq[i], on strided slices."""
    angle = position_ids.float()[:, None, :, None] * inv_freq
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def test_rope_complex_turn_matches_the_strided_pairs_and_grows_its_table():
    model = model_for("rope", n_heads=2, d_model=32)
    rope = model.pos
    q, k = torch.randn(3, 2, 7, 16), torch.randn(3, 2, 7, 16)
    # IDs as data: offsets, repeats (coupling), then IDs past the cached table, then the extension methods
    for ids in (torch.arange(7).expand(3, 7), torch.tensor([[0, 3, 3, 1, 9, 9, 2]] * 3), torch.randint(0, 5000, (3, 7))):
        for scale, ntk in ((1.0, 1.0), (4.0, 1.0), (1.0, 8.0)):
            rope.set_extension(scale, ntk)
            q1, k1 = rope.rotate(q, k, ids)
            assert torch.allclose(q1, strided_rotate(rope.inv_freq, q, ids), atol=5e-6, rtol=0)
            assert torch.allclose(k1, strided_rotate(rope.inv_freq, k, ids), atol=5e-6, rtol=0)
            assert len(rope.turns) > int(ids.max())
    with pytest.raises(ValueError, match="position IDs must be >= 0, got -1"):
        rope.rotate(q, k, torch.full((3, 7), -1))


def test_alibi_bias_is_linear_in_distance():
    slopes = alibi_slopes(4)
    assert torch.allclose(slopes, torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]))
    assert len(alibi_slopes(6)) == 6
    model = model_for("alibi", n_heads=4, d_model=16)
    pos = torch.tensor([[0, 1, 2, 5]])
    bias = model.pos.bias(pos)
    assert bias.shape == (1, 4, 4, 4)
    assert torch.allclose(bias[0, 1, 3, 0], -slopes[1] * 5)


def test_tied_and_untied_heads():
    tied, untied = model_for("nope"), model_for("nope", tie_weights=False)
    assert tied.head.weight is tied.tok.weight
    assert untied.head.weight is not untied.tok.weight
    assert untied.num_params() == tied.num_params() + 13 * 16


def test_unknown_scheme_lists_choices():
    with pytest.raises(ValueError, match="choose one of: abacus, alibi, ape"):
        model_for("fourier")


@pytest.mark.parametrize("scheme", ["t5", "rope", "nope"])
def test_log_length_attention_is_causal_and_cache_exact(scheme):
    """Scalable-Softmax keeps causality and cached decoding exact (bias and bias-free schemes)."""
    model = model_for(scheme, attention_scale="log_length")
    x = torch.randint(4, 13, (3, 11))
    pos = torch.tensor([0, 3, 2, 1, 0, 3, 2, 1, 0, 1, 2]).expand(3, 11)
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1 - 4) % 9 + 4
    with torch.no_grad():
        full = model(x, pos).logits
        assert torch.isfinite(full).all()
        assert torch.allclose(full[:, :6], model(y, pos).logits[:, :6], atol=1e-6)
        cache = model.new_cache()
        parts = [model(x[:, :4], pos[:, :4], cache).logits]
        parts += [model(x[:, t:t + 1], pos[:, :t + 1], cache).logits for t in range(4, 11)]
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


def test_log_length_scales_each_query_by_the_log_of_its_key_count():
    model = model_for("t5", attention_scale="log_length")
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.log_scale.copy_(torch.tensor([1.0, 0.5]))
    q = torch.ones(1, 2, 4, 8)
    bias = torch.zeros(1, 2, 4, 4).masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf")) + 1.0
    q2, bias2 = attn.length_scaled(q, bias, torch.arange(4)[None])
    expected = torch.tensor([1.0, 0.5])[:, None] * torch.log(torch.arange(1.0, 5.0))[None]  # query i sees i+1 keys
    torch.testing.assert_close(q2[0, :, :, 0], expected)
    assert torch.isinf(bias2).sum() == torch.isinf(bias).sum()  # the causal mask survives
    torch.testing.assert_close(bias2[0, :, 3, :].amax(-1), expected[:, 3])
    q3, _ = attn.length_scaled(q[:, :, -1:], None, torch.tensor([[3]]))  # one new query after 3 cached keys
    torch.testing.assert_close(q3[0, :, 0, 0], expected[:, 3])
    assert model_for("t5").blocks[0].attn.log_scale is None  # the default is plain softmax


def test_log_length_attention_has_finite_gradients():
    """The first query sees one key (ln 1 = 0) beside masked -inf entries: no NaN in backward."""
    model = model_for("t5", attention_scale="log_length").train()
    x = torch.randint(4, 13, (2, 9))
    model(x).logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("scheme,scale", [(s, "none") for s in sorted(SCHEMES)] + [("rope", "log_length"),
                                                                                   ("alibi", "log_length")])
def test_the_loss_at_the_scored_positions_only_is_the_whole_loss(scheme, scale):
    """Computing the last block and the head only where targets are scored gives the loss and the
    gradients of the full forward, for every scheme (biases, rotations, embeddings) and length scaling."""
    from lengthgen.data import IGNORE, Batch
    from lengthgen.training.build import loss_on, scored_positions

    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(4, 13, (3, 11), generator=g)
    targets = torch.full((3, 11), IGNORE)
    targets[0, 5] = 7  # one scored answer
    targets[1, 2:9] = torch.randint(4, 13, (7,), generator=g)  # a long answer
    targets[2, [3, 10]] = 4  # scattered
    ids = torch.arange(11).expand(3, 11) + torch.tensor([[0], [4], [9]])  # shifted IDs, as with offsets
    batch = Batch(inputs, targets, ids.clone(), [])
    assert scored_positions(targets).shape == (3, 7)
    grads, losses = [], []
    for scored_only in (False, True):
        model = model_for(scheme, attention_scale=scale, max_positions=40).train()
        loss = loss_on(model, batch, False, torch.device("cpu"), scored_only=scored_only)
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(losses[0], losses[1], atol=1e-6)
    assert grads[0].shape == grads[1].shape and torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)
