"""Drive a simulated systolic core from numpy, one program per Python call.

Runs inside cocotb with the harness of :mod:`cosim.systolic_harness` as toplevel.
Operands are packed with :mod:`sw.device.packing` in bulk; the harness then executes the whole
program at native Verilator speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.systolic import Op, SystolicConfig
from sw.golden.systolic import Program, Step, build_program
from sw.device.packing import pack_vectors, unpack_vectors

from .driver import HarnessDriver, SharedBuffer, Transaction
from .systolic_harness import systolic_harness_spec

__all__ = ["StepResult", "SystolicDriver", "step_transaction", "place_results"]


@dataclass
class StepResult:
    reads: list[np.ndarray]     # rows returned by each READ, in order
    cycles: int                 # harness cycles, start to finish
    active: int                 # cycles the core accepted or executed commands


def step_transaction(cfg: SystolicConfig, s: Step) -> Transaction:
    """One golden-model :class:`Step` as a harness transaction."""
    t = Transaction(s.cmd)
    if s.op in (Op.LOAD_A, Op.LOAD_AB):
        t.inputs["a"] = pack_vectors(s.a, cfg.in_width)
    if s.op in (Op.LOAD_B, Op.LOAD_AB):
        t.inputs["b"] = pack_vectors(s.b, cfg.in_width)
    if s.op == Op.READ:
        t.outputs["result"] = s.count
    return t


def place_results(cfg: SystolicConfig, steps: list[Step], outputs: list[dict], out: np.ndarray) -> None:
    """Write the rows each READ of ``steps`` returned into the output matrix ``out``."""
    for s, o in zip(steps, outputs):
        if s.op == Op.READ and s.out:
            i0, j0, mr, nc = s.out
            rows = unpack_vectors(o["result"], cfg.cols, cfg.acc_width)
            out[i0:i0 + mr, j0:j0 + nc] = rows[:, :nc]


class SystolicDriver:
    def __init__(self, dut, cfg: SystolicConfig, buffer: SharedBuffer | None = None):
        self.cfg = cfg
        self.hw = HarnessDriver(dut, systolic_harness_spec(cfg), buffer)

    def _txn(self, s: Step) -> Transaction:
        return step_transaction(self.cfg, s)

    def start_only(self, steps: list[Step]) -> None:
        self.hw.start_only([self._txn(s) for s in steps])

    async def run(self, steps: list[Step], *, stall: int = 0, seed: int = 1) -> StepResult:
        """Execute ``steps`` on the RTL in one call."""
        res = await self.hw.run([self._txn(s) for s in steps], stall=stall, seed=seed)
        reads = [unpack_vectors(o["result"], self.cfg.cols, self.cfg.acc_width)
                 for s, o in zip(steps, res.outputs) if s.op == Op.READ]
        return StepResult(reads, res.cycles, res.active)

    @staticmethod
    def calls(program: Program, tiles_per_call: int | None = None) -> list[list[Step]]:
        """The program's steps cut into harness runs of ``tiles_per_call`` output tiles
        (each cut after a READ; ``None``: one run). Each run starts on an idle core, so
        the engines overlap within a run only."""
        groups, cur = [], []
        for s in program.steps:
            cur.append(s)
            if s.op == Op.READ:
                groups.append(cur)
                cur = []
        if cur:
            groups.append(cur)
        per = len(groups) if tiles_per_call is None else max(1, tiles_per_call)
        return [[s for g in groups[g0:g0 + per] for s in g] for g0 in range(0, len(groups), per)]

    async def run_program(self, program: Program, *, tiles_per_call: int | None = None,
                          stall: int = 0) -> tuple[np.ndarray, int, int]:
        """Run a tiled matmul program; returns (output, cycles, active cycles)."""
        m, _, n = program.shape
        out = np.zeros((m, n), np.int64)
        cycles = active = 0
        for steps in self.calls(program, tiles_per_call):
            res = await self.run(steps, stall=stall)
            cycles += res.cycles
            active += res.active
            for s, rows in zip([s for s in steps if s.out], res.reads):
                i0, j0, mr, nc = s.out
                out[i0:i0 + mr, j0:j0 + nc] = rows[:, :nc]
        return out, cycles, active

    async def matmul(self, A, B, **kw) -> np.ndarray:
        out, _, _ = await self.run_program(build_program(self.cfg, A, B), **kw)
        return out

    async def reset(self, cycles: int = 2) -> None:
        await self.hw.reset(cycles)
