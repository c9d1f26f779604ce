"""Generic cocotb driver of a :mod:`cosim.harness` harness: one program per Python call."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np

from hw.chip import MAX_CORES, MAX_TILES

from .harness import HarnessSpec, MultiSpec  # noqa: F401 (MultiSpec: see HarnessDriver)

__all__ = ["SharedBuffer", "ArrayBuffer", "Transaction", "RunResult", "MultiResult",
           "HarnessDriver"]

#: First word of the programs: below it, two header words per channel (base, entries)
#: for the most channels a chip has (hw.chip.MAX_CORES cores and hw.chip.MAX_TILES tiles).
PROGRAM_BASE = 2 * (MAX_CORES + MAX_TILES)


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


@dataclass
class MultiResult:
    outputs: list[list[dict]]    # per channel, per transaction (as RunResult.outputs)
    cycles: int
    active: int                  # cycles in which any channel was active
    channel_active: list[int]    # per channel
    overlap: int                 # cycles with the first group and another channel active


class ArrayBuffer:
    """A plain numpy buffer with the shared buffer's interface: stages a program without a
    simulator (the native benchmark loads it from a file)."""

    def __init__(self, words: int = 1 << 24):
        self.words = np.zeros(words, np.uint32)


class HarnessDriver:
    """Drives a harness of :mod:`cosim.harness`: a :class:`HarnessSpec` (one block, one
    channel) or a :class:`MultiSpec` (a chip, one channel per unit). With ``dut=None`` it
    only stages programs (into ``buffer``)."""

    def __init__(self, dut, spec, buffer: SharedBuffer | ArrayBuffer | None = None):
        self.dut, self.spec = dut, spec
        self.channels = [("", spec)] if isinstance(spec, HarnessSpec) else list(spec.channels)
        self.buf = buffer or SharedBuffer()
        self._ops = []
        for _, cs in self.channels:
            off, width = next((f.offset, f.width) for n, f in cs.command if n == "op")
            self._ops.append((off, (1 << width) - 1))
        if dut is not None:
            dut.stall.value = 0
            dut.seed.value = 1
            dut.start.value = 0
            dut.rst.value = 0

    def stage(self, txns: list[Transaction]) -> list[dict]:
        """Write one block's ``txns`` into the buffer; return where its outputs will land."""
        return self.stage_channels([txns])[0]

    def stage_channels(self, per_channel: list[list[Transaction]]) -> list[list[dict]]:
        """Write each channel's program; channels without one get an empty program."""
        buf = self.buf.words
        if len(per_channel) > len(self.channels):
            raise ValueError(f"{len(per_channel)} programs for {len(self.channels)} channels")
        per_channel = list(per_channel) + [[] for _ in range(len(self.channels) - len(per_channel))]
        ptr = PROGRAM_BASE
        writes, places_all = [], []
        for c, ((_, spec), txns) in enumerate(zip(self.channels, per_channel)):
            n = len(txns)
            entries = np.zeros((n, spec.entry_words), np.uint32)
            base = ptr
            ptr += entries.size
            places = []
            for e, t in enumerate(txns):
                for w in range(spec.cmd_words):
                    entries[e, w] = (t.cmd >> (32 * w)) & 0xFFFFFFFF
                op = (t.cmd >> self._ops[c][0]) & self._ops[c][1]
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
            writes.append((base, entries))
            writes.append((2 * c, np.array([base, n], np.uint32)))
            places_all.append(places)
        if ptr > len(buf):
            raise ValueError(f"program needs {ptr} buffer words; the simulator has {len(buf)} "
                             "(split it into smaller calls)")
        for at, words in writes:
            buf[at:at + words.size] = words.ravel()
        self.staged_words = ptr
        return places_all

    def _collect(self, places) -> list[dict]:
        buf = self.buf.words
        return [{p: buf[at:at + cnt * nw].reshape(cnt, nw).copy()
                 for p, (at, cnt, nw) in place.items()} for place in places]

    async def _go(self, stall: int, seed: int) -> None:
        dut = self.dut
        dut.stall.value = stall
        dut.seed.value = seed
        dut.start.value = 1 - int(dut.start.value)
        await dut.done.value_change

    async def run(self, txns: list[Transaction], *, stall: int = 0, seed: int = 1) -> RunResult:
        """Stage ``txns``, toggle ``start``, await ``done``: one Python wake-up per call."""
        places = self.stage(txns)
        await self._go(stall, seed)
        return RunResult(self._collect(places), int(self.dut.cycles.value),
                         int(self.dut.active.value))

    async def run_channels(self, per_channel: list[list[Transaction]], *, stall: int = 0,
                           seed: int = 1) -> MultiResult:
        """Every channel's program at once (the units run concurrently), one wake-up."""
        places = self.stage_channels(per_channel)
        await self._go(stall, seed)
        dut = self.dut
        return MultiResult([self._collect(p) for p in places], int(dut.cycles.value),
                           int(dut.active.value),
                           [int(getattr(dut, f"active_{prefix}").value) for prefix, _ in self.channels],
                           int(dut.overlap.value))

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
