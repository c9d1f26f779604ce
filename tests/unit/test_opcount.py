"""The one use of PyTorch's dispatch-mode hook: what it reports, and what it leaves out."""

import pytest
import torch

from sw.cost.opcount import VECTOR_WORK, KernelCounter, kernel_kind, vector_primitives


def test_kernel_counter_reports_kernels_flops_and_elements():
    seen = []
    a, b = torch.ones(4, 8), torch.ones(8, 3)
    with KernelCounter(lambda *k: seen.append(k)):
        c = a @ b                 # 4x8x3 MACs -> 192 FLOPs
        d = c.t()                 # a view: launches nothing
        e = torch.relu(c + 1.0)
        s = e.sum()               # a reduction counts its input's elements
    assert [k[0] for k in seen] == ["mm", "add", "relu", "sum"]
    # elements: the larger of the first operand's (32) and the output's (12)
    assert seen[0][1] == 2 * 4 * 8 * 3 and seen[0][3] == 32
    assert seen[1][2] == 2 * 12 * 4        # bytes: input and output, fp32
    assert seen[3][3] == 12
    assert d.shape == (3, 4) and float(s) == 12 * 9


def test_kernel_counter_skips_what_runs_inside_the_accelerator():
    seen, inside = [], [False]
    x = torch.ones(5)
    with KernelCounter(lambda *k: seen.append(k[0]), skip=lambda: inside[0]):
        inside[0] = True
        y = x * 3                          # the backend's own work
        inside[0] = False
        z = y + x
    assert seen == ["add"] and float(z.sum()) == 20


def test_every_kernel_of_a_low_phase_step_has_a_vector_cost():
    """The hpt mapping's host kernels of one tiny-preset training step (forward, backward,
    AdamW on the trainable parameters) are all known to the vector unit's table."""
    from hw.manycore import preset
    from sw.device.backends import make_backend
    from sw.model.hybrid import apply_lora, set_backend
    from sw.model.transformer import ModelConfig, SpatialTransformer
    torch.manual_seed(0)
    model = SpatialTransformer(ModelConfig.preset("tiny"), n_features=3)
    apply_lora(model, 2)
    be = make_backend("torch", preset("atleus"))
    set_backend(model, be, mapping="hpt")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    x, y = torch.randn(2, 5, 3), torch.randn(2, 5)
    with be.kernels("vector"):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    rows = [r for r in be.trace.to_list() if r["unit"] == "vector"]
    kinds = {r["op"] for r in rows}
    assert {"_softmax", "native_layer_norm", "gelu", "mse_loss"} <= kinds
    for r in rows:
        assert vector_primitives(r["op"]) and r["flops"] == 0, r     # no matrix work left
    assert kernel_kind("_foreach_addcdiv_") == "addcdiv" and kernel_kind("_softmax") == "_softmax"
    with pytest.raises(ValueError, match="no vector-unit cost"):
        vector_primitives("cholesky")
    assert all(p in ("add", "mul", "cmp", "exp", "reciprocal", "rsqrt")
               for prims in VECTOR_WORK.values() for p in prims)
