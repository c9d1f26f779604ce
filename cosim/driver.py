"""Generic cocotb driver of a :mod:`cosim.harness` harness: one program per Python call."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from .harness import HarnessSpec

__all__ = ["SharedBuffer", "Transaction", "RunResult", "HarnessDriver"]

PROGRAM_BASE = 16


class SharedBuffer:
    """The simulator's ``hpt_buf`` (``shim.cpp``) as a writable numpy array, no copy."""

    def __init__(self):
        lib = ctypes.CDLL(None)
        try:
            n = ctypes.c_uint32.in_dll(lib, "hpt_buf_words").value
            self.words = np.ctypeslib.as_array((ctypes.c_uint32 * n).in_dll(lib, "hpt_buf"))
        except ValueError as exc:
            raise RuntimeError("the simulator has no shared buffer: build it with "
                               "cosim/shim.cpp and -LDFLAGS -rdynamic") from exc


@dataclass
class Transaction:
    """One command and its stream traffic: ``inputs`` maps an inbound stream to its words
    ``(transfers, words)``; ``outputs`` maps an outbound stream to its transfer count."""
    cmd: int
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


@dataclass
class RunResult:
    outputs: list[dict]          # per transaction: stream -> (transfers, words) uint32
    cycles: int                  # harness cycles, start to finish
    active: int                  # cycles the block accepted or executed commands


class HarnessDriver:
    def __init__(self, dut, spec: HarnessSpec, buffer: SharedBuffer | None = None):
        self.dut, self.spec = dut, spec
        self.buf = buffer or SharedBuffer()
        off, width = next((f.offset, f.width) for n, f in spec.command if n == "op")
        self._op = (off, (1 << width) - 1)
        dut.stall.value = 0
        dut.seed.value = 1
        dut.start.value = 0
        dut.rst.value = 0

    def stage(self, txns: list[Transaction]) -> list[dict]:
        """Write ``txns`` into the buffer; return where each output stream will land."""
        spec, buf = self.spec, self.buf.words
        n = len(txns)
        entries = np.zeros((n, spec.entry_words), np.uint32)
        ptr = PROGRAM_BASE + n * spec.entry_words
        writes, places = [], []
        for e, t in enumerate(txns):
            for w in range(spec.cmd_words):
                entries[e, w] = (t.cmd >> (32 * w)) & 0xFFFFFFFF
            op = (t.cmd >> self._op[0]) & self._op[1]
            place = {}
            for s in spec.streams:
                if op not in s.uses:
                    continue
                idx = s.uses[op][0]
                entries[e, spec.cmd_words + idx] = ptr
                if s.inbound:
                    words = np.ascontiguousarray(t.inputs[s.port], np.uint32)
                    writes.append((ptr, words))
                    ptr += words.size
                else:
                    count = t.outputs.get(s.port, 0)
                    place[s.port] = (ptr, count, s.words)
                    ptr += count * s.words
            places.append(place)
        if ptr > len(buf):
            raise ValueError(f"program needs {ptr} buffer words; the simulator has {len(buf)} "
                             "(split it into smaller calls)")
        buf[0], buf[1] = PROGRAM_BASE, n
        buf[PROGRAM_BASE:PROGRAM_BASE + entries.size] = entries.ravel()
        for at, words in writes:
            buf[at:at + words.size] = words.ravel()
        return places

    async def run(self, txns: list[Transaction], *, stall: int = 0, seed: int = 1) -> RunResult:
        """Stage ``txns``, toggle ``start``, await ``done``: one Python wake-up per call."""
        places = self.stage(txns)
        dut = self.dut
        dut.stall.value = stall
        dut.seed.value = seed
        dut.start.value = 1 - int(dut.start.value)
        await dut.done.value_change
        buf = self.buf.words
        outs = [{p: buf[at:at + cnt * nw].reshape(cnt, nw).copy()
                 for p, (at, cnt, nw) in place.items()} for place in places]
        return RunResult(outs, int(dut.cycles.value), int(dut.active.value))

    def start_only(self, txns: list[Transaction]) -> None:
        """Start a program without waiting for it (to reset in the middle of it)."""
        self.stage(txns)
        self.dut.start.value = 1 - int(self.dut.start.value)

    async def reset(self, cycles: int = 2) -> None:
        from cocotb.triggers import Timer
        self.dut.rst.value = 1
        await Timer(10 * cycles, unit="ns")
        self.dut.rst.value = 0
        await Timer(10, unit="ns")
