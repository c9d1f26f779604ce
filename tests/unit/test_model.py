"""The spatial-attention transformer: presets, shapes, determinism, gradients."""

import pytest
import torch

from sw.model.transformer import ModelConfig, SpatialTransformer


def test_presets():
    paper = ModelConfig.preset("paper")
    assert (paper.d_model, paper.layers, paper.heads, paper.ffn) == (512, 12, 16, 2048)
    m = SpatialTransformer(paper, n_features=14)
    per_layer = 4 * (512 * 512 + 512) + 2 * 2 * 512 + (512 * 2048 + 2048) + (2048 * 512 + 512)
    n_layers = sum(p.numel() for p in m.layers.parameters())
    assert n_layers == 12 * per_layer
    with pytest.raises(ValueError, match="unknown preset"):
        ModelConfig.preset("huge")
    with pytest.raises(ValueError, match=r"ModelConfig\.d_model \(30\) must be divisible"):
        ModelConfig(d_model=30, heads=4)


def test_forward_shape_determinism_and_gradients():
    cfg = ModelConfig.preset("tiny", dropout=0.0)
    torch.manual_seed(0)
    a = SpatialTransformer(cfg, n_features=5)
    torch.manual_seed(0)
    b = SpatialTransformer(cfg, n_features=5)
    x = torch.randn(3, 7, 5)
    ya, yb = a(x), b(x)
    assert ya.shape == (3, 7)
    assert torch.equal(ya, yb)
    ya.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in a.parameters())


def torch_reference(att) -> torch.nn.MultiheadAttention:
    """torch's attention with the weights of ``att`` (d_model 16, 4 heads)."""
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([att.q.weight, att.k.weight, att.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([att.q.bias, att.k.bias, att.v.bias]))
        ref.out_proj.weight.copy_(att.o.weight)
        ref.out_proj.bias.copy_(att.o.bias)
    return ref


def test_attention_matches_torch_reference():
    cfg = ModelConfig(d_model=16, heads=4, layers=1, ffn=8, reduce=4, dropout=0.0)
    m = SpatialTransformer(cfg, n_features=2)
    att = m.layers[0].attn
    ref = torch_reference(att)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(att(x), ref(x, x, x, need_weights=False)[0])


def test_attention_bias_is_validated_and_sized_by_the_stations():
    with pytest.raises(ValueError, match=r"ModelConfig\.attn_bias must be True or False"):
        ModelConfig(attn_bias=1)
    cfg = ModelConfig(d_model=8, heads=2, layers=3, ffn=8, reduce=4, attn_bias=True)
    for bad in (None, 0, True, 5000):
        with pytest.raises(ValueError, match="ModelConfig.attn_bias needs the station count"):
            SpatialTransformer(cfg, n_features=2, stations=bad)
    m = SpatialTransformer(cfg, n_features=2, stations=5)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters() if "station_bias" in n}
    assert shapes == {f"layers.{i}.attn.station_bias": (2, 5, 5) for i in range(3)}
    m(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="the input has 4 stations; .* built for 5"):
        m(torch.randn(2, 4, 2))
    plain = SpatialTransformer(ModelConfig(d_model=8, heads=2, layers=3, ffn=8, reduce=4),
                               n_features=2, stations=5)         # no bias: stations unused
    assert not any("station_bias" in n for n, _ in plain.named_parameters())
    plain(torch.randn(2, 4, 2))


def test_attention_bias_starts_neutral_then_steers_attention_and_trains():
    """Zero bias: the outputs of the same weights without it. A bias on one station pair
    moves the scores of exactly that pair (torch's reference with an additive mask), and
    the bias gets gradients in full-parameter training."""
    base = ModelConfig(d_model=16, heads=4, layers=2, ffn=8, reduce=4, dropout=0.0)
    torch.manual_seed(0)
    plain = SpatialTransformer(base, n_features=3)
    biased = SpatialTransformer(ModelConfig(**{**base.to_dict(), "attn_bias": True}),
                                n_features=3, stations=6)
    missing, unexpected = biased.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == [f"layers.{i}.attn.station_bias" for i in (0, 1)] and not unexpected
    x = torch.randn(4, 6, 3)
    assert torch.equal(plain(x), biased(x))
    att = biased.layers[0].attn
    with torch.no_grad():
        att.station_bias[1, 2, 4] = 3.0
    ref = torch_reference(att)
    h = torch.randn(2, 6, 16)
    mask = att.station_bias.detach().repeat(2, 1, 1)            # (batch x heads, S, S)
    torch.testing.assert_close(att(h), ref(h, h, h, attn_mask=mask, need_weights=False)[0])
    assert not torch.allclose(att(h), ref(h, h, h, need_weights=False)[0])
    biased(x).pow(2).mean().backward()
    assert att.station_bias.grad is not None and att.station_bias.grad.abs().sum() > 0
