"""Hybrid layers: gradients against torch, LoRA placement, routing and the trace."""

import copy

import torch

from hw.reram import TileConfig
from hw.systolic import SystolicConfig
from sw.backends import HardwareConfig, make_backend
from sw.hybrid import FrozenMatmul, LoRALinear, SystolicMatmul, apply_lora, set_backend
from sw.model import ModelConfig, SpatialTransformer

HW = HardwareConfig(SystolicConfig(rows=4, cols=4, k_depth=8),
                    TileConfig(rows=16, cols=16, write_latency=1))


def test_autograd_functions_pass_gradcheck_on_the_torch_backend():
    be = make_backend("torch", HW)
    a = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: SystolicMatmul.apply(a, b, be, "t"), (a, b))
    W = torch.randn(7, 3, dtype=torch.float64)
    be.program("w", W)
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: FrozenMatmul.apply(x, be, "w"), (x,))


def test_lora_starts_equal_to_base_and_trains_only_adapters():
    torch.manual_seed(0)
    model = SpatialTransformer(ModelConfig.preset("tiny", dropout=0.0), n_features=3)
    x = torch.randn(2, 6, 3)
    before = model(x)
    added = apply_lora(model, 8, alpha=64, dropout=0.0)
    assert len(added) == 2 * model.cfg.layers
    torch.testing.assert_close(model(x), before)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.endswith((".A", ".B")) for n in trainable if n.startswith("layers."))
    assert any(n.startswith("embed.") for n in trainable)
    assert any(n.startswith("reduce.") for n in trainable) and "head.weight" in trainable


def test_routed_model_matches_unrouted_on_torch_backend_and_records_ops():
    torch.manual_seed(1)
    model = SpatialTransformer(ModelConfig.preset("tiny", dropout=0.0), n_features=3)
    apply_lora(model, 4, alpha=64, dropout=0.0)
    for lora in model.modules():
        if isinstance(lora, LoRALinear):
            torch.nn.init.normal_(lora.B, std=0.05)
    ref = copy.deepcopy(model)
    x = torch.randn(2, 6, 3)
    be = make_backend("torch", HW)
    set_backend(model, be)
    y, y_ref = model(x), ref(x)
    torch.testing.assert_close(y, y_ref)
    y.sum().backward()
    y_ref.sum().backward()
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        if p.requires_grad:
            torch.testing.assert_close(p.grad, q.grad, msg=n)
    ops = {(r["unit"], r["op"]) for r in be.trace.to_list()}
    assert {("reram", "program"), ("reram", "mvm"), ("reram", "mvm_t"),
            ("systolic", "matmul")} <= ops


def test_functional_backend_close_to_torch():
    torch.manual_seed(2)
    model = SpatialTransformer(ModelConfig.preset("tiny", dropout=0.0), n_features=3)
    apply_lora(model, 4, alpha=64, dropout=0.0)
    ref = copy.deepcopy(model)
    set_backend(model, make_backend("functional", HW))
    x = torch.randn(2, 6, 3)
    err = (model(x) - ref(x)).norm() / ref(x).norm()
    assert 0 < err < 0.1
