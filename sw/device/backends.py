"""Hardware backends behind one interface, and the op trace the cost model reads.

The hybrid layers see a :class:`Backend` with four float operations:

* ``matmul(a, b)`` — a (batched) product on the **systolic** array;
* ``program(key, W)`` — write a frozen weight matrix ``W[in, out]`` into **ReRAM** tiles;
* ``mvm(key, x)`` — ``x @ W`` on those tiles; ``mvm_t(key, y)`` — ``y @ W.T``.

:class:`TorchBackend` computes them in float with no hardware effects.
:class:`QuantizedBackend` quantizes on the host side — the one place where floats become
the hardware's integers (symmetric, per tensor) — and hands integers to an
:class:`IntDevice`: :class:`FunctionalDevice` runs the bit-exact golden models (so it
returns what the RTL returns); the co-simulation issue adds an RTL device with the same
integer interface. Every operation appends to an :class:`OpTrace` (unit, op, shapes,
integer work, write pulses) that the cost model reads.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import json
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from hw.manycore import ManycoreConfig
from hw.placement import place
from sw.golden.reram import ReramModel
from sw.golden.systolic import wrap

__all__ = ["OpTrace", "Backend", "TorchBackend", "IntDevice", "FunctionalDevice",
           "QuantizedBackend", "MatmulCall", "MvmCall", "quantize", "quantize_values",
           "register_device", "make_backend"]


@dataclass(frozen=True)
class MatmulCall:
    """A systolic product ``a @ b`` of a concurrent group: float tensors at a
    :class:`Backend` (``layer`` names it in the trace), integer arrays at an
    :class:`IntDevice`."""
    a: object
    b: object
    layer: str = ""

    op = "matmul"

    def describe(self) -> str:
        return f"A{tuple(np.shape(self.a))} B{tuple(np.shape(self.b))}"


@dataclass(frozen=True)
class MvmCall:
    """An MVM of a concurrent group on the frozen matrix ``key``: ``x @ W``, or
    ``x @ W.T`` with ``transpose``."""
    key: str
    x: object
    transpose: bool = False

    @property
    def op(self) -> str:
        return "mvm_t" if self.transpose else "mvm"

    def describe(self) -> str:
        return f"{self.key} X{tuple(np.shape(self.x))}"


class OpTrace:
    """Aggregated record of offloaded operations: one row per (phase, unit, op, layer,
    shape) with a count and the integer work it stands for."""

    def __init__(self):
        self.rows: "OrderedDict[tuple, dict]" = OrderedDict()
        self.phase = "full"

    def add(self, unit: str, op: str, layer: str, shape: tuple, *, products=None,
            **work) -> None:
        """Count one ``op``; ``work`` fields add up (lists element-wise). ``products``: the
        ``(m, k, n)`` shapes of a concurrent group's systolic products, part of the row's
        identity (kept as ``[[m, k, n, count], ...]``, so that a cost model can re-split
        them over other cores)."""
        prods = None
        if products is not None:
            counts: dict = {}
            for p in products:
                p = tuple(int(v) for v in p)
                counts[p] = counts.get(p, 0) + 1
            prods = tuple(sorted((*p, c) for p, c in counts.items()))
        key = (self.phase, unit, op, layer, tuple(int(s) for s in shape), prods)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {"phase": self.phase, "unit": unit, "op": op, "layer": layer,
                                    "shape": list(key[4]), "count": 0}
            if prods is not None:
                row["products"] = [list(p) for p in prods]
        row["count"] += 1
        for k, v in work.items():
            if isinstance(v, (list, tuple)):              # per unit (e.g. per core): add up
                old = row.get(k) or [0] * len(v)
                if len(old) != len(v):
                    raise ValueError(f"trace field {k!r} of {key}: {len(v)} entries after "
                                     f"{len(old)}")
                row[k] = [a + int(b) for a, b in zip(old, v)]
            else:
                row[k] = row.get(k, 0) + int(v)

    def to_list(self) -> list[dict]:
        return list(self.rows.values())

    @classmethod
    def from_list(cls, rows: list[dict], phase: str = "full") -> "OpTrace":
        """The trace of :meth:`to_list`'s rows (a checkpoint's), continuing in ``phase``."""
        tr = cls()
        tr.phase = phase
        for row in rows:
            prods = tuple(tuple(p) for p in row["products"]) if "products" in row else None
            key = (row["phase"], row["unit"], row["op"], row["layer"], tuple(row["shape"]), prods)
            tr.rows[key] = dict(row)
        return tr

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_list(), f, indent=1)


def quantize_values(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor quantization to signed ``bits``: ``(q, scale)`` with ``q`` the
    integers as a tensor of ``x``'s dtype and device, ``x ~ q * scale``. Round half to
    even, computed in the tensor's own precision (deterministic). The one place where the
    host's floats become the hardware's integers."""
    xd = x.detach()
    amax = float(xd.abs().max()) if xd.numel() else 0.0
    qmax = (1 << (bits - 1)) - 1
    scale = amax / qmax if amax > 0 else 1.0
    return torch.round(xd / scale).clamp_(-qmax, qmax), scale


def quantize(x: torch.Tensor, bits: int) -> tuple[np.ndarray, float]:
    """:func:`quantize_values` as an ``int64`` numpy array (what an :class:`IntDevice` takes)."""
    q, scale = quantize_values(x, bits)
    return _ints(q), scale


def _ints(q: torch.Tensor) -> np.ndarray:
    return q.to(torch.int64).cpu().numpy()


def offloaded(method):
    """Mark a backend operation: while it runs, ``backend.offloading`` is true, so the
    kernels it dispatches (quantization, golden models) are not counted as the host's or
    the vector unit's work (:class:`sw.cost.opcount.KernelCounter`)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        self.offloading += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            self.offloading -= 1
    return run


class Backend:
    name = "abstract"
    #: the integer device behind the float operations (None: the backend computes itself)
    device: "IntDevice | None" = None

    def __init__(self, hw: ManycoreConfig, trace: OpTrace | None = None):
        self.hw = hw
        self.trace = trace if trace is not None else OpTrace()
        self.shapes: dict[str, tuple[int, int]] = {}
        self.offloading = 0

    # Work each op stands for, recorded the same way for every backend.
    def _matmul_dims(self, a, b) -> tuple[int, int, int, int]:
        batch = int(np.prod(a.shape[:-2])) if a.dim() > 2 else 1
        return batch, a.shape[-2], a.shape[-1], b.shape[-1]

    def _matmul_cycles(self, a, b) -> int:
        """The op's cycles on the chip's cores (:func:`sw.cost.estimate.systolic_split_cycles`)."""
        from sw.cost.estimate import systolic_split_cycles
        batch, m, k, n = self._matmul_dims(a, b)
        return systolic_split_cycles(self.hw.systolic, self.hw.systolic_cores, batch, m, k, n)

    def _trace_matmul(self, layer, a, b, **extra):
        batch, m, k, n = self._matmul_dims(a, b)
        self.trace.add("systolic", "matmul", layer, (batch, m, k, n), macs=batch * m * k * n,
                       cycles_model=self._matmul_cycles(a, b), **extra)

    def _tiles(self, key):
        return self.hw.tile_grid(self.shapes[key])

    def _trace_mvm(self, layer, op, n_vec, key, **extra):
        tr, tc = self._tiles(key)
        t = self.hw.tile
        conv = t.mvm_adc_conversions(transpose=op == "mvm_t")
        self.trace.add("reram", op, layer, (n_vec, *self.shapes[key]), vectors=n_vec * tr * tc,
                       crossbar_reads=n_vec * tr * tc * t.crossbar_reads(),
                       adc_conversions=n_vec * tr * tc * conv,
                       # the matrix's tiles run at once: the op lasts one tile's latency
                       cycles_model=(t.mvm_t_latency if op == "mvm_t" else t.mvm_latency)(n_vec),
                       **extra)

    def kernels(self, unit: str):
        """A context in which every kernel the host dispatches outside this backend's own
        operations goes into the trace as ``unit`` work (``vector`` under the ``hpt``
        mapping, ``gpu`` under ``qv``): one row per kernel kind and size, with its
        elements, FLOPs and bytes (:class:`sw.cost.opcount.KernelCounter`)."""
        from sw.cost.opcount import KernelCounter

        def record(name, flops, nbytes, elements):
            self.trace.add(unit, name, "", (elements,), elements=elements, flops=flops,
                           bytes=nbytes)
        return KernelCounter(record, skip=lambda: self.offloading > 0)

    def state_dict(self) -> dict:
        """Device state a checkpoint must keep beyond the programmed weights (which are
        re-programmed from the frozen model on resume): counters that salt read noise."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def matmul(self, a: torch.Tensor, b: torch.Tensor, layer: str = "") -> torch.Tensor:
        raise NotImplementedError

    def program(self, key: str, W: torch.Tensor) -> None:
        raise NotImplementedError

    def mvm(self, key: str, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mvm_t(self, key: str, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def call(self, c) -> torch.Tensor:
        """One :class:`MatmulCall` or :class:`MvmCall`, as its own operation."""
        if isinstance(c, MatmulCall):
            return self.matmul(c.a, c.b, c.layer)
        return self.mvm_t(c.key, c.x) if c.transpose else self.mvm(c.key, c.x)

    @offloaded
    def parallel(self, calls, layer: str = "") -> list[torch.Tensor]:
        """Independent products the units may run at the same time (:class:`MatmulCall`,
        :class:`MvmCall`). Results equal the calls made one by one; a device that can
        overlap them (the chip) runs them in one go. The trace gets a
        ``chip/concurrent`` row for ``layer``."""
        out = [self.call(c) for c in calls]
        self._trace_group(layer, calls)
        return out

    def _trace_group(self, layer, calls, **extra):
        """The group's model time: the busier unit's cycles (the group's products spread
        over the cores by :func:`hw.placement.assign_products`, the busiest core's
        cycles; the tiles of a matrix all at once), and the overlap. ``systolic_work`` is
        the products' cycles on one core (what the cost model re-splits over another core
        count); ``systolic_model_cores`` each core's cycles."""
        from hw.placement import assign_products, core_loads
        shapes, tiles, vectors = [], 0, 0
        for c in calls:
            if isinstance(c, MatmulCall):
                batch, m, k, n = self._matmul_dims(c.a, c.b)
                shapes += [(m, k, n)] * batch
            else:
                t = self.hw.tile
                lat = t.mvm_t_latency if c.transpose else t.mvm_latency
                tiles = max(tiles, lat(c.x.shape[0]))      # tiles of one matrix run together
                vectors = max(vectors, c.x.shape[0])
        sa_cfg = self.hw.systolic
        loads = core_loads(assign_products(sa_cfg, self.hw.systolic_cores, shapes))
        sa = max(loads)
        self.trace.add("chip", "concurrent", layer, (len(calls),), products=shapes,
                       cycles_model=max(sa, tiles),
                       systolic_model=sa, systolic_model_cores=loads,
                       systolic_work=sum(sa_cfg.matmul_cycles(*s) for s in shapes),
                       tiles_model=tiles, overlap_model=min(sa, tiles), mvm_vectors=vectors,
                       **extra)


class TorchBackend(Backend):
    """Float on the torch device; no hardware effects (the trace still counts the work)."""
    name = "torch"

    def __init__(self, hw, trace=None):
        super().__init__(hw, trace)
        self.weights: dict[str, torch.Tensor] = {}

    @offloaded
    def matmul(self, a, b, layer=""):
        self._trace_matmul(layer, a, b)
        return a @ b

    @offloaded
    def program(self, key, W):
        self.shapes[key] = tuple(W.shape)
        self.weights[key] = W.detach().clone()
        t = self.hw.tile
        tr, tc = self._tiles(key)
        self.trace.add("reram", "program", key, tuple(W.shape), rows=tr * tc * t.rows,
                       write_pulses=tr * tc * t.rows * t.cols * t.lanes)

    @offloaded
    def mvm(self, key, x):
        self._trace_mvm(key, "mvm", x.shape[0], key)
        return x @ self.weights[key]

    @offloaded
    def mvm_t(self, key, y):
        self._trace_mvm(key, "mvm_t", y.shape[0], key)
        return y @ self.weights[key].T


class IntDevice(abc.ABC):
    """Integer interface of the accelerator (what the RTL implements): numpy integer
    arrays in, numpy ``int64`` arrays out. Three operations are required; every other
    capability is declared here with its default, which a device overrides:

    * ``overlaps``: the device runs a concurrent group's calls at once (:meth:`parallel`,
      the chip); otherwise the backend runs them one by one, on the float paths below;
    * :meth:`exact_matmul` / :meth:`exact_mvm`: the same integers from integer-valued
      float tensors without leaving floating point, or None (default: no such path);
    * :meth:`take_stats`: what the device measured for its last op (RTL cycles);
    * :meth:`state_dict` / :meth:`load_state_dict`: state a checkpoint keeps;
    * :meth:`evaluation`: a context for validation and test passes (the co-simulated
      device may leave them to its functional model);
    * :meth:`progress`: a line for the training progress bar.
    """

    overlaps: bool = False

    @abc.abstractmethod
    def matmul(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """A (batched) wrapped integer product on the systolic cores."""

    @abc.abstractmethod
    def program(self, key: str, W: np.ndarray) -> dict:
        """Write the frozen integer matrix ``W[in, out]``; the programming's statistics."""

    @abc.abstractmethod
    def mvm(self, key: str, X: np.ndarray, transpose: bool) -> np.ndarray:
        """``X @ W`` (``X @ W.T`` with ``transpose``) on the tiles holding ``key``."""

    def call(self, c) -> np.ndarray:
        return (self.matmul(c.a, c.b) if isinstance(c, MatmulCall)
                else self.mvm(c.key, c.x, c.transpose))

    def parallel(self, calls) -> list[np.ndarray]:
        """A concurrent group's calls (integer :class:`MatmulCall`/:class:`MvmCall`)."""
        return [self.call(c) for c in calls]

    def exact_matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        return None

    def exact_mvm(self, key: str, x: torch.Tensor, transpose: bool) -> torch.Tensor | None:
        return None

    def take_stats(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, but a checkpoint holds "
                             "some: it was saved by another device")

    def evaluation(self, on_rtl: bool):
        """Context of a validation or test pass; ``on_rtl``: run it on the RTL too."""
        return contextlib.nullcontext()

    def progress(self) -> str:
        return ""


class FunctionalDevice(IntDevice):
    """The golden models: bit-exact with the RTL, at numpy speed.

    Systolic products are exact integer products wrapped to ``acc_width`` (tiling does
    not change a wrapped sum). A frozen matrix is placed by :func:`hw.placement.place`:
    cut into ``rows x cols`` blocks, zero-padded, on the physical blocks of its first
    copy; partial sums over row blocks add digitally. Every vector is computed on the
    first copy (copies are identical for ideal tiles; with programming variation each
    copy would carry its own errors, which this model does not draw).

    ``exact_matmul`` and ``exact_mvm`` give the same integers on integer-valued float
    tensors without leaving floating point, where that is provably exact (no wrap, sums
    below the float type's mantissa, :meth:`ReramModel.exact_plan`); they return None
    otherwise and the caller uses the integer interface.
    """

    def __init__(self, hw: ManycoreConfig):
        self.hw = hw
        self.tiles: dict[str, list[list[ReramModel]]] = {}
        self.shapes: dict[str, tuple[int, int]] = {}

    def _float_type(self, k: int):
        """Float type whose sums of ``k`` products of ``in_width`` integers are exact and
        cannot wrap the accumulator, or None."""
        s = self.hw.systolic
        bound = k * (1 << (2 * (s.in_width - 1)))
        if bound >= 1 << (s.acc_width - 1):
            return None
        return torch.float32 if bound < (1 << 24) else torch.float64 if bound < (1 << 53) else None

    def matmul(self, A, B):
        # integer products summed in floating point are exact while the largest possible
        # sum stays below the mantissa: float32 to 2**24, float64 to 2**53; beyond that,
        # int64 arithmetic wraps mod 2**64, which agrees with any acc_width <= 64
        k = A.shape[-1]
        bound = k * (1 << (2 * (self.hw.systolic.in_width - 1)))
        if bound >= 1 << 53:
            prod = np.matmul(np.asarray(A, np.int64), np.asarray(B, np.int64))
        else:
            ft = torch.float32 if bound < (1 << 24) else torch.float64
            prod = torch.matmul(torch.from_numpy(A).to(ft), torch.from_numpy(B).to(ft))
            prod = prod.to(torch.int64).numpy()
        return wrap(prod, self.hw.systolic.acc_width)

    def exact_matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
        ft = self._float_type(a.shape[-1])
        return None if ft is None else torch.matmul(a.to(ft), b.to(ft))

    def program(self, key, W):
        t = self.hw.tile
        rows, cols = W.shape
        if key in self.tiles:
            raise ValueError(f"{key!r} is already programmed (frozen weights are written once)")
        blocks = place(self.hw, {**self.shapes, key: (rows, cols)})[key].first
        tr, tc = len(blocks), len(blocks[0])
        pad = np.zeros((tr * t.rows, tc * t.cols), np.int64)
        pad[:rows, :cols] = W
        grid, pulses = [], 0
        for i in range(tr):
            line = []
            for j in range(tc):
                model = ReramModel(self.hw.physical_tile(blocks[i][j]))
                model.program(0, pad[i * t.rows:(i + 1) * t.rows, j * t.cols:(j + 1) * t.cols])
                pulses += model.total_pulses
                line.append(model)
            grid.append(line)
        self.tiles[key] = grid
        self.shapes[key] = (rows, cols)
        return {"write_pulses": pulses, "rows": tr * tc * t.rows}

    def age(self, t_s: float) -> None:
        """Every programmed tile ``t_s`` seconds after its programming
        (:meth:`ReramModel.age`: drifting device models only; functional model only)."""
        for grid in self.tiles.values():
            for line in grid:
                for model in line:
                    model.age(t_s)

    def state_dict(self) -> dict:
        return {key: [[m.counters() for m in line] for line in grid]
                for key, grid in self.tiles.items()}

    def load_state_dict(self, state: dict) -> None:
        for key, grid in state.items():
            for line, saved in zip(self.tiles[key], grid):
                for model, counters in zip(line, saved):
                    model.load_counters(counters)

    def _blocks(self, key, transpose):
        """Per tile: (model, input slice, output slice, (used inputs, used outputs))."""
        t = self.hw.tile
        grid = self.tiles[key]
        rows, cols = self.shapes[key]
        n_in, n_out = (cols, rows) if transpose else (rows, cols)
        ti, to = (t.cols, t.rows) if transpose else (t.rows, t.cols)
        for i, line in enumerate(grid):
            for j, model in enumerate(line):
                a, b = (j, i) if transpose else (i, j)          # (input block, output block)
                used = (min(ti, n_in - a * ti), min(to, n_out - b * to))
                yield model, slice(a * ti, a * ti + used[0]), slice(b * to, b * to + used[1]), used

    def mvm(self, key, X, transpose):
        rows, cols = self.shapes[key]
        out = np.zeros((X.shape[0], rows if transpose else cols), np.int64)
        ti = self.hw.tile.cols if transpose else self.hw.tile.rows
        for model, sin, sout, used in self._blocks(key, transpose):
            xin = np.zeros((X.shape[0], ti), np.int64)             # zero padding adds nothing
            xin[:, :used[0]] = X[:, sin]
            out[:, sout] += model.mvm(xin, transpose=transpose, active=used)
        return out

    def exact_mvm(self, key: str, x: torch.Tensor, transpose: bool) -> torch.Tensor | None:
        blocks = [(m, sin, sout, m.exact_plan(transpose, *used))
                  for m, sin, sout, used in self._blocks(key, transpose)]
        if any(plan is None for *_, plan in blocks):
            return None
        rows, cols = self.shapes[key]
        if len(blocks) == 1:
            model, _, _, plan = blocks[0]
            model.account_mvm(x.shape[0], transpose)
            return plan.run(x.detach().cpu())
        xc = x.detach().cpu().to(torch.float64)             # exact sums over input blocks
        out = torch.zeros((x.shape[0], rows if transpose else cols), dtype=torch.float64)
        for model, sin, sout, plan in blocks:
            out[:, sout] += plan.run(xc[:, sin]).to(torch.float64)
            model.account_mvm(x.shape[0], transpose)
        return out


class QuantizedBackend(Backend):
    """Floats -> the hardware's integers (one place) -> an :class:`IntDevice` -> floats."""
    name = "functional"

    def __init__(self, hw, device: IntDevice | None = None, trace=None):
        super().__init__(hw, trace)
        self.device = device or FunctionalDevice(hw)
        self.scales: dict[str, float] = {}

    def _device_work(self) -> dict:
        """What the device measured for the op it just ran (RTL cycles), for the trace."""
        return self.device.take_stats()

    def _quantize_product(self, a, b):
        """Operands of a systolic product as integer-valued tensors, and the output scale."""
        bits = self.hw.systolic.in_width
        (qa, sa), (qb, sb) = quantize_values(a, bits), quantize_values(b, bits)
        return qa, qb, sa * sb

    def _quantize_mvm(self, key, x):
        """An MVM's input as integer values, and the output scale (input x weight)."""
        q, s = quantize_values(x, self.hw.tile.input_bits)
        return q, s * self.scales[key]

    @offloaded
    def matmul(self, a, b, layer=""):
        qa, qb, scale = self._quantize_product(a, b)
        out = self.device.exact_matmul(qa, qb)
        if out is None:
            out = torch.from_numpy(self.device.matmul(_ints(qa), _ints(qb)))
        self._trace_matmul(layer, a, b, **self._device_work())
        return (out.to(a.dtype) * scale).to(a.device)

    @offloaded
    def program(self, key, W):
        self.shapes[key] = tuple(W.shape)
        q, s = quantize(W, self.hw.tile.weight_bits)
        self.scales[key] = s
        info = self.device.program(key, q)
        self.trace.add("reram", "program", key, tuple(W.shape), **info, **self._device_work())

    def state_dict(self) -> dict:
        return self.device.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.device.load_state_dict(state)

    def _mvm(self, key, x, transpose):
        q, scale = self._quantize_mvm(key, x)
        out = self.device.exact_mvm(key, q, transpose)
        if out is None:
            out = torch.from_numpy(self.device.mvm(key, _ints(q), transpose))
        self._trace_mvm(key, "mvm_t" if transpose else "mvm", x.shape[0], key,
                        **self._device_work())
        return (out.to(x.dtype) * scale).to(x.device)

    @offloaded
    def mvm(self, key, x):
        return self._mvm(key, x, False)

    @offloaded
    def mvm_t(self, key, y):
        return self._mvm(key, y, True)

    @offloaded
    def parallel(self, calls, layer=""):
        if not self.device.overlaps:
            return super().parallel(calls, layer)
        ints, scales = [], []
        for c in calls:
            if isinstance(c, MatmulCall):
                qa, qb, scale = self._quantize_product(c.a, c.b)
                ints.append(MatmulCall(_ints(qa), _ints(qb), c.layer))
            else:
                q, scale = self._quantize_mvm(c.key, c.x)
                ints.append(MvmCall(c.key, _ints(q), c.transpose))
            scales.append(scale)
        outs = self.device.parallel(ints)
        res = []
        for c, o, scale in zip(calls, outs, scales):
            x = c.a if isinstance(c, MatmulCall) else c.x
            if isinstance(c, MatmulCall):
                self._trace_matmul(c.layer, c.a, c.b)
            else:
                self._trace_mvm(c.key, c.op, x.shape[0], c.key)
            res.append((torch.from_numpy(o).to(x.dtype) * scale).to(x.device))
        self._trace_group(layer, calls, **self._device_work())
        return res


#: Integer devices provided from outside the host (the co-simulation registers "rtl").
DEVICES: dict = {}


def register_device(name: str, factory) -> None:
    """Make ``make_backend(name, hw)`` use ``factory(hw)`` as its :class:`IntDevice`."""
    DEVICES[name] = factory


def make_backend(name: str, hw: ManycoreConfig, trace: OpTrace | None = None) -> Backend:
    if name == "torch":
        return TorchBackend(hw, trace)
    if name == "functional":
        return QuantizedBackend(hw, FunctionalDevice(hw), trace)
    if name in DEVICES:
        backend = QuantizedBackend(hw, DEVICES[name](hw), trace)
        backend.name = name
        return backend
    if name == "rtl":
        raise ValueError("the rtl backend runs inside the co-simulation: use "
                         "`hpt train --backend rtl`, which builds the chip and starts it")
    raise ValueError(f"unknown backend {name!r}; choose torch, functional or rtl")
