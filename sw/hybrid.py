"""Hybrid execution: LoRA adapters and the routing of each matmul to a hardware backend.

In the low-parameter phase:

================================  ==============
frozen W0: ``x W0`` and ``d W0^T``  ReRAM (``mvm`` / ``mvm_t``)
LoRA A and B, ``Q K^T``, ``softmax V``  systolic (``matmul``)
everything else                   the torch device
================================  ==============

Gradients flow through :class:`SystolicMatmul` and :class:`FrozenMatmul`
(``torch.autograd.Function``): the backward products run on the same units as in
hardware (``d W0^T`` is an ``MVM_T`` of the frozen tile).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .backends import Backend

__all__ = ["SystolicMatmul", "FrozenMatmul", "LoRAProducts", "LoRALinear", "apply_lora", "set_backend",
           "lora_layers"]


class SystolicMatmul(torch.autograd.Function):
    """``a @ b`` on the systolic array; backward ``g b^T`` and ``a^T g`` there too."""

    @staticmethod
    def forward(ctx, a, b, backend: Backend, layer: str):
        ctx.save_for_backward(a, b)
        ctx.backend, ctx.layer = backend, layer
        return backend.matmul(a, b, layer)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = ctx.backend.matmul(g, b.transpose(-2, -1), ctx.layer + ".grad")
        if ctx.needs_input_grad[1]:
            gb = ctx.backend.matmul(a.transpose(-2, -1), g, ctx.layer + ".grad")
        return ga, gb, None, None


class FrozenMatmul(torch.autograd.Function):
    """``x @ W0`` with ``W0`` programmed in ReRAM under ``key``; backward ``g @ W0^T``
    is an MVM_T of the same tiles. ``W0`` gets no gradient (it is frozen)."""

    @staticmethod
    def forward(ctx, x, backend: Backend, key: str):
        ctx.backend, ctx.key = backend, key
        return backend.mvm(key, x)

    @staticmethod
    def backward(ctx, g):
        gx = ctx.backend.mvm_t(ctx.key, g) if ctx.needs_input_grad[0] else None
        return gx, None, None


class LoRAProducts(torch.autograd.Function):
    """A LoRA layer's three products with the unit concurrency of the chip: forward, the
    frozen ``x W0`` (ReRAM) runs alongside ``drop(x) A^T`` (systolic), then ``. B^T``;
    backward, ``g W0^T`` (MVM_T) runs alongside the two ``lora_B`` gradient products,
    then the two ``lora_A`` ones. Every product is the same call as in
    :class:`FrozenMatmul`/:class:`SystolicMatmul`; only their grouping differs."""

    @staticmethod
    def forward(ctx, x, dx, At, Bt, backend: Backend, name: str):
        base, xa = backend.parallel([("mvm", name, x), ("matmul", dx, At, name + ".lora_A")],
                                    name + ".fwd")
        low = backend.matmul(xa, Bt, name + ".lora_B")
        ctx.save_for_backward(dx, At, Bt, xa)
        ctx.backend, ctx.name = backend, name
        return base, low

    @staticmethod
    def backward(ctx, g_base, g_low):
        dx, At, Bt, xa = ctx.saved_tensors
        be, name = ctx.backend, ctx.name
        need_x, need_dx = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        calls = [("matmul", g_low, Bt.transpose(-2, -1), name + ".lora_B.grad"),
                 ("matmul", xa.transpose(-2, -1), g_low, name + ".lora_B.grad")]
        if need_x:
            calls.append(("mvm_t", name, g_base))
        out = be.parallel(calls, name + ".bwd")
        g_xa, gBt = out[0], out[1]
        gx = out[2] if need_x else None
        g_dx = be.matmul(g_xa, At.transpose(-2, -1), name + ".lora_A.grad") if need_dx else None
        gAt = be.matmul(dx.transpose(-2, -1), g_xa, name + ".lora_A.grad")
        return gx, g_dx, gAt, gBt, None, None


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``scale * B A``.

    ``A`` starts Kaiming-uniform and ``B`` at zero, so the layer starts equal to the base
    (Hu et al., 2021). With a backend attached, the frozen product runs on ReRAM and the
    two LoRA products on the systolic array.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float, name: str):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be positive, not {rank}")
        self.base, self.rank, self.scale, self.name = base, rank, alpha / rank, name
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.drop = nn.Dropout(dropout)
        self.backend: Backend | None = None

    def program(self, backend: Backend) -> None:
        """Write the frozen weight into ReRAM (once, at the switch) and route through it."""
        backend.program(self.name, self.base.weight.detach().T.contiguous())
        self.backend = backend

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        if self.backend is None:
            base = x2 @ self.base.weight.T
            low = (self.drop(x2) @ self.A.T) @ self.B.T
        else:
            base, low = LoRAProducts.apply(x2, self.drop(x2), self.A.T, self.B.T, self.backend,
                                           self.name)
        out = base + self.base.bias + self.scale * low
        return out.reshape(*shape[:-1], out.shape[-1])


def apply_lora(model, ranks: dict[int, int] | int, alpha: float = 64.0,
               dropout: float = 0.1) -> list[LoRALinear]:
    """Freeze the encoder and put LoRA on Q and V of every layer (ranks per layer).
    The input embedding, the dimension-reduction MLP and the head stay trainable."""
    for p in model.layers.parameters():
        p.requires_grad_(False)
    added = []
    for i, layer in enumerate(model.layers):
        r = ranks if isinstance(ranks, int) else ranks[i]
        for proj in ("q", "v"):
            lin = getattr(layer.attn, proj)
            if isinstance(lin, LoRALinear):
                raise ValueError(f"layer {i} {proj} already has LoRA")
            lora = LoRALinear(lin, r, alpha, dropout, f"layers.{i}.attn.{proj}")
            setattr(layer.attn, proj, lora)
            added.append(lora)
    return added


def lora_layers(model) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def set_backend(model, backend: Backend | None, program: bool = True) -> None:
    """Route the low-parameter phase's products through ``backend`` (None: plain torch).
    Programs every LoRA layer's frozen weight into ReRAM, unless ``program`` is False
    (the backend already holds them under the layers' names)."""
    for layer in model.layers:
        layer.attn.backend = backend
    for lora in lora_layers(model):
        if backend is None or not program:
            lora.backend = backend
        else:
            lora.program(backend)
