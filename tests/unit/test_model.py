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


def test_attention_matches_torch_reference():
    cfg = ModelConfig(d_model=16, heads=4, layers=1, ffn=8, reduce=4, dropout=0.0)
    m = SpatialTransformer(cfg, n_features=2)
    att = m.layers[0].attn
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([att.q.weight, att.k.weight, att.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([att.q.bias, att.k.bias, att.v.bias]))
        ref.out_proj.weight.copy_(att.o.weight)
        ref.out_proj.bias.copy_(att.o.bias)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(att(x), ref(x, x, x, need_weights=False)[0])
