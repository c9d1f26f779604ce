"""Hybrid execution: LoRA adapters and the routing of each product to a hardware unit.

Two mappings of the low-parameter phase (``TrainConfig.mapping``):

``hpt`` (HpT's system, the default)

    =========================================================  ==========================
    every frozen linear of every encoder layer (W_q, W_k, W_v,  ReRAM (``mvm``/``mvm_t``)
    W_o, FFN ff1/ff2): ``x W0`` and ``d W0^T``
    LoRA A/B and their gradients; the trainable input MLP,      systolic cores (``matmul``)
    reduction MLP and head (forward, input and weight
    gradients); ``Q K^T`` and ``softmax V``
    softmax, LayerNorm, activations, dropout, residual and      vector unit (float on the
    bias adds, the loss, AdamW                                  host; counted per kind)
    nothing                                                     GPU
    =========================================================  ==========================

``qv`` (the mapping of stops 8-10, kept for comparison): only the LoRA targets' frozen
products go to ReRAM and the LoRA and attention products to the systolic array; every
other op stays on the torch device (the GPU).

LoRA targets are configurable (``PolicyConfig.lora_targets``: ``q,v`` as in the paper, up
to ``q,k,v,o,ff1,ff2``); under ``hpt`` the frozen base of every encoder linear goes to
ReRAM whichever targets carry adapters.

Gradients flow through :class:`SystolicMatmul` and :class:`FrozenMatmul`
(``torch.autograd.Function``): the backward products run on the same units as in
hardware (``d W0^T`` is an ``MVM_T`` of the frozen tile).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sw.device.backends import Backend, MatmulCall, MvmCall

__all__ = ["SystolicMatmul", "FrozenMatmul", "LoRAProducts", "LoRALinear", "apply_lora", "set_backend",
           "lora_layers", "routed_linear", "MAPPINGS", "TARGETS", "frozen_linears", "frozen_name",
           "frozen_shapes", "base_weight", "rank_of"]

MAPPINGS = ("hpt", "qv")
#: The frozen linears of an encoder layer, in programming (placement) order.
TARGETS = ("q", "k", "v", "o", "ff1", "ff2")


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
        base, xa = backend.parallel([MvmCall(name, x), MatmulCall(dx, At, name + ".lora_A")],
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
        calls = [MatmulCall(g_low, Bt.transpose(-2, -1), name + ".lora_B.grad"),
                 MatmulCall(xa.transpose(-2, -1), g_low, name + ".lora_B.grad")]
        if need_x:
            calls.append(MvmCall(name, g_base, transpose=True))
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


def _owner(layer, target: str):
    return (layer.attn if target in ("q", "k", "v", "o") else layer), target


def frozen_linears(model):
    """``(owner, attribute, module)`` of every encoder linear, layer by layer in
    :data:`TARGETS` order (a LoRA-adapted one is its :class:`LoRALinear`)."""
    for layer in model.layers:
        for target in TARGETS:
            owner, attr = _owner(layer, target)
            yield owner, attr, getattr(owner, attr)


def base_weight(model, layer: int, target: str) -> torch.Tensor:
    """The (base) weight of encoder linear ``target`` of ``layer``, adapted or not."""
    owner, attr = _owner(model.layers[layer], target)
    lin = getattr(owner, attr)
    return lin.base.weight if isinstance(lin, LoRALinear) else lin.weight


def rank_of(ranks, layer: int, target: str) -> int:
    """The LoRA rank of ``target`` in ``layer``: ``ranks`` is one int for every module, or
    per layer (a mapping or list) an int for the whole layer or ``{target: rank}``."""
    r = ranks if isinstance(ranks, int) else ranks[layer]
    return r[target] if isinstance(r, dict) else r


def frozen_name(layer: int, target: str) -> str:
    """The model's name of an encoder linear (its ReRAM key)."""
    return f"layers.{layer}.attn.{target}" if target in ("q", "k", "v", "o") \
        else f"layers.{layer}.{target}"


def frozen_shapes(model_cfg, mapping: str, lora_targets) -> dict:
    """The frozen ``[in, out]`` matrices ``mapping`` programs into ReRAM, by name, in the
    placement's order (every encoder linear under ``hpt``, the LoRA targets under ``qv``)."""
    d, f = model_cfg.d_model, model_cfg.ffn
    shape = {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "ff1": (d, f), "ff2": (f, d)}
    targets = TARGETS if mapping == "hpt" else tuple(lora_targets)
    return {frozen_name(i, t): shape[t] for i in range(model_cfg.layers) for t in TARGETS
            if t in targets}


def routed_linear(lin, x):
    """The product of a :class:`sw.model.transformer.RoutedLinear` on its unit, then its bias (a vector-
    unit add)."""
    backend, role = lin.route
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    if role == "frozen":
        y = FrozenMatmul.apply(x2, backend, lin.name)
    else:
        y = SystolicMatmul.apply(x2, lin.weight.T, backend, lin.name)
    y = y + lin.bias
    return y.reshape(*shape[:-1], y.shape[-1])


def apply_lora(model, ranks, alpha: float = 64.0, dropout: float = 0.1,
               targets=("q", "v")) -> list[LoRALinear]:
    """Freeze the encoder and put LoRA on ``targets`` (of :data:`TARGETS`) of every layer,
    with the ranks of :func:`rank_of` (one for all, per layer, or per layer and module).
    The input embedding, the dimension-reduction MLP and the head stay trainable."""
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise ValueError(f"LoRA targets must be a non-empty subset of {', '.join(TARGETS)}, "
                         f"not {', '.join(targets) or 'nothing'}")
    for p in model.layers.parameters():
        p.requires_grad_(False)
    added = []
    for i, layer in enumerate(model.layers):
        for target in TARGETS:
            if target not in targets:
                continue
            owner, attr = _owner(layer, target)
            lin = getattr(owner, attr)
            if isinstance(lin, LoRALinear):
                raise ValueError(f"layer {i} {target} already has LoRA")
            lora = LoRALinear(lin, rank_of(ranks, i, target), alpha, dropout,
                              lin.name or frozen_name(i, target))
            setattr(owner, attr, lora)
            added.append(lora)
    return added


def lora_layers(model) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def set_backend(model, backend: Backend | None, program: bool = True,
                mapping: str = "hpt") -> None:
    """Route the low-parameter phase's products through ``backend`` by ``mapping``
    (:data:`MAPPINGS`; None: plain torch). Programs every frozen matrix the mapping puts
    in ReRAM, in :func:`frozen_linears` order (the placement's order), unless ``program``
    is False (the backend already holds them under the layers' names)."""
    from sw.model.transformer import RoutedLinear
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {', '.join(MAPPINGS)}, not {mapping!r}")
    for layer in model.layers:
        layer.attn.backend = backend
    for m in model.modules():
        if isinstance(m, RoutedLinear):
            m.route = None
    for lora in lora_layers(model):
        lora.backend = None
    if backend is None:
        return
    for owner, attr, lin in frozen_linears(model):
        if isinstance(lin, LoRALinear):
            if program:
                lin.program(backend)
            lin.backend = backend
        elif mapping == "hpt":
            if program:
                backend.program(lin.name, lin.weight.detach().T.contiguous())
            lin.route = (backend, "frozen")
    if mapping == "hpt":
        for m in model.modules():
            if isinstance(m, RoutedLinear) and m.route is None and m.weight.requires_grad:
                m.route = (backend, "trainable")
