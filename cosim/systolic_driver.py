"""Drive a simulated systolic core from numpy, one program per Python call.

Runs inside cocotb (the harness of :mod:`cosim.systolic_harness` is the toplevel).
Operands are packed with :mod:`sw.packing` into the shared buffer of ``shim.cpp`` in
bulk; the harness then executes the whole program at native Verilator speed.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from hw.systolic import Op, SystolicConfig
from sw.golden.systolic import Program, Step, build_program
from sw.packing import pack_vectors, unpack_vectors

from .systolic_harness import HarnessLayout

__all__ = ["SharedBuffer", "RunResult", "SystolicDriver"]

PROGRAM_BASE = 16


class SharedBuffer:
    """The simulator's ``hpt_buf`` as a writable numpy array (no copy)."""

    def __init__(self):
        lib = ctypes.CDLL(None)
        try:
            n = ctypes.c_uint32.in_dll(lib, "hpt_buf_words").value
            self.words = np.ctypeslib.as_array((ctypes.c_uint32 * n).in_dll(lib, "hpt_buf"))
        except ValueError as exc:
            raise RuntimeError("the simulator has no shared buffer: build it with "
                               "cosim/shim.cpp and -LDFLAGS -rdynamic") from exc

    def __len__(self):
        return len(self.words)


@dataclass
class RunResult:
    reads: list[np.ndarray]     # rows returned by each READ, in order
    cycles: int                 # harness cycles, start to finish
    active: int                 # cycles the core accepted or executed commands


class SystolicDriver:
    def __init__(self, dut, cfg: SystolicConfig, buffer: SharedBuffer | None = None):
        self.dut, self.cfg = dut, cfg
        self.layout = HarnessLayout(cfg)
        self.buf = buffer or SharedBuffer()
        self.total_cycles = 0
        dut.stall.value = 0
        dut.seed.value = 1
        dut.start.value = 0
        dut.rst.value = 0

    def stage(self, steps: list[Step]) -> list[tuple[int, int]]:
        """Write ``steps`` and their operands into the buffer; return READ placements."""
        L, buf = self.layout, self.buf.words
        n = len(steps)
        entries = np.zeros((n, L.entry_words), np.uint32)
        ptr = PROGRAM_BASE + n * L.entry_words
        chunks, reads = [], []
        for e, s in enumerate(steps):
            for w in range(L.cmd_words):
                entries[e, w] = (s.cmd >> (32 * w)) & 0xFFFFFFFF
            ptrs = []
            if s.op in (Op.LOAD_A, Op.LOAD_AB):
                chunks.append((ptr, pack_vectors(s.a, self.cfg.in_width)))
                ptrs.append(ptr)
                ptr += chunks[-1][1].size
            if s.op in (Op.LOAD_B, Op.LOAD_AB):
                chunks.append((ptr, pack_vectors(s.b, self.cfg.in_width)))
                ptrs.append(ptr)
                ptr += chunks[-1][1].size
            if s.op == Op.READ:
                ptrs.append(ptr)
                reads.append((ptr, s.count))
                ptr += s.count * L.r_words
            entries[e, L.cmd_words:L.cmd_words + len(ptrs)] = ptrs
        if ptr > len(buf):
            raise ValueError(f"program needs {ptr} buffer words; the simulator has {len(buf)} "
                             "(split it into smaller calls)")
        buf[0], buf[1] = PROGRAM_BASE, n
        buf[PROGRAM_BASE:PROGRAM_BASE + entries.size] = entries.ravel()
        for at, words in chunks:
            buf[at:at + words.size] = words.ravel()
        return reads

    async def run(self, steps: list[Step], *, stall: int = 0, seed: int = 1) -> RunResult:
        """Execute ``steps`` on the RTL in one call: stage, toggle start, await done."""
        reads = self.stage(steps)
        dut = self.dut
        dut.stall.value = stall
        dut.seed.value = seed
        dut.start.value = 1 - int(dut.start.value)
        await dut.done.value_change
        buf, L = self.buf.words, self.layout
        out = [unpack_vectors(buf[at:at + cnt * L.r_words].reshape(cnt, L.r_words),
                              self.cfg.cols, self.cfg.acc_width) for at, cnt in reads]
        cycles, active = int(dut.cycles.value), int(dut.active.value)
        self.total_cycles += cycles
        return RunResult(out, cycles, active)

    async def run_program(self, program: Program, *, tiles_per_call: int | None = None,
                          stall: int = 0) -> tuple[np.ndarray, int, int]:
        """Run a tiled matmul program; returns (output, cycles, active cycles)."""
        m, _, n = program.shape
        out = np.zeros((m, n), np.int64)
        # group steps per output tile (each tile ends with its READ)
        groups, cur = [], []
        for s in program.steps:
            cur.append(s)
            if s.op == Op.READ:
                groups.append(cur)
                cur = []
        per = len(groups) if tiles_per_call is None else max(1, tiles_per_call)
        cycles = active = 0
        for g0 in range(0, len(groups), per):
            steps = [s for g in groups[g0:g0 + per] for s in g]
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
        from cocotb.triggers import Timer
        self.dut.rst.value = 1
        await Timer(10 * cycles, unit="ns")
        self.dut.rst.value = 0
        await Timer(10, unit="ns")
