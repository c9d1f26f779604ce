"""The accelerator's RTL behind the host's integer device interface.

:class:`ChipDriver` (async, in cocotb) turns numpy-level work into one harness run of
the chip: systolic programs (:func:`sw.golden.systolic.build_program`) on the cores'
channels (``0 .. N-1``) and tile commands on channel ``N + k``, all started together so
the units work at the same time. :class:`RtlDevice` is the :class:`sw.device.backends.IntDevice`
the training loop calls from cocotb's bridge thread; each call blocks that thread while
the simulator runs. It splits independent products over the cores by
:func:`hw.placement.assign_products`, the rule the host's cycle model and the cost model
use. :class:`CheckedDevice` sends each op to the RTL (all of them, or a sampled fraction)
and checks it against the functional golden models, stopping at the first difference.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from hw.manycore import ManycoreConfig
from hw.placement import assign_products, place
from hw.reram import TileOp
from sw.device.backends import FunctionalDevice, IntDevice, MatmulCall
from sw.golden.compare import first_difference
from sw.golden.systolic import build_program

from .driver import HarnessDriver, SharedBuffer
from .sim import chip_harness_spec
from .systolic_driver import place_results, step_transaction
from .tile_harness import tile_outputs, tile_transaction

__all__ = ["ChipDriver", "ChipRun", "RtlDevice", "CheckedDevice", "OpMismatch"]

MAX_COUNT = (1 << 16) - 1           # vectors per tile command (COUNT_WIDTH)
BUFFER_BUDGET = 1 << 23             # words staged per harness run (half the shared buffer)


@dataclass
class ChipRun:
    core_outputs: dict[int, list]             # core c -> raw systolic outputs, per step
    tile_results: dict[int, list]             # tile k -> per op: None / vectors / stats
    cycles: int
    active: list[int]                         # per channel: cores 0..N-1, then tiles 0..K-1
    overlap: int                              # cycles with a core and a tile both active
    cores: int = 1

    @property
    def core_active(self) -> list[int]:
        return self.active[:self.cores]

    @property
    def tile_active(self) -> list[int]:
        return self.active[self.cores:]


class ChipDriver:
    def __init__(self, dut, cfg: ManycoreConfig, buffer: SharedBuffer | None = None):
        self.cfg = cfg
        self.hw = HarnessDriver(dut, chip_harness_spec(cfg), buffer)

    def transactions(self, core_steps: dict | None = None, tile_ops: dict | None = None) -> list[list]:
        """Per channel: the harness transactions of each core's systolic steps
        (``core -> steps``) and each tile's ops (``tile -> ops``)."""
        cfg, core_steps, tile_ops = self.cfg, core_steps or {}, tile_ops or {}
        for c in core_steps:
            if not 0 <= c < cfg.systolic_cores:
                raise ValueError(f"systolic core {c} does not exist (the chip has "
                                 f"{cfg.systolic_cores})")
        per_channel = [[step_transaction(cfg.systolic, s) for s in core_steps.get(c, ())]
                       for c in range(cfg.systolic_cores)]
        for k in range(cfg.blocks):
            per_channel.append([tile_transaction(cfg.physical_tile(k), *o)
                                for o in tile_ops.get(k, [])])
        return per_channel

    async def run(self, core_steps: dict | None = None, tile_ops: dict | None = None, *,
                  stall: int = 0, seed: int = 1) -> ChipRun:
        cfg, core_steps, tile_ops = self.cfg, core_steps or {}, tile_ops or {}
        per_channel = self.transactions(core_steps, tile_ops)
        res = await self.hw.run_channels(per_channel, stall=stall, seed=seed)
        n = cfg.systolic_cores
        tiles = {k: tile_outputs(cfg.physical_tile(k), ops, res.outputs[n + k])
                 for k, ops in tile_ops.items()}
        return ChipRun({c: res.outputs[c] for c in core_steps}, tiles, res.cycles,
                       res.channel_active, res.overlap, n)

    async def reset(self, cycles: int = 2) -> None:
        await self.hw.reset(cycles)


@dataclass
class RunStats:
    """What the RTL reported for the last op (summed over its harness runs)."""
    cores: int = 1
    runs: int = 0
    cycles: int = 0
    systolic_active: list = field(default_factory=list)     # per core
    tiles_active: int = 0
    overlap: int = 0

    def add(self, r: ChipRun) -> None:
        self.runs += 1
        self.cycles += r.cycles
        self.systolic_active = [a + b for a, b in
                                zip(self.systolic_active or [0] * r.cores, r.core_active)]
        self.tiles_active += sum(r.tile_active)
        self.overlap += r.overlap

    def work(self) -> dict:
        active = self.systolic_active or [0] * self.cores
        return {"rtl_ops": 1, "rtl_runs": self.runs, "rtl_cycles": self.cycles,
                "rtl_systolic_active": sum(active), "rtl_systolic_active_cores": active,
                "rtl_tiles_active": self.tiles_active, "rtl_overlap": self.overlap}


class RtlDevice(IntDevice):
    """:class:`IntDevice` on the chip. ``call(async_fn, *args)`` runs a coroutine function
    on the simulator and returns its result (``cocotb.task.resume`` from the bridge
    thread, or ``asyncio``-style awaiting in tests). Frozen matrices take the physical
    blocks :func:`hw.placement.place` gives their first copy, as in
    :class:`FunctionalDevice`."""

    overlaps = True

    def __init__(self, driver: ChipDriver, call):
        self.driver, self.sim_call = driver, call
        self.cfg = driver.cfg
        self.tiles: dict[str, list[list[int]]] = {}         # key -> grid of physical tiles
        self.shapes: dict[str, tuple[int, int]] = {}
        self.last = RunStats(self.cfg.systolic_cores)
        self.total = RunStats(self.cfg.systolic_cores)
        self.sim_seconds = 0.0          # wall time spent in harness runs (staging included)

    def _run(self, core_steps=None, tile_ops=None) -> ChipRun:
        t0 = time.perf_counter()
        r = self.sim_call(self.driver.run, core_steps or {}, tile_ops or {})
        self.sim_seconds += time.perf_counter() - t0
        self.last.add(r)
        self.total.add(r)
        return r

    def take_stats(self) -> dict:
        work, self.last = self.last.work(), RunStats(self.cfg.systolic_cores)
        return work

    # ---- systolic ------------------------------------------------------------------------
    @staticmethod
    def _batched(A, B):
        A, B = np.asarray(A, np.int64), np.asarray(B, np.int64)
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        A = np.broadcast_to(A, (*batch, *A.shape[-2:])).reshape(-1, *A.shape[-2:])
        B = np.broadcast_to(B, (*batch, *B.shape[-2:])).reshape(-1, *B.shape[-2:])
        return A, B, batch

    def _steps_words(self, steps) -> int:
        cfg = self.cfg.systolic
        per_vec = (max(cfg.rows, cfg.cols) * cfg.in_width + 31) // 32 + 2
        return sum(per_vec * max(1, s.count) for s in steps)

    def _rounds(self, pairs):
        """The products ``pairs`` (``(A, B)`` each) over the cores
        (:func:`hw.placement.assign_products`), as rounds: round ``r`` holds every core's
        ``r``-th piece as ``core -> (piece, steps)``; yields ``(round, staged words)``."""
        cfg = self.cfg.systolic
        assignment = assign_products(cfg, self.cfg.systolic_cores,
                                     [(A.shape[0], A.shape[1], B.shape[1]) for A, B in pairs])
        for r in range(max((len(p) for p in assignment), default=0)):
            rnd, words = {}, 0
            for c, pieces in enumerate(assignment):
                if r < len(pieces):
                    p = pieces[r]
                    A, B = pairs[p.product]
                    steps = build_program(cfg, A[p.rows[0]:p.rows[1]],
                                          B[:, p.cols[0]:p.cols[1]]).steps
                    rnd[c] = (p, steps)
                    words += self._steps_words(steps)
            yield rnd, words

    def _execute(self, rounds, outs, tile_ops=None) -> ChipRun:
        """One harness run of ``rounds`` (each core its pieces one after another) and
        ``tile_ops``; every piece's results land in ``outs[product]``."""
        core_steps, spans = {}, []
        for rnd in rounds:
            for c, (p, steps) in rnd.items():
                prog = core_steps.setdefault(c, [])
                spans.append((c, len(prog), p, steps))
                prog += steps
        r = self._run(core_steps, tile_ops)
        cfg = self.cfg.systolic
        for c, at, p, steps in spans:
            place_results(cfg, steps, r.core_outputs[c][at:at + len(steps)],
                          outs[p.product][p.rows[0]:p.rows[1], p.cols[0]:p.cols[1]])
        return r

    def _products(self, pairs, outs, rounds=None) -> None:
        """The products on the cores, in as few harness runs as the staging buffer allows
        (whole rounds per run, so a batch of equal products takes exactly the cycles of
        the cycle model plus one harness cycle per run). ``rounds``: already built
        ``(round, words)`` pairs of :meth:`_rounds`."""
        pending, words = [], 0
        for rnd, cost in (self._rounds(pairs) if rounds is None else rounds):
            if pending and words + cost > BUFFER_BUDGET:
                self._execute(pending, outs)
                pending, words = [], 0
            pending.append(rnd)
            words += cost
        if pending:
            self._execute(pending, outs)

    def matmul(self, A, B):
        A, B, batch = self._batched(A, B)
        m, n = A.shape[1], B.shape[2]
        out = np.zeros((len(A), m, n), np.int64)
        self._products(list(zip(A, B)), out)
        return out.reshape(*batch, m, n)

    # ---- both at once ----------------------------------------------------------------------
    def parallel(self, calls) -> list[np.ndarray]:
        """Run :class:`MatmulCall` and :class:`MvmCall` calls (integers) in one harness
        run: the systolic cores work through the products (all the group's products
        spread over the cores together) while the tiles run the MVMs. When the group does
        not fit one run, its products run on the cores as one group, then each MVM alone."""
        pairs, outs, tile_ops, plans, words, fits = [], [], {}, [], 0, True
        for c in calls:
            if isinstance(c, MatmulCall):
                A, B, batch = self._batched(c.a, c.b)
                out = np.zeros((len(A), A.shape[1], B.shape[2]), np.int64)
                pairs += list(zip(A, B))
                outs += list(out)
                plans.append(("matmul", out, batch))
            else:
                key, X, transpose = c.key, np.asarray(c.x, np.int64), c.transpose
                if len(X) > self._mvm_chunk(key):
                    fits = False
                    plans.append(("mvm_alone", key, X, transpose))
                    continue
                ops, where = self._mvm_ops(key, X, transpose)
                pos = {}
                for k, op in ops.items():
                    pos[k] = len(tile_ops.setdefault(k, []))
                    tile_ops[k].append(op)
                words += 2 * len(X) * self._vec_words() * len(ops)
                plans.append(("mvm", len(X), self._mvm_out(key, transpose), where, pos,
                              (key, X, transpose)))
        rounds = list(self._rounds(pairs))
        if fits and words + sum(cost for _, cost in rounds) <= BUFFER_BUDGET:
            r = self._execute([rnd for rnd, _ in rounds], outs, tile_ops)
        else:
            r = None
            if pairs:
                self._products(pairs, outs, rounds)
        results = []
        for plan in plans:
            if plan[0] == "matmul":
                _, out, batch = plan
                results.append(out.reshape(*batch, *out.shape[1:]))
            elif plan[0] == "mvm_alone":
                results.append(self.mvm(*plan[1:]))
            elif r is None:
                results.append(self.mvm(*plan[5]))
            else:
                _, n_vec, n_out, where, pos, _ = plan
                out = np.zeros((n_vec, n_out), np.int64)
                for k, (o0, used) in where.items():
                    out[:, o0:o0 + used] += r.tile_results[k][pos[k]][:, :used]
                results.append(out)
        return results

    # ---- ReRAM -----------------------------------------------------------------------------
    def _allocate(self, key, shape):
        """The matrix's physical blocks: its first copy, as :func:`hw.placement.place`
        puts it (the same blocks as the functional device's)."""
        if key in self.tiles:
            raise ValueError(f"{key!r} is already programmed (frozen weights are written once)")
        blocks = place(self.cfg, {**self.shapes, key: tuple(shape)})[key].first
        self.tiles[key] = [list(line) for line in blocks]
        self.shapes[key] = tuple(shape)
        return len(blocks), len(blocks[0])

    def program(self, key, W):
        t = self.cfg.tile
        W = np.asarray(W, np.int64)
        tr, tc = self._allocate(key, W.shape)
        pad = np.zeros((tr * t.rows, tc * t.cols), np.int64)
        pad[:W.shape[0], :W.shape[1]] = W
        ops = {}
        for i, line in enumerate(self.tiles[key]):
            for j, k in enumerate(line):
                block = pad[i * t.rows:(i + 1) * t.rows, j * t.cols:(j + 1) * t.cols]
                ops[k] = [(TileOp.PROGRAM, 0, block), (TileOp.READ_STATS, 0, None)]
        r = self._run(tile_ops=ops)
        pulses = sum(r.tile_results[k][1]["total_pulses"] for k in ops)
        return {"write_pulses": pulses, "rows": len(ops) * t.rows}

    def _vec_words(self) -> int:
        t = self.cfg.tile
        return (max(t.rows, t.cols) * max(t.input_bits, t.out_width) + 31) // 32

    def _mvm_chunk(self, key) -> int:
        """Vectors per run: within a command's count and half the shared buffer (in + out)."""
        n_tiles = len(self.tiles[key]) * len(self.tiles[key][0])
        return max(1, min(MAX_COUNT, BUFFER_BUDGET // (2 * self._vec_words() * n_tiles)))

    def _mvm_out(self, key, transpose) -> int:
        rows, cols = self.shapes[key]
        return rows if transpose else cols

    def _mvm_ops(self, key, xs, transpose):
        """Per physical tile: its MVM (or MVM_T) command on ``xs``, and where its outputs
        add into the result (first column, columns used)."""
        t = self.cfg.tile
        rows, cols = self.shapes[key]
        n_in, n_out = (cols, rows) if transpose else (rows, cols)
        ti, to = (t.cols, t.rows) if transpose else (t.rows, t.cols)
        op = TileOp.MVM_T if transpose else TileOp.MVM
        ops, where = {}, {}
        for i, line in enumerate(self.tiles[key]):
            for j, k in enumerate(line):
                a, b = (j, i) if transpose else (i, j)       # (input block, output block)
                ops[k] = (op, 0, xs[:, a * ti:min((a + 1) * ti, n_in)])
                where[k] = (b * to, min(to, n_out - b * to))
        return ops, where

    def mvm(self, key, X, transpose):
        X = np.asarray(X, np.int64)
        out = np.zeros((len(X), self._mvm_out(key, transpose)), np.int64)
        chunk = self._mvm_chunk(key)
        for v0 in range(0, len(X), chunk):
            xs = X[v0:v0 + chunk]
            ops, where = self._mvm_ops(key, xs, transpose)
            r = self._run(tile_ops={k: [op] for k, op in ops.items()})
            for k, (o0, used) in where.items():
                out[v0:v0 + len(xs), o0:o0 + used] += r.tile_results[k][0][:, :used]
        return out


def _counters(state):
    """Every tile's counter dict in a FunctionalDevice state (key -> grid of dicts)."""
    for grid in (state or {}).values():
        for line in grid:
            yield from line


class OpMismatch(RuntimeError):
    """The RTL and the functional model disagree on an op."""


@dataclass
class CheckCounts:
    rtl: int = 0            # ops executed on the RTL
    checked: int = 0        # ... of which compared with the functional model
    functional: int = 0     # ops executed on the functional model only (sampling)
    mismatches: int = 0
    by_op: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rtl": self.rtl, "checked": self.checked, "functional_only": self.functional,
                "mismatches": self.mismatches, "by_op": self.by_op}


class CheckedDevice(IntDevice):
    """Lockstep RTL + functional device. Programming always goes to both (the weights are
    written once, and either may serve a later op). Every other op goes to the RTL with
    probability ``sample`` (a seeded generator: the same run samples the same ops) and
    then, with ``check``, is compared with the functional model; the rest run on the
    functional model alone. The first difference raises :class:`OpMismatch`."""

    def __init__(self, rtl: RtlDevice, ref: FunctionalDevice, *, sample: float = 1.0,
                 check: bool = True, seed: int = 0):
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"rtl sample fraction must be in [0, 1], not {sample}")
        if sample < 1.0 and ref.hw.tile.read_noise:
            raise ValueError("--rtl-sample below 1 needs read_noise = 0: a tile's noise "
                             "counter advances only with the conversions it executes")
        self.rtl, self.ref, self.sample, self.check = rtl, ref, sample, check
        self.rng = np.random.default_rng(seed)
        self.rtl_enabled = True         # False: ops run on the functional models only
        self.counts = CheckCounts()
        self._stats: dict = {}

    overlaps = True

    def take_stats(self) -> dict:
        s, self._stats = self._stats, {}
        return s

    @contextlib.contextmanager
    def evaluation(self, on_rtl: bool):
        """Validation and test passes on the RTL only with ``on_rtl`` (else on the
        functional models, bit-identical and checked in training)."""
        before, self.rtl_enabled = self.rtl_enabled, on_rtl
        try:
            yield
        finally:
            self.rtl_enabled = before

    def progress(self) -> str:
        """ops done, simulated cycles and simulation rate, for the progress bar."""
        total = self.rtl.total
        wall = max(self.rtl.sim_seconds, 1e-9)
        return (f"rtl ops {self.counts.rtl} (checked {self.counts.checked}, functional-only "
                f"{self.counts.functional}) {total.cycles / 1e6:.2f} M cycles "
                f"{total.cycles / wall / 1e3:.0f} k cycles/s")

    def state_dict(self) -> dict:
        return self.ref.state_dict()

    def load_state_dict(self, state: dict) -> None:
        # the reference follows the checkpoint; the RTL starts fresh in a new simulation,
        # which is exact only without read noise (its salts count the tile's conversions,
        # and the RTL tiles' counters cannot be set)
        if self.ref.hw.tile.read_noise and any(
                c.get("noise_ctr", 0) for c in _counters(state)):
            raise ValueError("cannot resume a co-simulated run with read noise: the RTL "
                             "tiles' noise counters cannot be restored (restart the run; "
                             "without read noise a resumed run is exact)")
        self.ref.load_state_dict(state)

    def _count(self, name, on_rtl):
        d = self.counts.by_op.setdefault(name, {"rtl": 0, "functional_only": 0})
        d["rtl" if on_rtl else "functional_only"] += 1

    def _compare(self, name, what, got, want):
        """The one check of an RTL result against the functional model's (arrays, or the
        statistics dicts of programming): the first difference raises :class:`OpMismatch`
        naming the op, its operands and the first differing element."""
        self.counts.checked += 1
        diff = first_difference(got, want, got_name="RTL", want_name="functional")
        if diff is not None:
            self.counts.mismatches += 1
            raise OpMismatch(f"{name} {what}: {diff}")

    def _to_rtl(self) -> bool:
        """Whether the next op (or concurrent group) runs on the RTL: never while the RTL
        is off (unless read noise needs the tiles' counters), else a seeded draw."""
        if not self.rtl_enabled and not self.ref.hw.tile.read_noise:
            return False
        return self.sample >= 1.0 or self.rng.random() < self.sample

    def _dispatch(self, name, what, run_rtl, run_ref):
        on_rtl = self._to_rtl()
        self._count(name, on_rtl)
        if not on_rtl:
            self.counts.functional += 1
            return run_ref()
        self.counts.rtl += 1
        got = run_rtl()
        self._stats = self.rtl.take_stats()
        want = run_ref()            # also without checks: the reference keeps the tiles' counters
        if self.check:
            self._compare(name, what, got, want)
        return got

    def matmul(self, A, B):
        return self._dispatch("matmul", f"A{tuple(np.shape(A))} B{tuple(np.shape(B))}",
                              lambda: self.rtl.matmul(A, B), lambda: self.ref.matmul(A, B))

    def program(self, key, W):
        got = self.rtl.program(key, W)
        self._stats = self.rtl.take_stats()
        want = self.ref.program(key, W)
        self._count("program", True)
        self.counts.rtl += 1
        if self.check:
            self._compare("program", f"{key} W{tuple(np.shape(W))}", got, want)
        return got

    def parallel(self, calls):
        """A concurrent group (:meth:`RtlDevice.parallel`): one sampling draw for the
        group, every op checked on its own."""
        def ref():
            return [self.ref.call(c) for c in calls]
        names = [c.op for c in calls]
        if not self._to_rtl():
            for name in names:
                self._count(name, False)
            self.counts.functional += len(calls)
            return ref()
        for name in names:
            self._count(name, True)
        self.counts.rtl += len(calls)
        got = self.rtl.parallel(calls)
        self._stats = self.rtl.take_stats()
        want = ref()
        if self.check:
            for name, c, g, w in zip(names, calls, got, want):
                self._compare(name + " (concurrent group)", c.describe(), g, w)
        return got

    def mvm(self, key, X, transpose):
        name = "mvm_t" if transpose else "mvm"
        return self._dispatch(name, f"{key} X{tuple(np.shape(X))}",
                              lambda: self.rtl.mvm(key, X, transpose),
                              lambda: self.ref.mvm(key, X, transpose))
