"""Counting the kernels PyTorch dispatches, and what each one stands for on the hardware.

This is the one place that uses PyTorch's dispatch-mode hook (``TorchDispatchMode`` lives
in the private ``torch.utils._python_dispatch``; ``tests/unit/test_opcount.py`` pins what we
rely on). Every aten kernel of a training step passes through :class:`KernelCounter`,
which reports its name, FLOPs (PyTorch's own formulas, ``torch.utils.flop_counter``),
bytes touched and elements, except views (they launch nothing) and whatever runs while
``skip()`` is true (the accelerator's products inside a backend call).

:data:`VECTOR_WORK` maps each element-wise kernel to the vector-unit primitives one
element costs (:data:`hw.manycore.VECTOR_PRIMITIVES`); :func:`vector_primitives` is what the
cost model prices.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

__all__ = ["KernelCounter", "VECTOR_WORK", "vector_primitives", "kernel_kind"]


def _nbytes(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (list, tuple)):
        return sum(_nbytes(y) for y in x)
    return 0


def _numel(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(_numel(y) for y in x)
    return 0


def _free_ops():
    a = torch.ops.aten
    return {a.detach, a.lift_fresh, a._to_copy, a.empty_like, a.empty, a.empty_strided,
            a.zeros_like, a.ones_like, a._unsafe_view, a._local_scalar_dense,
            a.new_empty, a.new_empty_strided,
            torch.ops.profiler._record_function_enter_new,
            torch.ops.profiler._record_function_exit}


class KernelCounter(TorchDispatchMode):
    """``with KernelCounter(on_kernel, skip):`` calls ``on_kernel(name, flops, nbytes,
    elements)`` for every kernel dispatched inside (``elements``: the larger of the first
    argument's and the outputs' element counts, so reductions count their input)."""

    def __init__(self, on_kernel, skip=None):
        super().__init__()
        self.on_kernel, self.skip = on_kernel, skip or (lambda: False)
        self.free = _free_ops()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.is_view or func.overloadpacket in self.free or self.skip():
            return out
        f = flop_registry.get(func.overloadpacket)
        flops = int(f(*args, **kwargs, out_val=out)) if f is not None else 0
        nbytes = _nbytes(list(args)) + _nbytes(list(kwargs.values())) + _nbytes(out)
        elements = max(_numel(args[0]) if args else 0, _numel(out))
        self.on_kernel(str(func.overloadpacket).split(".")[-1], flops, nbytes, elements)
        return out


def kernel_kind(name: str) -> str:
    """The element-wise kind of an aten kernel: in-place and ``_foreach_`` variants count
    as their plain op (``add_``, ``_foreach_add_`` -> ``add``)."""
    k = name.removeprefix("_foreach_")
    return k[:-1] if k.endswith("_") and not k.startswith("_") else k


# Primitives per element (assumption: a straightforward fp32 vector-unit implementation;
# softmax and LayerNorm count their per-row reductions per element).
VECTOR_WORK: dict[str, dict[str, float]] = {
    # moves and plain arithmetic
    "copy": {"add": 1}, "clone": {"add": 1}, "fill": {"add": 1}, "zero": {"add": 1},
    "add": {"add": 1}, "sub": {"add": 1}, "rsub": {"add": 1}, "neg": {"add": 1},
    "mul": {"mul": 1}, "div": {"reciprocal": 1, "mul": 1},
    "addcmul": {"mul": 2, "add": 1}, "addcdiv": {"reciprocal": 1, "mul": 2, "add": 1},
    "lerp": {"add": 2, "mul": 1}, "sqrt": {"rsqrt": 1, "mul": 1}, "rsqrt": {"rsqrt": 1},
    "reciprocal": {"reciprocal": 1}, "pow": {"mul": 1},
    "sum": {"add": 1}, "mean": {"add": 1}, "abs": {"cmp": 1},
    # activations, masks
    "relu": {"cmp": 1}, "threshold_backward": {"cmp": 1}, "clamp": {"cmp": 2},
    "where": {"cmp": 1}, "eq": {"cmp": 1}, "ne": {"cmp": 1}, "gt": {"cmp": 1},
    "ge": {"cmp": 1}, "lt": {"cmp": 1}, "le": {"cmp": 1}, "maximum": {"cmp": 1},
    "gelu": {"mul": 5, "add": 3, "exp": 1, "reciprocal": 1},
    "gelu_backward": {"mul": 8, "add": 4, "exp": 2, "reciprocal": 1},
    "native_dropout": {"cmp": 1, "mul": 1}, "native_dropout_backward": {"mul": 1},
    "bernoulli": {"cmp": 1},
    # softmax, LayerNorm, loss
    "_softmax": {"cmp": 1, "add": 2, "exp": 1, "mul": 1},
    "_softmax_backward_data": {"mul": 2, "add": 2},
    "native_layer_norm": {"add": 3, "mul": 4, "rsqrt": 1},
    "native_layer_norm_backward": {"add": 6, "mul": 8},
    "mse_loss": {"add": 2, "mul": 1}, "mse_loss_backward": {"add": 1, "mul": 2},
}


def vector_primitives(kind: str) -> dict[str, float]:
    """Primitives one element of ``kind`` costs; a kernel not in :data:`VECTOR_WORK` is an
    error naming it (the mapping must say what every remaining kernel costs)."""
    k = kernel_kind(kind)
    if k not in VECTOR_WORK:
        raise ValueError(f"no vector-unit cost for kernel {kind!r} (kind {k!r}); add it to "
                         "sw.cost.opcount.VECTOR_WORK")
    return VECTOR_WORK[k]
